"""SCRL geometry: sampled boxes lie in both crops, respect the IoU limit, and map to the same content."""
from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou, roi_align

from apps.scrl.views import Crop, ViewConfig, image_to_view, intersection, make_pair, render_view, sample_boxes, sample_crop


def _smooth_image(height: int = 90, width: int = 120) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(6 * xx) * torch.cos(5 * yy)])


def _official_generate(t1, t2, cfg: ViewConfig, rng: np.random.Generator) -> list[list[float]]:
    """kakaobrain/scrl ``SCRLBoxGenerator.generate`` for one image, written out in view-1 pixels from
    its (y, x, h, w, flipped) crops, with ``rng.integers`` in place of ``np.random.randint``."""
    S, min_size = cfg.size, int(cfg.min_box)
    int_l, int_r = max(t1[1], t2[1]), min(t1[1] + t1[3], t2[1] + t2[3])
    int_t, int_b = max(t1[0], t2[0]), min(t1[0] + t1[2], t2[0] + t2[2])
    if int_l >= int_r or int_t >= int_b:
        return []
    sw1, sh1, sw2, sh2 = S / t1[3], S / t1[2], S / t2[3], S / t2[2]
    swmin, shmin = min(sw1, sw2), min(sh1, sh2)
    W, H = round((int_r - int_l) * swmin), round((int_b - int_t) * shmin)
    if min_size >= W or min_size >= H:
        return []
    dwr, dhr = int(W / min_size) + 1, int(H / min_size) + 1
    sample = lambda lo, hi: int(rng.integers(int(lo), int(hi)))  # noqa: E731
    boxes1: list[list[float]] = []
    for i in range(cfg.boxes):
        for _ in range(cfg.tries):
            div_w, div_h = sample(1, dwr), sample(1, dhr)
            gw, gh = W / div_w, H / div_h
            gx, gy = sample(0, div_w), sample(0, div_h)
            bw, bh = sample(min_size, gw + 1), sample(min_size, gh + 1)
            bx = sample(0, gw - bw + 1) + int(gx * gw)
            by = sample(0, gh - bh + 1) + int(gy * gh)
            l1 = bx / swmin * sw1 + (int_l - t1[1]) * sw1
            r1 = l1 + bw / swmin * sw1
            t_1 = by / shmin * sh1 + (int_t - t1[0]) * sh1
            b1 = t_1 + bh / shmin * sh1
            if t1[4]:
                l1, r1 = S - r1, S - l1
            if i == 0:
                break
            ious = []
            for box in boxes1[-i:]:
                iw = max(min(r1, box[2]) - max(l1, box[0]), 0)
                ih = max(min(b1, box[3]) - max(t_1, box[1]), 0)
                inter = iw * ih
                ious.append(0 if inter == 0 else inter / ((r1 - l1) * (b1 - t_1) + (box[2] - box[0]) * (box[3] - box[1]) - inter))
            if max(ious) < cfg.max_iou:
                break
        boxes1.append([max(0.0, l1), max(0.0, t_1), min(S, r1), min(S, b1)])
    return boxes1


def test_grid_boxes_follow_the_official_generator():
    cfg = ViewConfig(size=96, boxes=10, max_iou=0.5, min_box=16)
    seen = 0
    for seed in range(60):
        crop_rng = np.random.default_rng(seed)
        a, b = sample_crop(160, 120, cfg, crop_rng), sample_crop(160, 120, cfg, crop_rng)
        ours = sample_boxes(a, b, cfg, np.random.default_rng(1000 + seed))
        t1, t2 = ((c.y0, c.x0, c.h, c.w, c.flipped) for c in (a, b))
        theirs = torch.tensor(_official_generate(t1, t2, cfg, np.random.default_rng(1000 + seed))).reshape(-1, 4)
        assert len(ours) == len(theirs) and len(ours) in (0, cfg.boxes)  # always K boxes when any
        if len(ours):
            torch.testing.assert_close(image_to_view(ours, a, cfg.size).clamp(0, cfg.size), theirs, atol=2e-3, rtol=0)
            inter = intersection(a, b)
            tol = max(a.w, b.w, a.h, b.h) / cfg.size  # one pixel of the smaller view (rounding of W, H)
            assert (ours[:, 0] >= inter[0] - 1e-4).all() and (ours[:, 2] <= inter[2] + tol).all()
            assert (ours[:, 1] >= inter[1] - 1e-4).all() and (ours[:, 3] <= inter[3] + tol).all()
            for crop in (a, b):  # at least min_box view pixels in each view (up to the rounding of W, H)
                v = image_to_view(ours, crop, cfg.size)
                assert ((v[:, 2] - v[:, 0]) >= cfg.min_box - 1).all() and ((v[:, 3] - v[:, 1]) >= cfg.min_box - 1).all()
            seen += 1
    assert seen > 20


def test_random_box_generation_stays_in_the_intersection():
    cfg = ViewConfig(size=64, boxes=10, min_box=8, box_generation="random")
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = sample_crop(120, 90, cfg, rng), sample_crop(120, 90, cfg, rng)
        boxes, inter = sample_boxes(a, b, cfg, rng), intersection(a, b)
        if len(boxes):
            assert len(boxes) == cfg.boxes
            tol = max(a.w, b.w, a.h, b.h) / cfg.size
            assert (boxes[:, 0] >= inter[0] - 1e-4).all() and (boxes[:, 3] <= inter[3] + tol).all()


def test_official_augmentation_per_view(monkeypatch):
    """View 1 always blurred, never solarized; view 2 blurred with p 0.1, solarized with p 0.2 (official getters.py)."""
    import apps.scrl.views as views

    cfg = ViewConfig()
    assert (cfg.blur, cfg.solarize, cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue) == (
        [1.0, 0.1], [0.0, 0.2], 0.4, 0.4, 0.2, 0.1)
    calls = {(kind, index): 0 for kind in ("blur", "solarize") for index in (0, 1)}
    current = {"index": 0}
    real_blur, real_solarize = views.resize_blur, views.solarize
    monkeypatch.setattr(views, "resize_blur", lambda v, f: calls.__setitem__(("blur", current["index"]), calls[("blur", current["index"])] + 1) or real_blur(v, f))
    monkeypatch.setattr(views, "solarize", lambda v: calls.__setitem__(("solarize", current["index"]), calls[("solarize", current["index"])] + 1) or real_solarize(v))
    image = _smooth_image(32, 32)
    for seed in range(200):
        rng = np.random.default_rng(seed)
        for index in (0, 1):
            current["index"] = index
            out = views.colour_augment(image, cfg, rng, index)
            assert out.shape == image.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert calls[("blur", 0)] == 200 and calls[("solarize", 0)] == 0
    assert 7 < calls[("blur", 1)] < 36 and 24 < calls[("solarize", 1)] < 60  # 20 and 40 expected


def test_blur_and_solarize_operations():
    from apps.scrl.views import resize_blur, solarize

    image = _smooth_image(64, 64)
    small = torch.nn.functional.interpolate(image[None], size=(42, 42), mode="bicubic", antialias=True, align_corners=False)
    reference = torch.nn.functional.interpolate(small, size=(64, 64), mode="bicubic", align_corners=False)[0].clamp(0, 1)
    torch.testing.assert_close(resize_blur(image, 1.5), reference)  # down to int(64 // 1.5) = 42 and back
    pixels = torch.tensor([51, 127, 128, 200]) / 255  # PIL solarize(128): values >= 128 inverted
    torch.testing.assert_close(solarize(pixels), torch.tensor([51, 127, 255 - 128, 255 - 200]) / 255)


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
