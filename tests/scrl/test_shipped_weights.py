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
