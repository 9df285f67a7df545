"""SCRL geometry: sampled boxes lie in both crops, respect the IoU limit, and map to the same content."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou, roi_align

from apps.scrl.views import Crop, ViewConfig, image_to_view, intersection, make_pair, render_view, sample_boxes, sample_crop


def _smooth_image(height: int = 90, width: int = 120) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(6 * xx) * torch.cos(5 * yy)])


def test_boxes_inside_intersection_with_iou_limit():
    cfg = ViewConfig(size=64, boxes=10, max_iou=0.5, min_box=8)
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(200):
        a, b = sample_crop(120, 90, cfg, rng), sample_crop(120, 90, cfg, rng)
        boxes = sample_boxes(a, b, cfg, rng)
        inter = intersection(a, b)
        assert len(boxes) <= cfg.boxes
        if inter is None:
            assert len(boxes) == 0
            continue
        seen += len(boxes)
        assert (boxes[:, 0] >= inter[0] - 1e-4).all() and (boxes[:, 2] <= inter[2] + 1e-4).all()
        assert (boxes[:, 1] >= inter[1] - 1e-4).all() and (boxes[:, 3] <= inter[3] + 1e-4).all()
        if len(boxes) > 1:
            iou = box_iou(boxes, boxes) - torch.eye(len(boxes))
            assert float(iou.max()) <= cfg.max_iou + 1e-6
        for crop in (a, b):  # at least min_box view pixels wide/high in each view
            v = image_to_view(boxes, crop, cfg.size)
            assert ((v[:, 2] - v[:, 0]) >= cfg.min_box - 1e-3).all() and ((v[:, 3] - v[:, 1]) >= cfg.min_box - 1e-3).all()
    assert seen > 200


def test_mapping_by_hand_with_flip():
    crop = Crop(x0=10, y0=20, w=50, h=40, flipped=True)
    box = torch.tensor([[20.0, 30.0, 35.0, 40.0]])
    # scale 64/50 in x, 64/40 in y; flip: x -> 64 - x
    expected = torch.tensor([[64 - (35 - 10) * 64 / 50, (30 - 20) * 64 / 40, 64 - (20 - 10) * 64 / 50, (40 - 20) * 64 / 40]])
    torch.testing.assert_close(image_to_view(box, crop, 64), expected)


def test_box_sees_the_same_content_in_both_views():
    """RoIAlign of a box on each view (geometry only) equals RoIAlign of the box on the original image."""
    image = _smooth_image()
    cfg = ViewConfig(size=96, boxes=6, min_box=12)
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(30):
        a, b = sample_crop(120, 90, cfg, rng), sample_crop(120, 90, cfg, rng)
        boxes = sample_boxes(a, b, cfg, rng)
        if not len(boxes):
            continue
        reference = roi_align(image[None], [boxes], output_size=4, aligned=True)
        for crop in (a, b):
            view = render_view(image, crop, cfg.size)
            pooled = roi_align(view[None], [image_to_view(boxes, crop, cfg.size)], output_size=4, aligned=True)
            if crop.flipped:  # a flipped view sees the box's content mirrored
                pooled = pooled.flip(-1)
            assert float((pooled - reference).abs().max()) < 0.03
            checked += 1
    assert checked > 10
    # and a wrong mapping (ignoring the flip) is detected by the same check
    crop = Crop(0, 0, 120, 90, flipped=True)
    box = torch.tensor([[5.0, 5.0, 40.0, 40.0]])
    view = render_view(image, crop, cfg.size)
    unflipped = image_to_view(box, Crop(0, 0, 120, 90, flipped=False), cfg.size)
    wrong = roi_align(view[None], [unflipped], output_size=4, aligned=True).flip(-1)
    assert float((wrong - roi_align(image[None], [box], output_size=4, aligned=True)).abs().max()) > 0.1


def test_make_pair_shapes():
    out = make_pair(_smooth_image(), ViewConfig(size=48, min_box=8), np.random.default_rng(2))
    assert out["views"].shape == (2, 3, 48, 48)
    assert out["boxes0"].shape == out["boxes1"].shape == out["image_boxes"].shape
