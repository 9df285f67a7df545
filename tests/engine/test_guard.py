"""The shared output guard: inputs are never written, foreign files need --force, own outputs may be redone."""
from __future__ import annotations

import os

import pytest

from shared.errors import UsageError
from shared.guard import LEDGER_NAME, OutputGuard, is_own_output


def test_refuses_input_file_and_symlink_to_it(tmp_path):
    data = tmp_path / "w.safetensors"
    data.write_bytes(b"weights")
    link = tmp_path / "link.safetensors"
    os.symlink(data, link)
    guard = OutputGuard(inputs=[data], force=True)  # --force never allows writing over an input
    for target in (data, link):
        with pytest.raises(UsageError, match="is the input"):
            guard.file(target)
    assert data.read_bytes() == b"weights"


def test_refuses_outputs_inside_input_folder(tmp_path):
    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    guard = OutputGuard(inputs=[seq])
    with pytest.raises(UsageError, match="inside the input folder"):
        guard.directory(seq / "img1")
    with pytest.raises(UsageError, match="inside the input folder"):
        guard.file(seq / "gt" / "gt.txt")


def test_foreign_file_needs_force_own_output_does_not(tmp_path):
    out = tmp_path / "scores.json"
    out.write_text("user's notes")
    with pytest.raises(UsageError, match="--force"):
        OutputGuard().file(out)
    guard = OutputGuard(force=True)
    guard.file(out)
    out.write_text("{}")
    guard.record()
    assert is_own_output(out) and (tmp_path / LEDGER_NAME).is_file()
    OutputGuard().file(out)  # a re-run may overwrite its own unchanged output
    out.write_text("edited by the user")
    with pytest.raises(UsageError, match="--force"):
        OutputGuard().file(out)


def test_directory_is_created_and_may_hold_inputs(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    guard = OutputGuard(inputs=[photo])
    guard.directory(tmp_path)  # --out . next to the input is fine ...
    with pytest.raises(UsageError, match="is the input"):
        guard.file(tmp_path / "photo.jpg")  # ... but writing over the input is not
    assert guard.directory(tmp_path / "new" / "dir").is_dir()
