"""Training tasks: SCL forward/backward and its band progress; the segmenter only predicts its category's parts."""
from __future__ import annotations

import numpy as np
import torch

from apps.points.data import CATEGORIES, Shape
from apps.points.model import EncoderConfig, SegNet
from apps.points.train import InstanceContrastTask, PointsConfig, SelfContrastTask, select_fraction


def _cfg(**kw) -> PointsConfig:
    cfg = PointsConfig(points=64, encoder=EncoderConfig(k=8, width=4, global_dim=8), num_anchors=8, patch_size=8,
                       num_negatives=4)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_self_contrast_task_trains_and_tightens_its_band():
    """The descriptor ablation's rank band (the official absolute band: test_scl_official.py)."""
    torch.manual_seed(0)
    task = SelfContrastTask(_cfg(similarity="descriptor", positive="self_similar"))
    x = torch.randn(2, 6, 64)
    out = task({"x": x})
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and out["band_lo"].item() == 0.0
    assert all(p.grad is not None for p in task.encoder.parameters())
    task.on_step_end(task.cfg.train.max_steps - 1, out)
    assert task.progress.item() == 1.0 and "progress" in task.state_dict()  # checkpointed -> exact resume
    assert abs(task({"x": x})["band_lo"].item() - 0.5) < 1e-6


def test_instance_ablation_uses_two_views():
    torch.manual_seed(0)
    out = InstanceContrastTask(_cfg(contrast="instance"))({"x": torch.randn(3, 6, 64), "x2": torch.randn(3, 6, 64)})
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def test_segmenter_predicts_only_the_category_parts():
    torch.manual_seed(0)
    net = SegNet(EncoderConfig(k=8, width=4, global_dim=8)).eval()
    cats = torch.arange(16)
    pred = net(torch.randn(16, 6, 32), cats).argmax(1)
    for c in range(16):
        assert set(pred[c].tolist()) <= set(CATEGORIES[c][2])


def test_label_fraction_is_stratified_with_one_shape_minimum():
    shapes = [Shape(np.zeros((4, 3)), np.zeros((4, 3)), np.zeros(4), c, str(i))
              for i, c in enumerate([0] * 50 + [4] * 10)]
    chosen = select_fraction(shapes, 0.05, seed=1)
    cats = [s.category for s in chosen]
    assert cats.count(0) == 2 and cats.count(4) == 1  # round(2.5) = 2, max(1, round(0.5)) = 1
    assert select_fraction(shapes, 0.05, seed=1) == chosen
