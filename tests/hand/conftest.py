"""A tiny synthetic HanCo set made once per test session (2 sequences x 4 frames x 8 cameras, 48 px)."""
from __future__ import annotations

import pytest

from apps.hand.synth import SynthConfig, generate

TINY = SynthConfig(size=48, frames=4)
# `hand train` overrides for a seconds-long run on the tiny set (32-px crops, width 8, one thread); tests add
# --steps, --data and what they compare.
TINY_TRAIN = ["image_size=32", "train.batch_size=4", "train.progress=false", "num_threads=1", "lifter_steps=5", "width=8"]


@pytest.fixture(scope="session")
def tiny_hanco(tmp_path_factory):
    root = tmp_path_factory.mktemp("hanco")
    generate(root, 2, seed=3, cfg=TINY)
    return root
