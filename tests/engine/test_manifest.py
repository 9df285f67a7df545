"""Every shipped weight file is listed in weights/MANIFEST.json with a matching sha256 and loads safely."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.weights import MANIFEST, WEIGHTS_DIR, load_state_dict, read_manifest, shipped_weight

ENTRIES = sorted(read_manifest().items())


def test_every_weight_file_is_in_the_manifest():
    listed = {entry["file"] for _, entry in ENTRIES}
    on_disk = {p.name for p in Path(WEIGHTS_DIR).glob("*.safetensors")}
    assert on_disk == listed, f"unlisted or missing files vs {MANIFEST}"


@pytest.mark.parametrize("name,entry", ENTRIES, ids=[n for n, _ in ENTRIES])
def test_entry_is_complete_and_loads(name, entry):
    assert entry["recipe"] and entry["metrics"], name
    path = shipped_weight(name)  # checks the sha256
    tensors = load_state_dict(path)
    assert tensors and path.stat().st_size < 10 * 2**20  # shipped weights stay small
