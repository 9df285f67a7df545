"""Tiny synthetic MOT data shared by the mot tests (generated once per session, a few seconds)."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.mot.synth import SynthConfig, generate_dataset

TINY = SynthConfig(width=160, height=120, length=16, objects=5, fp_rate=0.3)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mot_tiny")
    generate_dataset(root, 2, seed=11, cfg=TINY)
    return root
