"""Real detectron2: our export loads with DetectionCheckpointer into build_model and computes our
features; DefaultTrainer trains on the registered synthetic COCO set and COCOEvaluator scores it."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from apps.scrl.export import export
from apps.scrl.views import IMAGENET_MEAN, IMAGENET_STD

# detectron2 is part of the install (`make install` runs tools/install_detectron2.py): no skip if it is missing
import detectron2  # noqa: E402,F401


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Random BN statistics/affines so that a wrong mapping cannot go unnoticed."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("arch,prefix", [("resnet18", "online_network."), ("resnet50", "module.encoder_q.")])
def test_export_matches_our_backbone_in_detectron2(tmp_path, arch, prefix):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    ours = _randomised(getattr(torchvision.models, arch)())
    weights = tmp_path / "w.safetensors"
    save_file({prefix + k: v.contiguous() for k, v in ours.state_dict().items()}, str(weights))
    written = export(weights, "detectron2", tmp_path / "x.pkl", num_classes=4)
    payload = pickle.loads((tmp_path / "x.pkl").read_bytes())
    assert payload["matching_heuristics"] is True and "stem.conv1.weight" in payload["model"]
    cfg = get_cfg()
    cfg.merge_from_file(written["config"])
    cfg.MODEL.DEVICE = "cpu"
    assert cfg.INPUT.FORMAT == "RGB" and cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False
    assert cfg.MODEL.WEIGHTS.endswith("x.pkl")
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    image = torch.randint(0, 256, (3, 64, 96)).float()  # 0-255 RGB, as detectron2 reads images
    with torch.no_grad():
        feats = model.backbone.bottom_up(model.preprocess_image([{"image": image}]).tensor)
        x = ((image / 255 - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1))[None]
        h = ours.maxpool(ours.relu(ours.bn1(ours.conv1(x))))
        for index in range(4):
            h = getattr(ours, f"layer{index + 1}")(h)
            theirs = feats[f"res{index + 2}"]
            assert theirs.shape == h.shape
            assert float((theirs - h).abs().max() / h.abs().max()) < 1e-5


def test_detectron2_trainer_and_coco_evaluator(tiny_coco, tiny_val, tmp_path, run_cli):
    torch.manual_seed(0)
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    out = tmp_path / "d2run"
    code, stdout, stderr = run_cli([
        "scrl", "finetune", "--engine", "detectron2", "--data", tiny_coco, "--val", tiny_val, "--weights", weights,
        "--out", out, "--steps", "2", "train.batch_size=2", "detector.min_size=64", "detector.max_size=64",
        "train.device=cpu"])
    assert code == 0, stderr
    assert (out / "backbone.pkl").is_file() and (out / "backbone.yaml").is_file()
    assert (out / "detectron2" / "model_final.pth").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"AP", "AP50", "AP75"} and all(0.0 <= v <= 1.0 for v in metrics.values())
    assert "box AP" in stdout
