"""Synthetic detection scenes in the COCO layout: textured objects pasted over real photos.

Each scene is a random crop of a photo bundled with scikit-image / matplotlib with 2-5 objects of
four kinds (disc, square, triangle, ring) pasted on top. Every object carries a random colour pair
and texture (stripes, checks, noise, flat), a random size and position, and may overlap the others
a little (IoU <= 0.3 between boxes). The layout is exactly COCO's: ``DIR/images/000000.png`` and
``DIR/annotations.json`` with ``images``, ``annotations`` (``bbox`` = x, y, w, h in pixels,
``area`` = mask area, ``iscrowd`` = 0) and ``categories``; it is read back by :mod:`.data`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.data.images import bundled_photo, write_image
from shared.guard import write_atomic

CATEGORIES = ("disc", "square", "triangle", "ring")
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "grace_hopper", "brick",
               "grass", "gravel", "immunohistochemistry")


@dataclass
class SceneConfig:
    """Scene size and object counts/sizes (pixels)."""

    size: int = 128
    min_objects: int = 2
    max_objects: int = 5
    min_object: int = 14
    max_object: int = 44


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _shape_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (size, size) mask of one object kind."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c, r = size / 2.0, size / 2.0
    dist = np.hypot(xx - c, yy - c)
    if kind == "disc":
        return dist <= r
    if kind == "ring":
        return (dist <= r) & (dist >= r * rng.uniform(0.45, 0.65))
    if kind == "square":
        return np.ones((size, size), bool)
    # triangle pointing up: inside when below both slanted edges
    return np.abs(xx - c) <= (yy / size) * c


def _texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) uint8 texture: two random colours in stripes / checks / noise / flat."""
    a = rng.integers(0, 256, 3).astype(np.float32)
    b = rng.integers(0, 256, 3).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    kind = int(rng.integers(4))
    period = int(rng.integers(3, 8))
    if kind == 0:
        t = ((xx + yy) // period) % 2
    elif kind == 1:
        t = ((xx // period) + (yy // period)) % 2
    elif kind == 2:
        t = rng.random((size, size)) < 0.5
    else:
        t = np.zeros((size, size))
    img = np.where(np.asarray(t, bool)[..., None], a, b)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, cfg: SceneConfig, photos: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, list[dict]]:
    """One RGB uint8 scene and its objects ``[{"category": index, "bbox": [x, y, w, h], "area": a}]``."""
    import cv2

    photo = photos[BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]]
    ph, pw = photo.shape[:2]
    side = int(rng.integers(min(ph, pw) // 3, min(ph, pw) + 1))
    y0, x0 = int(rng.integers(0, ph - side + 1)), int(rng.integers(0, pw - side + 1))
    canvas = cv2.resize(photo[y0:y0 + side, x0:x0 + side], (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
    canvas = canvas.astype(np.uint8).copy()
    objects: list[dict] = []
    boxes: list[np.ndarray] = []
    wanted = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    for _ in range(wanted * 10):
        if len(objects) == wanted:
            break
        size = int(rng.integers(cfg.min_object, cfg.max_object + 1))
        x, y = int(rng.integers(0, cfg.size - size + 1)), int(rng.integers(0, cfg.size - size + 1))
        category = int(rng.integers(len(CATEGORIES)))
        mask = _shape_mask(CATEGORIES[category], size, rng)
        ys, xs = np.nonzero(mask)
        box = np.array([x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1], np.float64)
        if any(_iou(box, other) > 0.3 for other in boxes):
            continue
        region = canvas[y:y + size, x:x + size]
        region[mask] = _texture(size, rng)[mask]
        boxes.append(box)
        objects.append({"category": category, "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]),
                                                       float(box[3] - box[1])], "area": float(mask.sum())})
    return canvas, objects


def coco_dict(records: list[tuple[str, int, int, list[dict]]]) -> dict:
    """COCO detection dict from ``(file_name, width, height, objects)`` records (category ids from 1)."""
    images, annotations = [], []
    for image_id, (file_name, width, height, objects) in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for obj in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": obj["category"] + 1, "bbox": obj["bbox"], "area": obj["area"],
                                "iscrowd": 0})
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CATEGORIES)]
    return {"info": {"description": "cvsuite scrl synthetic scenes"}, "images": images,
            "annotations": annotations, "categories": categories}


def generate(out_dir: str | Path, images: int, seed: int, cfg: SceneConfig | None = None,
             claim=None) -> Path:
    """Write ``images`` scenes to ``out_dir/images`` and ``out_dir/annotations.json``; return the json path.

    ``claim`` (an output guard's ``file`` method) is called on every path before it is written.
    """
    cfg = cfg or SceneConfig()
    out_dir = Path(out_dir)
    claim = claim or (lambda p: p)
    rng = np.random.default_rng(seed)
    photos = {name: bundled_photo(name) for name in BACKGROUNDS}
    records = []
    for index in range(images):
        canvas, objects = render_scene(rng, cfg, photos)
        name = f"{index:06d}.png"
        write_image(claim(out_dir / "images" / name), canvas)
        records.append((name, cfg.size, cfg.size, objects))
    json_path = claim(out_dir / "annotations.json")
    write_atomic(json_path, json.dumps(coco_dict(records)))
    return Path(json_path)
