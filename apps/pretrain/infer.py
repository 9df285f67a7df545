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

from .data import FileImageSet
from .evaluate import extract_features
from .model import load_encoder


def extract_folder(weights: str | Path, folder: str | Path, out: str | Path, batch_size: int = 256,
                   device: str = "cpu") -> dict[str, object]:
    """Features of all images under ``folder`` (recursive, sorted) written to ``out``."""
    folder, out = Path(folder), Path(out)
    if out.suffix not in (".npy", ".safetensors"):
        raise UsageError(f"output must end in .npy or .safetensors, got {out}")
    if not folder.is_dir():
        raise CvsuiteError(f"input folder not found: {folder}")
    paths = list_images(folder, recursive=True)
    if not paths:
        raise CvsuiteError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {folder}")
    if out.resolve() in {p.resolve() for p in paths}:
        raise UsageError(f"refusing to overwrite input image {out}")
    backbone, info = load_encoder(weights)
    images = FileImageSet(paths, np.full(len(paths), -1), [], name=f"folder:{folder.name}",
                          channels=info.in_channels)
    features = extract_features(backbone, images, info.image_size, info.mean, info.std, batch_size, device)
    names = [str(p.relative_to(folder)) for p in paths]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, features.astype(np.float32))
        out.with_suffix(".files.txt").write_text("\n".join(names) + "\n")
    else:
        from shared.weights import save_safetensors

        save_safetensors({"features": torch.from_numpy(features.astype(np.float32))}, out,
                         metadata={"files": json.dumps(names), "weights": str(weights)})
    return {"images": len(paths), "dim": int(features.shape[1]), "out": str(out)}
