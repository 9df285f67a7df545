"""The shipped estimator loads (sha256 from the manifest) and, on unseen frames, reads the hand's position
in 2-D (its error is below an untrained network's and rises when predictions are scored against other
images); its 3-D is about level with the aligned mean pose (0.985 x on the test split; stated in the README, not
asserted here)."""
from __future__ import annotations

import torch

from apps.hand.cli import load_regressor
from apps.hand.data import HanCo
from apps.hand.infer import evaluate_hanco, predict
from apps.hand.model import KeypointNet
from apps.hand.synth import SynthConfig, generate
from apps.hand.train import HanCoImages, load_pretrained_encoder
from shared.weights import shipped_weight


def test_shipped_estimator_on_unseen_frames(tmp_path):
    generate(tmp_path, 2, seed=404, cfg=SynthConfig(size=64, frames=3))
    ds = HanCo(tmp_path)
    images = HanCoImages(ds, ds.sequences, 64)
    net, size = load_regressor(None)
    assert size == 64 and net.head_kind == "heatmap"
    shipped = evaluate_hanco(net, images, shuffled=True)
    torch.manual_seed(0)
    untrained = evaluate_hanco(KeypointNet().eval(), images, shuffled=True)
    assert shipped["err2d_px"] < untrained["err2d_px"] - 1.5
    assert shipped["shuffled_err2d_px"] > 1.2 * shipped["err2d_px"]          # the image is read (2-D)
    assert shipped["pa_mpjpe_mm"] < untrained["pa_mpjpe_mm"]
    conf = predict(net, images.images, with_confidence=True)[-1]
    assert (conf["hand_score"] > 0.5).mean() > 0.8                             # hands are seen as hands (92 % of the test split)


def test_shipped_encoder_loads_into_the_estimator():
    assert load_pretrained_encoder(KeypointNet(), shipped_weight("hand_moco_bgswap_multiview")) > 10
