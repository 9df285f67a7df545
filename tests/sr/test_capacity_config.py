"""Capacity pilot (issue 23): the wider config is the photos recipe with only the network size changed, and the
speed script's untrained candidates are the reference network with exactly the requested overrides."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from apps.sr.model import count_parameters, load_model
from apps.sr.train import SRConfig
from evaluation.sr_speed_pair import untrained_candidate
from shared.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "apps" / "sr" / "configs"
SHIPPED = ROOT / "weights" / "sr_crl_x4.safetensors"


def test_wide_config_changes_only_the_network_size():
    base = load_config(SRConfig, CONFIGS / "crl_x4_photos.yaml")
    wide = load_config(SRConfig, CONFIGS / "crl_x4_photos_w64b8.yaml")
    assert (wide.model.width, wide.model.invariant, wide.model.body_blocks) == (64, 48, 8)
    assert dataclasses.replace(wide.model, width=48, invariant=36, body_blocks=6) == base.model
    wide.model, wide.train.out_dir = base.model, base.train.out_dir
    assert wide == base  # same photos, steps, batch, patches, mix, loss, lr, seed


def test_untrained_candidate_applies_the_overrides():
    shipped = load_model(SHIPPED, 4)
    same = untrained_candidate(str(SHIPPED), "")
    assert count_parameters(same) == count_parameters(shipped) == 521_040
    assert same.colour_lock == shipped.colour_lock and not same.training
    wide = untrained_candidate(str(SHIPPED), "width=64,invariant=48,body_blocks=8")
    assert count_parameters(wide) == 1_051_968
    assert wide.receptive_radius == shipped.receptive_radius + 4  # 2 more body blocks, 2 LR px each
