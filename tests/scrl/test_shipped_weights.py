"""The shipped SCRL / BYOL backbones load strictly into resnet18_slim and differ from each other."""
from __future__ import annotations

import torch

from apps.scrl.cli import SHIPPED
from apps.scrl.export import detect_architecture
from shared.weights import load_backbone, shipped_weight


def test_shipped_backbones_load():
    models = {}
    for method, name in SHIPPED.items():
        path = shipped_weight(name)  # checks the manifest sha256
        arch = detect_architecture(path)
        assert (arch.arch, arch.width) == ("resnet18_slim", 16)
        models[method], report = load_backbone(path, arch="resnet18_slim", strict=True, width=16)
        assert not report["missing"]
    assert not torch.equal(models["scrl"].conv1.weight, models["byol"].conv1.weight)


def test_shipped_detector_detects_held_out_shapes(tmp_path):
    """The shipped detector (float16 file) loads and finds objects on scenes of its held-out seed."""
    from apps.scrl.cli import SHIPPED_DETECTOR
    from apps.scrl.data import read_coco
    from apps.scrl.evaluate import evaluate_detector
    from apps.scrl.model import load_detector
    from apps.scrl.synth import SceneConfig, generate

    model, names, _ = load_detector(shipped_weight(SHIPPED_DETECTOR))
    assert names == ["disc", "square", "triangle", "ring"]
    scenes = generate(tmp_path, 6, seed=1002, cfg=SceneConfig(size=96, min_object=10, max_object=34))
    metrics = evaluate_detector(model, read_coco(scenes))
    assert metrics["AP50"] > 0.05  # far above chance on these 6 scenes
