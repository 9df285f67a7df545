"""PSNR / SSIM on the Y channel with a ``scale``-pixel border crop — the convention of published
SR tables and of basicsr's ``calculate_psnr`` / ``calculate_ssim(..., test_y_channel=True)``.

PSNR, SSIM and NIQE are basicsr's own functions (so numbers compare with published tables); the
tests check them against an explicit formula written in the test, on real photos.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import CvsuiteError

from .data import list_images, paired_files, read_rgb_uint8, resolve_hr_dirs, resolve_lr_dir
from .degradations import DegradationConfig, degrade, image_seed, mod_crop, quantize

def _as_basicsr(img: np.ndarray) -> np.ndarray:
    """basicsr's metrics take HWC BGR (cv2 order); ours are RGB (grey stays 2-D)."""
    return img[..., ::-1] if img.ndim == 3 and img.shape[2] == 3 else img


def psnr_y(img: np.ndarray, ref: np.ndarray, crop_border: int) -> float:
    """PSNR (dB, peak 255) on the Y channel with a ``crop_border`` crop: basicsr's ``calculate_psnr``."""
    import shared  # noqa: F401  (compat before basicsr)
    from basicsr.metrics import calculate_psnr

    if img.shape != ref.shape:
        raise CvsuiteError(f"image shapes differ: {img.shape} vs {ref.shape}")
    return float(calculate_psnr(_as_basicsr(img), _as_basicsr(ref), crop_border, test_y_channel=True))


def ssim_y(img: np.ndarray, ref: np.ndarray, crop_border: int) -> float:
    """SSIM on the Y channel with a ``crop_border`` crop: basicsr's ``calculate_ssim``."""
    import shared  # noqa: F401
    from basicsr.metrics import calculate_ssim

    if img.shape != ref.shape:
        raise CvsuiteError(f"image shapes differ: {img.shape} vs {ref.shape}")
    return float(calculate_ssim(_as_basicsr(img), _as_basicsr(ref), crop_border, test_y_channel=True))


NIQE_MIN_SIDE = 192  # basicsr's NIQE: 96-pixel blocks; one block per side gives a singular covariance


def niqe_y(img: np.ndarray, crop_border: int) -> float:
    """basicsr's NIQE (lower is better) of an RGB uint8 image."""
    import shared  # noqa: F401
    from basicsr.metrics import calculate_niqe

    return float(calculate_niqe(img[..., ::-1].astype(np.float64), crop_border, input_order="HWC", convert_to="y"))


# -- upscalers ------------------------------------------------------------------------------------

def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline (the same interpolation as the network's skip path), uint8 RGB."""
    x = torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
    y = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    return quantize(y.numpy().transpose(1, 2, 0))


@dataclass
class EvalPair:
    name: str
    hr: np.ndarray  # uint8 RGB, size = LR size × scale
    lr: np.ndarray  # uint8 RGB
    info: dict | None = None  # what degraded it (``degrade``'s meta["info"]), when known


def pairs_from_folders(hr: str | Path, lr: str | Path, scale: int) -> list[EvalPair]:
    """HR + LR folders (benchmark layout ``Set5/HR`` + ``Set5/LR_bicubic/X4`` or any ``<stem>x4`` naming)."""
    hr_dir = resolve_hr_dirs(hr)[0]
    out = []
    lr_dir = resolve_lr_dir(lr, scale)
    try:  # sr degrade records what it drew per image
        recorded = json.loads((lr_dir / "degradations.json").read_text())["images"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = {}
    for hr_path, lr_path in paired_files(hr_dir, lr_dir, scale):
        hr_img, lr_img = read_rgb_uint8(hr_path), read_rgb_uint8(lr_path)
        h, w = lr_img.shape[0] * scale, lr_img.shape[1] * scale
        if hr_img.shape[0] < h or hr_img.shape[1] < w:
            raise CvsuiteError(f"{lr_path}: LR {lr_img.shape[1]}x{lr_img.shape[0]} x{scale} is larger than HR "
                               f"{hr_img.shape[1]}x{hr_img.shape[0]}")
        info = recorded.get(hr_path.stem) if isinstance(recorded, dict) else None
        out.append(EvalPair(hr_path.stem, hr_img[:h, :w], lr_img, info if isinstance(info, dict) else None))
    return out


def pairs_from_degradation(hr_images: list[tuple[str, np.ndarray]], scale: int, kind: str, seed: int,
                           cfg: DegradationConfig | None = None) -> list[EvalPair]:
    """Degrade HR images (name, uint8 RGB) on the fly with the per-image seeded pipeline."""
    out = []
    for name, img in hr_images:
        hr_img = mod_crop(img, scale)
        lr, meta = degrade(hr_img.astype(np.float32) / 255.0, scale, kind, seed=image_seed(seed, name), cfg=cfg)
        out.append(EvalPair(name, hr_img, quantize(lr), meta["info"]))
    return out


def hr_folder_images(hr: str | Path) -> list[tuple[str, np.ndarray]]:
    folder = resolve_hr_dirs(hr)[0]
    return [(p.stem, read_rgb_uint8(p)) for p in list_images(folder)]


def evaluate_pairs(pairs: list[EvalPair], scale: int, upscalers: dict[str, Callable[[np.ndarray], np.ndarray]],
                   niqe: bool = False, progress: bool = False,
                   on_outputs: Callable[[EvalPair, dict[str, np.ndarray]], None] | None = None) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM (Y, ``scale`` border) of each upscaler (e.g. bicubic, model).

    ``progress`` shows a bar on stderr (terminals only); ``on_outputs(pair, {method: image})`` sees
    every pair's outputs (``sr eval --save-images``)."""
    import sys

    from tqdm import tqdm

    if niqe:  # refuse before any work: basicsr's NIQE fits a Gaussian over 96x96 blocks (2+ per side)
        for pair in pairs:
            h, w = pair.hr.shape[:2]
            if min(h, w) - 2 * scale < NIQE_MIN_SIDE:
                raise CvsuiteError(f"{pair.name}: --niqe needs images of at least {NIQE_MIN_SIDE + 2 * scale} x "
                                   f"{NIQE_MIN_SIDE + 2 * scale} pixels (two 96-pixel blocks per side after the "
                                   f"{scale}-pixel border crop); this one is {w} x {h}")
    per_image = []
    for pair in tqdm(pairs, desc="sr eval", unit="image", file=sys.stderr, leave=False,
                     disable=None if progress else True):
        row: dict[str, Any] = {"image": pair.name}
        outputs = {}
        for method, fn in upscalers.items():
            sr = fn(pair.lr)
            outputs[method] = sr
            row[f"{method}_psnr"] = psnr_y(sr, pair.hr, scale)
            row[f"{method}_ssim"] = ssim_y(sr, pair.hr, scale)
            if niqe:
                row[f"{method}_niqe"] = niqe_y(sr, scale)
        if on_outputs is not None:
            on_outputs(pair, outputs)
        per_image.append(row)
    keys = [k for k in per_image[0] if k != "image"] if per_image else []
    mean = {k: float(np.mean([r[k] for r in per_image])) for k in keys}
    return {"scale": scale, "images": len(per_image), "per_image": per_image, "mean": mean}


def write_json(result: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    from shared.guard import write_atomic

    write_atomic(path, json.dumps(result, indent=2) + "\n")
