"""SCRL's two views with their geometry kept, and the boxes sampled in their intersection.

A view is ``RandomResizedCrop(scale 0.2-1) -> optional horizontal flip -> colour jitter / grey``.
We keep each crop's rectangle ``(x0, y0, w, h)`` in image pixels and its flip flag, so any image
box can be mapped into the view's pixel frame (:func:`image_to_view`). Boxes are drawn inside the
intersection of the two crops (:func:`sample_boxes`): up to ``K`` boxes, IoU <= ``max_iou`` between
them; a pair of crops without overlap gives no boxes (the image then adds nothing to the SCRL loss,
as in the paper).
"""
from __future__ import annotations

from shared.config import bounded

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ViewConfig:
    """Augmentations (SCRL/BYOL recipe, at CPU size)."""

    size: int = bounded(96, ge=16, le=1024)  # output side of each view
    min_scale: float = bounded(0.2, gt=0.0, le=1.0)
    max_scale: float = bounded(1.0, gt=0.0, le=1.0)
    flip: float = bounded(0.5, ge=0.0, le=1.0)
    jitter: float = bounded(0.8, ge=0.0, le=1.0)  # probability of colour jitter (brightness/contrast/saturation 0.4, hue 0.1)
    grey: float = bounded(0.2, ge=0.0, le=1.0)
    boxes: int = bounded(10, ge=1, le=1000)  # K boxes per image
    max_iou: float = bounded(0.5, ge=0.0, le=1.0)  # between sampled boxes
    min_box: float = bounded(16.0, gt=0.0, le=4096.0)  # minimum box side in view pixels (in both views)
    tries: int = bounded(50, ge=1, le=10_000)


@dataclass
class Crop:
    """A view's rectangle in image pixels and whether the view was flipped."""

    x0: float
    y0: float
    w: float
    h: float
    flipped: bool


def sample_crop(width: int, height: int, cfg: ViewConfig, rng: np.random.Generator) -> Crop:
    """torchvision's RandomResizedCrop rule (area scale, log-uniform ratio 3/4-4/3, 10 tries, then centre)."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(cfg.min_scale, cfg.max_scale)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            x0 = int(rng.integers(0, width - w + 1))
            y0 = int(rng.integers(0, height - h + 1))
            return Crop(x0, y0, w, h, bool(rng.random() < cfg.flip))
    side = min(width, height)
    return Crop((width - side) // 2, (height - side) // 2, side, side, bool(rng.random() < cfg.flip))


def image_to_view(boxes: torch.Tensor, crop: Crop, size: int) -> torch.Tensor:
    """Map (N, 4) image-pixel boxes (x0, y0, x1, y1) into a ``size``-pixel view made from ``crop``."""
    sx, sy = size / crop.w, size / crop.h
    x0 = (boxes[:, 0] - crop.x0) * sx
    x1 = (boxes[:, 2] - crop.x0) * sx
    y0 = (boxes[:, 1] - crop.y0) * sy
    y1 = (boxes[:, 3] - crop.y0) * sy
    if crop.flipped:
        x0, x1 = size - x1, size - x0
    return torch.stack([x0, y0, x1, y1], dim=1)


def render_view(image: torch.Tensor, crop: Crop, size: int) -> torch.Tensor:
    """Crop + resize (bilinear, antialiased) + flip a float (3, H, W) image; no colour change."""
    x0, y0 = int(crop.x0), int(crop.y0)
    patch = image[:, y0:y0 + int(crop.h), x0:x0 + int(crop.w)]
    view = F.interpolate(patch[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    return view.flip(-1) if crop.flipped else view


_GREY = torch.tensor([0.299, 0.587, 0.114])
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _grey(view: torch.Tensor) -> torch.Tensor:
    return torch.einsum("c,chw->hw", _GREY, view)[None]


def rotate_hue(view: torch.Tensor, shift: float) -> torch.Tensor:
    """Hue shift by ``shift`` turns as a rotation of the chroma plane in YIQ space (a 3x3 colour matrix;
    the linear approximation of the HSV hue shift, ~50x cheaper on CPU)."""
    angle = 2 * math.pi * shift
    rotation = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(angle), -math.sin(angle)],
                             [0.0, math.sin(angle), math.cos(angle)]])
    matrix = _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ
    return torch.einsum("ij,jhw->ihw", matrix, view)


def colour_augment(view: torch.Tensor, cfg: ViewConfig, rng: np.random.Generator) -> torch.Tensor:
    """Colour jitter (brightness/contrast/saturation 0.4, hue 0.1, random order) and random greyscale."""
    if rng.random() < cfg.jitter:
        factors = {"b": rng.uniform(0.6, 1.4), "c": rng.uniform(0.6, 1.4), "s": rng.uniform(0.6, 1.4),
                   "h": rng.uniform(-0.1, 0.1)}
        for kind in rng.permutation(["b", "c", "s", "h"]):
            value = float(factors[str(kind)])
            if kind == "b":
                view = view * value
            elif kind == "c":
                view = _grey(view).mean() + value * (view - _grey(view).mean())
            elif kind == "s":
                view = _grey(view) + value * (view - _grey(view))
            else:
                view = rotate_hue(view, value)
            view = view.clamp(0, 1)
    if rng.random() < cfg.grey:
        view = _grey(view).expand(3, -1, -1)
    return view.clamp(0, 1).contiguous()


def intersection(a: Crop, b: Crop) -> tuple[float, float, float, float] | None:
    """The two crops' overlap in image pixels (x0, y0, x1, y1), or None."""
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1, y1 = min(a.x0 + a.w, b.x0 + b.w), min(a.y0 + a.h, b.y0 + b.h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def sample_boxes(a: Crop, b: Crop, cfg: ViewConfig, rng: np.random.Generator) -> torch.Tensor:
    """Up to ``cfg.boxes`` image-pixel boxes inside ``a ∩ b``, pairwise IoU <= ``cfg.max_iou``, each at
    least ``cfg.min_box`` view pixels wide and high in both views. Shape (N, 4), N may be 0."""
    inter = intersection(a, b)
    if inter is None:
        return torch.zeros((0, 4))
    ix0, iy0, ix1, iy1 = inter
    # smallest image-pixel side that is >= min_box view pixels in both views
    min_w = cfg.min_box * max(a.w, b.w) / cfg.size
    min_h = cfg.min_box * max(a.h, b.h) / cfg.size
    if ix1 - ix0 < min_w or iy1 - iy0 < min_h:
        return torch.zeros((0, 4))
    # all candidates at once, then greedy acceptance in order (same rule as one-by-one rejection)
    w = rng.uniform(min_w, ix1 - ix0, cfg.tries)
    h = rng.uniform(min_h, iy1 - iy0, cfg.tries)
    x0 = ix0 + rng.random(cfg.tries) * (ix1 - ix0 - w)
    y0 = iy0 + rng.random(cfg.tries) * (iy1 - iy0 - h)
    candidates = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    area = w * h
    chosen: list[int] = []
    for index in range(cfg.tries):
        if len(chosen) >= cfg.boxes:
            break
        if chosen:
            kept = candidates[chosen]
            iw = np.clip(np.minimum(kept[:, 2], candidates[index, 2]) - np.maximum(kept[:, 0], candidates[index, 0]), 0, None)
            ih = np.clip(np.minimum(kept[:, 3], candidates[index, 3]) - np.maximum(kept[:, 1], candidates[index, 1]), 0, None)
            inter = iw * ih
            if (inter / (area[chosen] + area[index] - inter)).max() > cfg.max_iou:
                continue
        chosen.append(index)
    return torch.from_numpy(candidates[chosen].astype(np.float32)).reshape(-1, 4)


def normalise(view: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (view - mean) / std


def make_pair(image: torch.Tensor, cfg: ViewConfig, rng: np.random.Generator, colour: bool = True
              ) -> dict[str, torch.Tensor]:
    """Two normalised views of a float (3, H, W) image and the same boxes in each view's pixels."""
    height, width = image.shape[1:]
    crops = [sample_crop(width, height, cfg, rng) for _ in range(2)]
    boxes = sample_boxes(crops[0], crops[1], cfg, rng)
    views = []
    for crop in crops:
        view = render_view(image, crop, cfg.size)
        views.append(normalise(colour_augment(view, cfg, rng)) if colour else view)
    return {"views": torch.stack(views), "boxes0": image_to_view(boxes, crops[0], cfg.size),
            "boxes1": image_to_view(boxes, crops[1], cfg.size), "image_boxes": boxes}
