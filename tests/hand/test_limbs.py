"""The training-only limb-map head (``wbone``): bone targets drawn from known keypoints lie on the rendered
fingers, the loss is logged, and the exported estimator is unchanged by it."""
from __future__ import annotations

import json

import numpy as np
import torch

from apps.hand.data import BONES
from apps.hand.train import LabelledHands, open_labelled
from shared.losses import LimbHeatmapCE
from .conftest import TINY_TRAIN


def test_bone_targets_lie_on_the_rendered_hand(tiny_hanco):
    """Limb targets at pixel resolution (sigma 1 px) from each image's own keypoints put most of their mass on
    the hand mask; the same targets over another hand's mask do not (so the check can fail)."""
    images = open_labelled(tiny_hanco, 48, with_foreground=True)
    idx = np.nonzero(images.has_fg)[0][:12]
    data = LabelledHands(images, idx, augment=False, right_hands=False, with_fits=False)
    size = images.size
    # labels are in crop units with pixel centres at integers; the target grid puts cell j at (j + 0.5) / size
    uv = torch.from_numpy((data.uv[idx] * size + 0.5) / size).double()
    targets = LimbHeatmapCE(BONES, sigma=1.0).targets(uv, size, size).numpy()          # (N, 20, 48, 48)
    masks = images.alpha[idx] > 0.5
    own = np.array([(targets[n] * masks[n]).sum((-2, -1)) for n in range(len(idx))])   # (N, 20) mass on the hand
    other = np.array([(targets[n] * masks[(n + 6) % len(idx)]).sum((-2, -1)) for n in range(len(idx))])
    assert own.mean() > 0.95 and np.median(own) > 0.97
    assert other.mean() < own.mean() - 0.2


def test_training_with_limb_maps_logs_the_loss_and_exports_the_same_estimator(tiny_hanco, tmp_path, run_cli):
    from shared.weights import load_state_dict

    common = [*TINY_TRAIN, "--steps", "2", "train.log_every=1", "--data", tiny_hanco]
    assert run_cli(["hand", "train", "--out", tmp_path / "plain", *common])[0] == 0
    code, _, err = run_cli(["hand", "train", "--out", tmp_path / "bones", "wbone=1.0", *common])
    assert code == 0, err
    logged = [json.loads(line) for line in (tmp_path / "bones/metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss_bone"]) and r["loss_bone"] > 0 for r in logged if "loss" in r)
    assert any("loss_bone" in r for r in logged)
    plain_log = (tmp_path / "plain/metrics.jsonl").read_text()
    assert "loss_bone" not in plain_log
    plain, bones = load_state_dict(tmp_path / "plain/model.safetensors"), load_state_dict(tmp_path / "bones/model.safetensors")
    assert plain.keys() == bones.keys() and not any("bone" in k for k in bones)   # training-only: not exported
    ckpt_plain = torch.load(tmp_path / "plain/checkpoints/last.pt", weights_only=True)
    ckpt_bones = torch.load(tmp_path / "bones/checkpoints/last.pt", weights_only=True)
    assert "bone_head.weight" in ckpt_bones["model"] and "bone_head.weight" not in ckpt_plain["model"]
    code, _, err = run_cli(["hand", "train", "--out", tmp_path / "pooled", "wbone=1.0", "head=pooled", *common])
    assert code == 2 and "wbone" in err


def test_limb_head_init_leaves_the_global_rng_alone():
    """The limb head draws its init from its own seed in a forked RNG: the run's other random draws stay as
    without it (the matched control differs only by the loss term)."""
    from apps.hand.model import KeypointNet
    from apps.hand.train import KeypointTask

    net = KeypointNet("resnet10_small", 8, 64, None, "heatmap", False, "right")
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    task = KeypointTask(net, 1.0, 1.0, wbone=1.0, bone_seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    again = KeypointTask(net, 1.0, 1.0, wbone=1.0, bone_seed=3)
    assert torch.equal(task.bone_head.weight, again.bone_head.weight) and task.bone_head.out_channels == len(BONES)
    out = net(torch.rand(2, 3, 32, 32))
    assert task.bone_head(out["features"]).shape == (2, len(BONES), 8, 8)
