"""``heatmap_stride: 2``: finer heatmaps (32 x 32 for a 64-px crop) through a residual step with a skip from the
stride-2 features, which starts as the bilinear upsampling of a stride-4 estimator's maps when continuing one."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from apps.hand.model import KeypointNet, soft_argmax
from apps.hand.train import load_regressor_weights
from .conftest import TINY_TRAIN


def _pair(tmp_path):
    from shared.weights import save_safetensors

    torch.manual_seed(0)
    net4 = KeypointNet("resnet10_small", 8, 64, None, "heatmap", True, "right")
    for p in net4.head.parameters():  # move the head off its init so the check is not trivial
        p.data.add_(0.05 * torch.randn_like(p))
    net4.eval()
    path = tmp_path / "w4.safetensors"
    save_safetensors(net4.export_state_dict(), path, metadata=net4.arch)
    net2 = KeypointNet("resnet10_small", 8, 64, None, "heatmap", True, "right", heatmap_stride=2)
    load_regressor_weights(net2, path)
    return net4, net2.eval(), path


def test_stride2_continues_a_stride4_estimator_as_its_upsampled_maps(tmp_path):
    net4, net2, _ = _pair(tmp_path)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        out4, out2 = net4(x), net2(x)
        feats = nn.functional.interpolate(out4["features"], size=(32, 32), mode="bilinear", align_corners=False)
        logits = nn.functional.interpolate(net4.head.heat(out4["features"]), size=(32, 32), mode="bilinear",
                                           align_corners=False)
    assert out2["heatmap"].shape == (3, 21, 32, 32) and out4["heatmap"].shape == (3, 21, 16, 16)
    assert torch.allclose(out2["features"], feats, atol=1e-5)
    expected = torch.softmax(logits.flatten(2), -1).view(3, 21, 32, 32)
    assert torch.allclose(out2["heatmap"], expected, atol=1e-6)
    assert torch.allclose(out2["uv"], soft_argmax(expected), atol=1e-6)
    # the finer grid's read-out of the same (upsampled) maps stays close to the stride-4 one
    assert (out2["uv"] - out4["uv"]).abs().max() < 0.03


def test_stride2_weights_round_trip_and_train_from_a_stride4_file(tiny_hanco, tmp_path, run_cli):
    from shared.weights import load_state_dict, save_safetensors

    _, net2, path4 = _pair(tmp_path)
    save_safetensors(net2.export_state_dict(), tmp_path / "w2.safetensors", metadata=net2.arch)
    loaded, meta = KeypointNet.from_file(tmp_path / "w2.safetensors")
    x = torch.rand(2, 3, 64, 64)
    assert meta["heatmap_stride"] == "2" and loaded.head.stride == 2
    with torch.no_grad():
        assert torch.allclose(loaded(x)["uv"], net2(x)["uv"], atol=1e-6)
    common = [*TINY_TRAIN, "--steps", "2", "train.log_every=1", "--data", tiny_hanco]
    code, _, err = run_cli(["hand", "train", "--out", tmp_path / "s2", "--init", path4, "heatmap_stride=2", *common])
    assert code == 0, err
    state = load_state_dict(tmp_path / "s2/model.safetensors")
    assert any(k.startswith("head.up2.") for k in state)
    net, _ = KeypointNet.from_file(tmp_path / "s2/model.safetensors")
    img = np.zeros((1, 32, 32, 3), np.uint8)
    from apps.hand.infer import predict

    uv, _, conf = predict(net, img, with_confidence=True)
    assert uv.shape == (1, 21, 2) and np.isfinite(conf["joint_confidence"]).all()
    code, _, err = run_cli(["hand", "train", "--out", tmp_path / "s3", "heatmap_stride=3", *common])
    assert code == 2 and "heatmap_stride" in err
