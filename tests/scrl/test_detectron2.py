"""Real detectron2: our export loads with DetectionCheckpointer into build_model and computes our
features; DefaultTrainer trains on the registered synthetic COCO set and COCOEvaluator scores it."""
from __future__ import annotations

import json
import pickle

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from apps.scrl.export import export, load_exported_config
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
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    ours = _randomised(getattr(torchvision.models, arch)())
    weights = tmp_path / "w.safetensors"
    save_file({prefix + k: v.contiguous() for k, v in ours.state_dict().items()}, str(weights))
    written = export(weights, "detectron2", tmp_path / "x.pkl", num_classes=4)
    payload = pickle.loads((tmp_path / "x.pkl").read_bytes())
    assert payload["matching_heuristics"] is True and "stem.conv1.weight" in payload["model"]
    cfg = load_exported_config(written["config"])  # MODEL.WEIGHTS is stored relative to the yaml
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
    assert stderr.strip() == "", stderr  # detectron2/fvcore reports go to stdout, its deprecation noise nowhere
    assert (out / "backbone.pkl").is_file() and (out / "backbone.yaml").is_file()
    assert (out / "detectron2" / "model_final.pth").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"AP", "AP50", "AP75"} and all(0.0 <= v <= 1.0 for v in metrics.values())
    assert "box AP" in stdout


def _r18_weights(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in torchvision.models.resnet18().state_dict().items()}, str(weights))
    return weights


def test_export_refuses_names_detectron2_cannot_load_or_that_collide(tmp_path, run_cli):
    weights = _r18_weights(tmp_path)
    for name in ("x.pth", "x", "x.yaml", "x.pkl.yaml"):
        code, out, err = run_cli(["scrl", "export", "--weights", weights, "--format", "detectron2",
                                  "--out", tmp_path / name])
        assert code == 2 and ".pkl" in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not (tmp_path / name).exists() and not (tmp_path / "x.yaml").exists()
    code, _, err = run_cli(["scrl", "export", "--weights", weights, "--format", "torchvision", "--out", tmp_path / "t.yaml"])
    assert code == 2 and ".pth" in err


def test_exported_pair_moves_and_runs_on_the_chosen_device(tmp_path, run_cli, monkeypatch):
    import shutil

    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from apps.scrl.export import load_exported_config

    weights = _r18_weights(tmp_path)
    code, _, err = run_cli(["scrl", "export", "--weights", weights, "--format", "detectron2", "--out",
                            tmp_path / "a" / "x.pkl", "--device", "cpu", "--num-classes", "3"])
    assert code == 0, err
    text = (tmp_path / "a" / "x.yaml").read_text()
    assert "DEVICE: cpu" in text and "WEIGHTS: x.pkl" in text and str(tmp_path) not in text
    shutil.move(tmp_path / "a", tmp_path / "moved")  # the pair travels together
    monkeypatch.chdir(tmp_path)
    cfg = load_exported_config(tmp_path / "moved" / "x.yaml")
    assert cfg.MODEL.WEIGHTS == str((tmp_path / "moved" / "x.pkl").resolve()) and cfg.MODEL.DEVICE == "cpu"
    model = build_model(cfg)  # builds on CPU as written (no cuda on this machine needed)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    ours = torchvision.models.resnet18()
    ours.load_state_dict(load_state_dict_file(weights))
    torch.testing.assert_close(model.backbone.bottom_up.stem.conv1.weight, ours.conv1.weight)
    # auto = what this machine has
    code, _, err = run_cli(["scrl", "export", "--weights", weights, "--format", "detectron2", "--out", tmp_path / "b.pkl"])
    assert code == 0, err
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"DEVICE: {expected}" in (tmp_path / "b.yaml").read_text()


def load_state_dict_file(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_export_and_detectron2_paths_print_nothing_on_stderr(tmp_path):
    """A fresh process (detectron2 not yet imported): no import warnings on success, exactly one line on error."""
    import subprocess
    import sys
    from pathlib import Path

    weights = _r18_weights(tmp_path)
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "shared.cli", "scrl", "export", "--weights", str(weights),
                          "--format", "detectron2", "--out", str(tmp_path / "x.pkl")],
                         cwd=repo, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    run = subprocess.run([sys.executable, "-m", "shared.cli", "scrl", "finetune", "--engine", "detectron2",
                          "--data", str(bad), "--weights", str(weights), "--out", str(tmp_path / "run")],
                         cwd=repo, capture_output=True, text=True, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1 and len(lines) == 1 and lines[0].startswith("cvsuite: error: "), run.stderr
