"""The official SCRL recipe: heads, RoIAlign, and the paper-scale configs running 2 steps on stand-in data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import RoIAlign

from apps.scrl.model import BackboneConfig, RegionEncoder, build_resnet, head_sizes, mlp
from apps.scrl.train import FinetuneConfig, PretrainConfig, RegionBYOLTask, run_pretraining
from shared.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "scrl" / "configs"


def test_heads_as_official():
    head = mlp(2048, 4096, 256)
    assert head[0].bias is not None and head[3].bias is None  # TwoLayerLinearHead: no bias on the last layer
    assert head_sizes(2048) == (4096, 256) and head_sizes(512) == (1024, 64) and head_sizes(128, 512, 128) == (512, 128)
    task = RegionBYOLTask(PretrainConfig(backbone=BackboneConfig(arch="resnet50")))  # defaults follow the backbone
    assert [m.weight.shape for m in (task.online.projector[0], task.online.projector[3])] == [(4096, 2048), (256, 4096)]
    assert [m.weight.shape for m in (task.predictor[0], task.predictor[3])] == [(4096, 256), (256, 4096)]
    groups = task.param_groups()
    assert groups[1]["lars_adaptation"] is False and groups[1]["weight_decay"] == 0.0
    assert all(p.ndim <= 1 for p in groups[1]["params"]) and all(p.ndim > 1 for p in groups[0]["params"])


def test_roi_pooling_as_official():
    torch.manual_seed(0)
    encoder = RegionEncoder(build_resnet(BackboneConfig(width=8)), 16, 8).eval()
    images = torch.randn(2, 3, 160, 160)
    boxes = [torch.tensor([[10.0, 20.0, 90.0, 150.0], [0.0, 0.0, 160.0, 160.0]]), torch.tensor([[33.0, 5.0, 70.0, 60.0]])]
    with torch.no_grad():
        fmap = encoder.backbone(images)
        official = RoIAlign((1, 1), spatial_scale=0.03125, sampling_ratio=-1, aligned=False)
        indexed = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
        torch.testing.assert_close(encoder.pooled(images, boxes), official(fmap, indexed).flatten(1))


def _imagenet_layout(root: Path, count: int = 4) -> Path:
    """Stand-in ImageNet train folder: train/<wnid>/<wnid>_<i>.JPEG."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / "train" / f"n0000000{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (120 + 10 * i, 160, 3), dtype=np.uint8)).save(folder / f"{folder.name}_{i}.JPEG")
    return root / "train"


def test_paper_scale_pretraining_config_runs_two_steps(tmp_path):
    cfg = load_config(PretrainConfig, CONFIGS / "pretrain_scrl_imagenet_r50.yaml", [
        f"data={_imagenet_layout(tmp_path)}", f"train.out_dir={tmp_path / 'run'}", "train.max_steps=2",
        "train.batch_size=2", "train.num_workers=0", "train.progress=false", "train.tensorboard=false",
        "train.warmup_steps=1", "train.device=cpu", "views.size=96", "views.min_box=16"])  # CPU-sized views
    assert (cfg.backbone.arch, cfg.proj_hidden, cfg.proj_dim, cfg.base_momentum) == ("resnet50", 4096, 256, 0.97)
    assert "size: 224" in (CONFIGS / "pretrain_scrl_imagenet_r50.yaml").read_text()
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.weight_decay, cfg.views.box_generation) == ("lars", 14.4, 1e-6, "grid")
    summary = run_pretraining(cfg)
    assert summary["step"] == 2 and np.isfinite(summary["metrics"]["loss"]) and summary["metrics"]["pairs"] >= 2


def _voc_from_coco(coco_json: Path, root: Path) -> Path:
    """The synthetic COCO scenes rewritten in the VOC layout (trainval = test = all, one difficult object)."""
    from apps.scrl.data import read_coco

    dataset = read_coco(coco_json)
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    names = []
    for record in dataset.records:
        (root / "JPEGImages" / record.path.name).write_bytes(record.path.read_bytes())
        objects = "".join(
            f"<object><name>{dataset.class_names[label - 1]}</name><difficult>{int(k == 0)}</difficult><bndbox>"
            f"<xmin>{b[0] + 1:g}</xmin><ymin>{b[1] + 1:g}</ymin><xmax>{b[2]:g}</xmax><ymax>{b[3]:g}</ymax></bndbox></object>"
            for k, (b, label) in enumerate(zip(record.boxes, record.labels)))
        (root / "Annotations" / f"{record.path.stem}.xml").write_text(
            f"<annotation><filename>{record.path.name}</filename><size><width>{record.width}</width>"
            f"<height>{record.height}</height><depth>3</depth></size>{objects}</annotation>")
        names.append(record.path.stem)
    for split in ("trainval", "test"):
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.mark.parametrize("config", ["finetune_coco_r50.yaml", "finetune_voc_r50.yaml"])
def test_paper_finetune_configs_run_two_steps(config, tiny_coco, tiny_val, tmp_path):
    from apps.scrl.d2engine import run_d2_finetune

    if "voc" in config:
        data = val = str(_voc_from_coco(tiny_val, tmp_path / "VOC2007"))
        images = ""
    else:
        data, val, images = str(tiny_coco), str(tiny_val), ""
    cfg = load_config(FinetuneConfig, CONFIGS / config, [
        f"data={data}", f"val={val}", f"images={images}", f"val_images={images}", f"train.out_dir={tmp_path / 'run'}",
        "train.max_steps=2", "train.batch_size=2", "train.num_workers=0", "train.device=cpu",
        "detector.min_size=64", "detector.max_size=64", "min_size_train=[64]", "lr_steps=[1]"])
    assert (cfg.engine, cfg.norm, cfg.backbone.arch, cfg.train.lr) == ("detectron2", "SyncBN", "resnet50", 0.02)
    summary = run_d2_finetune(cfg)
    written = (tmp_path / "run" / "config.yaml").read_text()
    assert "NORM: SyncBN" in written and "DEPTH: 50" in written
    assert summary["iterations"] == 2 and set(summary["eval"]) == {"AP", "AP50", "AP75"}
    if "voc" in config:  # difficult objects: crowd (ignored) for the evaluation only
        val_json = json.loads((tmp_path / "run" / "val_coco.json").read_text())
        train_json = json.loads((tmp_path / "run" / "train_coco.json").read_text())
        assert sum(a["iscrowd"] for a in val_json["annotations"]) == len(val_json["images"])
        assert sum(a["iscrowd"] for a in train_json["annotations"]) == 0
