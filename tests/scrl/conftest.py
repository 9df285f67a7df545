"""Tiny synthetic COCO scenes shared by the scrl tests (64 px, generated once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.scrl.synth import SceneConfig, generate

TINY = SceneConfig(size=64, min_objects=1, max_objects=3, min_object=12, max_object=28)


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("scrl_train"), 12, seed=3, cfg=TINY)


@pytest.fixture(scope="session")
def tiny_val(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("scrl_val"), 4, seed=4, cfg=TINY)
