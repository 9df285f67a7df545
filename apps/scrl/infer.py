"""Detection inference: COCO results JSON + PNGs with boxes and class names drawn."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shared.data.images import IMAGE_EXTENSIONS, list_images
from shared.errors import CvsuiteError
from shared.guard import write_atomic

from .data import load_rgb
from .evaluate import predict, to_coco_results
from .model import load_detector

PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]


def expand_inputs(items: list[str]) -> list[Path]:
    """Image files and folders (searched recursively) -> sorted image list; errors name the input."""
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = list_images(path, recursive=True)
            if not found:
                raise CvsuiteError(f"{path}: no images found in this folder (searched recursively)")
            files += found
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise CvsuiteError(f"{path}: not an image file (extensions: {', '.join(IMAGE_EXTENSIONS)})")
            files.append(path)
        else:
            raise CvsuiteError(f"{path}: no such file or folder")
    return files


def draw_detections(rgb: np.ndarray, boxes: list[list[float]], labels: list[str], scores: list[float],
                    colours: list[tuple[int, int, int]]) -> np.ndarray:
    """RGB uint8 image with each box outlined and labelled ``name score``."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    for box, label, score, colour in zip(boxes, labels, scores, colours):
        draw.rectangle(box, outline=colour, width=2 if max(rgb.shape) > 200 else 1)
        text = f"{label} {score:.2f}"
        left, top = box[0], max(0.0, box[1] - 10)
        bbox = draw.textbbox((left, top), text)
        draw.rectangle(bbox, fill=colour)
        draw.text((left, top), text, fill=(0, 0, 0))
    return np.asarray(canvas)


def run_inference(files: list[Path], weights: str | Path, out_dir: Path, score_thresh: float = 0.5,
                  claim: Callable[[Path], Path] | None = None) -> dict[str, object]:
    """Detect objects in ``files``; write ``detections.json`` (COCO results), ``images.json`` and PNGs."""
    from shared.data.images import write_image

    claim = claim or (lambda p: p)
    model, names, category_ids = load_detector(weights)
    png_paths = []
    stems: dict[str, int] = {}
    for path in files:  # unique output names even for equal stems in different folders
        stems[path.stem] = stems.get(path.stem, 0) + 1
        suffix = "" if stems[path.stem] == 1 else f"_{stems[path.stem]}"
        png_paths.append(out_dir / f"{path.stem}{suffix}_det.png")
    for p in [out_dir / "detections.json", out_dir / "images.json", *png_paths]:
        claim(p)
    images = [load_rgb(p) for p in files]
    outputs = predict(model, [torch.from_numpy(i).permute(2, 0, 1).float() / 255.0 for i in images])
    outputs = [{k: v[o["scores"] >= score_thresh] for k, v in o.items()} for o in outputs]
    image_ids = list(range(1, len(files) + 1))
    results = to_coco_results(outputs, image_ids, category_ids)
    write_atomic(out_dir / "detections.json", json.dumps(results))
    write_atomic(out_dir / "images.json", json.dumps(
        [{"id": i, "file_name": str(p), "width": int(im.shape[1]), "height": int(im.shape[0])}
         for i, p, im in zip(image_ids, files, images)], indent=1))
    for rgb, out, png in zip(images, outputs, png_paths):
        labels = [names[int(label) - 1] for label in out["labels"]]
        colours = [PALETTE[(int(label) - 1) % len(PALETTE)] for label in out["labels"]]
        write_image(png, draw_detections(rgb, out["boxes"].tolist(), labels, out["scores"].tolist(), colours))
    return {"images": len(files), "detections": len(results), "json": str(out_dir / "detections.json")}
