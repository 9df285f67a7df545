"""The photo split behind the benchmark: training, validation and held-out photos never overlap,
and every shipped training config reads training photos only (no test-set leakage)."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.sr.data import HELDOUT_PHOTOS, TRAIN_PHOTOS, VALIDATION_PHOTOS
from apps.sr.train import SRConfig
from shared.config import load_config
from shared.data.images import BUNDLED_PHOTOS

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "apps" / "sr" / "configs").glob("*.yaml"))


def test_splits_are_disjoint_bundled_photos() -> None:
    train, val, test = set(TRAIN_PHOTOS), set(VALIDATION_PHOTOS), set(HELDOUT_PHOTOS)
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test <= set(BUNDLED_PHOTOS)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_train_on_training_photos_only(config: Path) -> None:
    cfg = load_config(SRConfig, config)
    names = [src.removeprefix("photo:") for src in cfg.data.hr]
    assert all(src.startswith("photo:") for src in cfg.data.hr)
    assert set(names) <= set(TRAIN_PHOTOS), set(names) - set(TRAIN_PHOTOS)
