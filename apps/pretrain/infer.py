"""Extract backbone features of every image in a folder with a pretrained encoder.

Output: ``.npy`` (features ``(N, D)`` float32, plus ``<out>.files.txt`` listing the images in row
order) or ``.safetensors`` (tensor ``features``; the file list in the metadata as JSON).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shared.data.images import IMAGE_EXTENSIONS, list_images
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard, atomic_output, write_atomic

from .data import FileImageSet
from .evaluate import extract_features
from .model import load_encoder


def extract_folder(weights: str | Path, folder: str | Path, out: str | Path, batch_size: int = 256,
                   device: str = "cpu", guard: OutputGuard | None = None) -> dict[str, object]:
    """Features of all images under ``folder`` (recursive, sorted) written to ``out``.

    Outputs are claimed through ``guard`` (default: inputs = weights and folder, no ``--force``)
    before anything is read: never the weights, never inside the image folder.
    """
    folder, out = Path(folder), Path(out)
    if out.suffix not in (".npy", ".safetensors"):
        raise UsageError(f"output must end in .npy or .safetensors, got {out}")
    if not folder.is_dir():
        raise CvsuiteError(f"input folder not found: {folder}")
    guard = guard if guard is not None else OutputGuard([weights, folder], force=False)
    guard.file(out)
    if out.suffix == ".npy":
        guard.file(out.with_suffix(".files.txt"))
    paths = list_images(folder, recursive=True)
    if not paths:
        raise CvsuiteError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    backbone, info = load_encoder(weights)
    images = FileImageSet(paths, np.full(len(paths), -1), [], name=f"folder:{folder.name}",
                          channels=info.in_channels)
    features = extract_features(backbone, images, info.image_size, info.mean, info.std, batch_size, device)
    names = [str(p.relative_to(folder)) for p in paths]
    if out.suffix == ".npy":
        with atomic_output(out) as tmp:
            np.save(tmp, features.astype(np.float32))
        write_atomic(out.with_suffix(".files.txt"), "\n".join(names) + "\n")
    else:
        from shared.weights import save_safetensors

        save_safetensors({"features": torch.from_numpy(features.astype(np.float32))}, out,
                         metadata={"files": json.dumps(names), "weights": str(weights)})
    guard.record()
    return {"images": len(paths), "dim": int(features.shape[1]), "out": str(out)}
