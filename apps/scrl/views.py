"""SCRL's two views with their geometry kept, and the boxes sampled in their intersection.

A view is, as in kakaobrain/scrl ``augment/getters.py`` (BYOL's recipe):
``RandomResizedCrop(scale 0.2-1, bicubic) -> flip (0.5) -> colour jitter (p 0.8; brightness 0.4,
contrast 0.4, saturation 0.2, hue 0.1, random order) -> greyscale (0.2) -> blur (p 1.0 on view 1,
0.1 on view 2) -> solarize (p 0 / 0.2, threshold 0.5)``. The blur is the official ``ResizeBlur``
(the repo's ``BLUR_METHOD`` selects it over its Gaussian blur): bicubic down-scale by 1.1, 1.2 or 1.5
and back up.

We keep each crop's rectangle ``(x0, y0, w, h)`` in image pixels and its flip flag, so any image
box can be mapped into the view's pixel frame (:func:`image_to_view`). Boxes come from the
official ``SCRLBoxGenerator`` rule (:func:`sample_boxes`): inside the two crops' intersection, on
an integer grid of "view pixels of the view in which the intersection is smaller", ``K`` boxes per
image, each retried up to ``tries`` times until its IoU with the image's earlier boxes is below
``max_iou`` (the last try is kept otherwise, as officially). A pair of crops whose intersection is
not larger than ``min_box`` gives no boxes (the image then adds nothing to the SCRL loss).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shared.config import bounded
from shared.errors import UsageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOX_GENERATIONS = ("grid", "random")


@dataclass
class ViewConfig:
    """Augmentations (SCRL/BYOL recipe, at CPU size)."""

    size: int = bounded(96, ge=16, le=1024)  # output side of each view
    min_scale: float = bounded(0.2, gt=0.0, le=1.0)
    max_scale: float = bounded(1.0, gt=0.0, le=1.0)
    flip: float = bounded(0.5, ge=0.0, le=1.0)
    jitter: float = bounded(0.8, ge=0.0, le=1.0)  # probability of colour jitter (strengths below)
    grey: float = bounded(0.2, ge=0.0, le=1.0)
    boxes: int = bounded(10, ge=1, le=1000)  # K boxes per image
    max_iou: float = bounded(0.5, ge=0.0, le=1.0)  # between sampled boxes
    min_box: float = bounded(16.0, gt=0.0, le=4096.0)  # minimum box side in view pixels (in both views)
    tries: int = bounded(50, ge=1, le=10_000)
    brightness: float = bounded(0.4, ge=0, le=1)  # colour jitter strengths (official ColorJitter(0.4, 0.4, 0.2, 0.1))
    contrast: float = bounded(0.4, ge=0, le=1)
    saturation: float = bounded(0.2, ge=0, le=1)
    hue: float = bounded(0.1, ge=0, le=0.5)
    blur: list[float] = bounded(default_factory=lambda: [1.0, 0.1], ge=0, le=1, min_len=2, max_len=2)  # p per view
    solarize: list[float] = bounded(default_factory=lambda: [0.0, 0.2], ge=0, le=1, min_len=2, max_len=2)
    box_generation: str = "grid"  # grid (official grid_based_box_gen) | random (its other branch)

    def __post_init__(self) -> None:
        if self.box_generation not in BOX_GENERATIONS:
            raise UsageError(f"config key 'views.box_generation' must be grid or random, got {self.box_generation!r}")


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
    """Crop + resize (bicubic, antialiased, as the official PIL bicubic) + flip a float (3, H, W) image."""
    x0, y0 = int(crop.x0), int(crop.y0)
    patch = image[:, y0:y0 + int(crop.h), x0:x0 + int(crop.w)]
    view = F.interpolate(patch[None], size=(size, size), mode="bicubic", align_corners=False,
                         antialias=True)[0].clamp(0, 1)
    return view.flip(-1) if crop.flipped else view


_GREY = torch.tensor([0.299, 0.587, 0.114])
BLUR_FACTORS = (1.1, 1.2, 1.5)  # official ResizeBlur: factors[randint(0, max_level=3)]


def _grey(view: torch.Tensor) -> torch.Tensor:
    return torch.einsum("c,chw->hw", _GREY, view)[None]


def resize_blur(view: torch.Tensor, factor: float) -> torch.Tensor:
    """Official ``ResizeBlur``: bicubic down-scale to ``int(side // factor)`` and back up."""
    height, width = view.shape[1:]
    small = (max(1, int(height // factor)), max(1, int(width // factor)))
    down = F.interpolate(view[None], size=small, mode="bicubic", align_corners=False, antialias=True)
    return F.interpolate(down, size=(height, width), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def solarize(view: torch.Tensor, threshold: float = 128 / 255) -> torch.Tensor:
    """PIL ``ImageOps.solarize(img, 128)`` (the official ``Solarize(0.5)``): values >= threshold inverted."""
    return torch.where(view >= threshold, 1.0 - view, view)


def colour_augment(view: torch.Tensor, cfg: ViewConfig, rng: np.random.Generator, index: int = 0) -> torch.Tensor:
    """Colour jitter (torchvision's ColorJitter operations in random order, hue in HSV), random
    greyscale, then blur and solarize with view ``index``'s probabilities."""
    import torchvision.transforms.functional as TF

    if rng.random() < cfg.jitter:
        factors = {"b": rng.uniform(1 - cfg.brightness, 1 + cfg.brightness),
                   "c": rng.uniform(1 - cfg.contrast, 1 + cfg.contrast),
                   "s": rng.uniform(1 - cfg.saturation, 1 + cfg.saturation),
                   "h": rng.uniform(-cfg.hue, cfg.hue)}
        for kind in rng.permutation(["b", "c", "s", "h"]):
            value = float(factors[str(kind)])
            if kind == "b":
                view = TF.adjust_brightness(view, value)
            elif kind == "c":
                view = TF.adjust_contrast(view, value)
            elif kind == "s":
                view = TF.adjust_saturation(view, value)
            elif value != 0.0:
                view = TF.adjust_hue(view, value)
    if rng.random() < cfg.grey:
        view = _grey(view).expand(3, -1, -1)
    if rng.random() < cfg.blur[index]:
        view = resize_blur(view, BLUR_FACTORS[int(rng.integers(0, len(BLUR_FACTORS)))])
    if rng.random() < cfg.solarize[index]:
        view = solarize(view)
    return view.clamp(0, 1).contiguous()


def intersection(a: Crop, b: Crop) -> tuple[float, float, float, float] | None:
    """The two crops' overlap in image pixels (x0, y0, x1, y1), or None."""
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1, y1 = min(a.x0 + a.w, b.x0 + b.w), min(a.y0 + a.h, b.y0 + b.h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    if inter == 0:
        return 0.0
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def sample_boxes(a: Crop, b: Crop, cfg: ViewConfig, rng: np.random.Generator) -> torch.Tensor:
    """``cfg.boxes`` image-pixel boxes inside ``a ∩ b`` by the official ``SCRLBoxGenerator.generate``
    rule; shape (N, 4), N = 0 when the intersection is not wider and higher than ``min_box``.

    The intersection is measured in pixels of the view where it looks smaller (scale
    ``min(S / w_a, S / w_b)``, likewise in y), rounded: ``W x H``. Each box is drawn on that integer
    grid — ``grid``: split ``W`` into ``div_w ~ U{1..W // min_box}`` cells (``H`` likewise), pick a
    cell, a size ``U{min_box..cell}`` and an offset inside the cell; ``random``: size
    ``U{min_box..W-1}``, offset ``U{0..W-size-1}`` — and retried up to ``tries`` times until its IoU
    with the image's earlier boxes is below ``max_iou``; the last try is kept if none is.
    (IoU is invariant to the per-axis scaling and flip between image and view, so it is computed
    in image pixels; the official code uses view 1's.)"""
    inter = intersection(a, b)
    if inter is None:
        return torch.zeros((0, 4))
    ix0, iy0, ix1, iy1 = inter
    scale_w = min(cfg.size / a.w, cfg.size / b.w)
    scale_h = min(cfg.size / a.h, cfg.size / b.h)
    width, height = round((ix1 - ix0) * scale_w), round((iy1 - iy0) * scale_h)
    min_size = int(cfg.min_box)
    if min_size >= width or min_size >= height:
        return torch.zeros((0, 4))
    div_w_range, div_h_range = width // min_size + 1, height // min_size + 1

    def randint(low: float, high: float) -> int:  # numpy randint(low, high) with the official int() casts
        return int(rng.integers(int(low), int(high)))

    boxes: list[tuple[float, float, float, float]] = []
    for index in range(cfg.boxes):
        for _ in range(cfg.tries):
            if cfg.box_generation == "grid":
                div_w, div_h = randint(1, div_w_range), randint(1, div_h_range)
                grid_w, grid_h = width / div_w, height / div_h
                grid_x, grid_y = randint(0, div_w), randint(0, div_h)
                box_w, box_h = randint(min_size, grid_w + 1), randint(min_size, grid_h + 1)
                box_x = randint(0, grid_w - box_w + 1) + int(grid_x * grid_w)
                box_y = randint(0, grid_h - box_h + 1) + int(grid_y * grid_h)
            else:
                box_w, box_h = randint(min_size, width), randint(min_size, height)
                box_x, box_y = randint(0, width - box_w), randint(0, height - box_h)
            x0, y0 = ix0 + box_x / scale_w, iy0 + box_y / scale_h
            box = (x0, y0, x0 + box_w / scale_w, y0 + box_h / scale_h)  # clipped per view (make_pair)
            if index == 0 or cfg.max_iou >= 1.0:
                break
            if max(_iou(box, kept) for kept in boxes) < cfg.max_iou:
                break
        boxes.append(box)
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


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
    for index, crop in enumerate(crops):
        view = render_view(image, crop, cfg.size)
        views.append(normalise(colour_augment(view, cfg, rng, index)) if colour else view)
    # clipped to each view as the official clip_box (the rounded grid may overrun the intersection by < 1 px)
    return {"views": torch.stack(views), "boxes0": image_to_view(boxes, crops[0], cfg.size).clamp(0, cfg.size),
            "boxes1": image_to_view(boxes, crops[1], cfg.size).clamp(0, cfg.size), "image_boxes": boxes}
