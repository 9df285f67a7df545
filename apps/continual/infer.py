"""Inference with a trained CURL model: component, its probability and latent per image; sample grids.

Each image is read grey, resized to the model's input size, scaled to [0, 1] and binarised at 0.5
(as in training). The model says what it knows: the CSV holds each image's ELBO, and an image whose
ELBO is below the training threshold ``ll_thresh`` (what CURL itself treats as "poorly explained",
i.e. outside every learned component) is flagged and warned about.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.data.images import is_image_file, list_images
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard

from .model import CurlModel, binarize, load_curl


def collect_images(inputs: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path, recursive=True)
            if not found:
                raise CvsuiteError(f"{item} holds no images")
            files += found
        elif path.is_file():
            if not is_image_file(path):
                raise UsageError(f"{item} is not an image file (png, jpg, ...)")
            files.append(path)
        else:
            raise UsageError(f"input {item} does not exist")
    return files


def load_for_model(path: Path, shape: tuple[int, int], invert: bool = False) -> np.ndarray:
    """One image as the model sees it: grey, resized to ``shape``, in [0, 1]."""
    import cv2

    from .data import _read_grey

    grey = _read_grey(path, None)
    if grey.shape != tuple(shape):
        grey = cv2.resize(grey, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    grey = np.clip(grey, 0.0, 1.0)
    return 1.0 - grey if invert else grey


@torch.no_grad()
def infer_files(weights: str, inputs: list[str], out: str, guard: OutputGuard, invert: bool = False) -> dict[str, Any]:
    model, info = load_curl(weights)
    files = collect_images(inputs)
    guard.add_inputs(*files)
    guard.file(out)
    shape = tuple(info["image_shape"])
    x = torch.from_numpy(np.stack([load_for_model(f, shape, invert) for f in files]).reshape(len(files), -1))
    xb = binarize(x)
    probs, latents = model.latent_mean(xb)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ll = model.elbo_terms(xb)["ll"]
    thresh = float(info.get("ll_thresh", -float("inf")))
    component = probs.argmax(1)
    rows = []
    outside = 0
    for i, path in enumerate(files):
        poor = bool(ll[i] < thresh)
        outside += poor
        rows.append([str(path), int(component[i]), f"{float(probs[i, component[i]]):.6f}", f"{float(ll[i]):.4f}",
                     int(poor), *[f"{v:.6f}" for v in latents[i].tolist()]])
    from shared.guard import open_atomic

    with open_atomic(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "component", "probability", "elbo", "outside_model",
                         *[f"z{j}" for j in range(latents.shape[1])]])
        writer.writerows(rows)
    guard.record()
    if outside:
        print(f"cvsuite: warning: {outside} of {len(files)} images have an ELBO below the model's threshold "
              f"{thresh:g} nats: they are unlike the {info.get('data', 'training')} data it learned "
              f"({shape[0]}x{shape[1]} binarised); their components mean little", file=sys.stderr)
    return {"images": len(files), "out": out, "outside": outside, "components": model.active}


def sample_grid(model: CurlModel, shape: tuple[int, int], path: Path, per_component: int = 8, seed: int = 0,
                scale: int = 4) -> Path:
    """PNG: one row per active component, ``per_component`` Bernoulli means of ``z ~ p(z|y)``."""
    from shared.data.images import write_image

    generator = torch.Generator().manual_seed(seed)
    k = model.active
    y = torch.arange(k).repeat_interleave(per_component)
    model_device = next(model.parameters()).device
    images = model.decoder.sample(y.to(model_device), generator=generator, mean=True).cpu().numpy()
    h, w = shape
    pad = 1
    grid = np.ones((k * (h + pad) + pad, per_component * (w + pad) + pad), dtype=np.float32) * 0.5
    for index, image in enumerate(images):
        r, c = divmod(index, per_component)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = image.reshape(h, w)
    grid = np.kron(grid, np.ones((scale, scale), dtype=np.float32))
    rgb = np.repeat((grid * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    from shared.guard import atomic_output

    with atomic_output(path) as tmp:
        write_image(tmp, rgb)
    return path
