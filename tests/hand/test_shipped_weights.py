"""The shipped regressor loads (sha256 from the manifest) and beats an untrained network on unseen frames."""
from __future__ import annotations

import torch

from apps.hand.cli import load_regressor
from apps.hand.data import HanCo
from apps.hand.infer import evaluate_hanco
from apps.hand.model import KeypointNet
from apps.hand.synth import SynthConfig, generate
from apps.hand.train import HanCoImages, load_pretrained_encoder
from shared.weights import shipped_weight


def test_shipped_regressor_on_unseen_frames(tmp_path):
    generate(tmp_path, 1, seed=404, cfg=SynthConfig(size=64, frames=3))
    ds = HanCo(tmp_path)
    images = HanCoImages(ds, ds.sequences, 64)
    net, size = load_regressor(None)
    assert size == 64
    shipped = evaluate_hanco(net, images)
    torch.manual_seed(0)
    untrained = evaluate_hanco(KeypointNet().eval(), images)
    assert shipped["pa_mpjpe_mm"] < 30 and shipped["pa_mpjpe_mm"] < untrained["pa_mpjpe_mm"] - 5
    assert shipped["err2d_px"] < untrained["err2d_px"]


def test_shipped_encoder_loads_into_the_regressor():
    assert load_pretrained_encoder(KeypointNet(), shipped_weight("hand_moco_bgswap_multiview")) > 10
