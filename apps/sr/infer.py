"""Tiled SR inference on files and folders, in bounded memory.

The LR image is cut into ``tile``² cores; each tile is run with ``overlap`` pixels of context on
every side and its output is weighted by a linear ramp, over a band ``overlap`` wide centred on
the core boundary, that reaches zero ``overlap/2`` pixels before the tile's edge. Weights of
neighbouring tiles sum to one, so when ``overlap/2`` ≥ the network's receptive radius only
border-free pixels contribute and the tiled output equals the whole-image output.

Only a strip of one tile row is kept in float; finished rows go straight into the preallocated
uint8/uint16 output, so a 4096² output needs about one strip (≈ 0.3 GB) on top of the result.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from shared.errors import CvsuiteError, UsageError

from .data import IMAGE_EXTS, ImageData, load_image, write_image
from .evaluate import bicubic_upscale


def _axis_weights(core_lo: int, core_hi: int, in_lo: int, in_hi: int, n: int, overlap: int, scale: int) -> np.ndarray:
    """Blend weights of one tile's output pixels along one axis (see module docstring)."""
    pos = (np.arange(in_lo * scale, in_hi * scale, dtype=np.float64) + 0.5) / scale
    w = np.ones_like(pos)
    if overlap > 0:
        if in_lo > 0:
            w *= np.clip((pos - (core_lo - overlap / 2)) / overlap, 0, 1)
        if in_hi < n:
            w *= np.clip(((core_hi + overlap / 2) - pos) / overlap, 0, 1)
    return w.astype(np.float32)


def _cores(n: int, tile: int) -> list[tuple[int, int]]:
    return [(s, min(s + tile, n)) for s in range(0, n, tile)]


@torch.no_grad()
def upscale_rgb(model: nn.Module, rgb: np.ndarray, scale: int, tile: int = 256, overlap: int = 32,
                dtype: type = np.uint8) -> np.ndarray:
    """SR of a float RGB image (h, w, 3) in [0, 1] → (h·s, w·s, 3) ``dtype`` (uint8 or uint16).

    ``tile <= 0`` runs the whole image at once.
    """
    if overlap < 0:
        raise UsageError(f"overlap must be >= 0, got {overlap}")
    h, w = rgb.shape[:2]
    if tile <= 0:
        tile = max(h, w)
    peak = 255.0 if dtype == np.uint8 else 65535.0
    out = np.empty((h * scale, w * scale, 3), dtype=dtype)
    rows, cols = _cores(h, tile), _cores(w, tile)
    strip_rows = (min(h, tile + 2 * overlap)) * scale
    acc = np.zeros((strip_rows, w * scale, 3), np.float32)
    wacc = np.zeros((strip_rows, w * scale), np.float32)
    base = 0  # output row of acc[0]
    device = next(model.parameters()).device
    for i, (r0, r1) in enumerate(rows):
        a, b = max(0, r0 - overlap), min(h, r1 + overlap)
        wy = _axis_weights(r0, r1, a, b, h, overlap, scale)
        for c0, c1 in cols:
            left, right = max(0, c0 - overlap), min(w, c1 + overlap)
            patch = torch.from_numpy(np.ascontiguousarray(rgb[a:b, left:right].transpose(2, 0, 1)))[None]
            y = model(patch.to(device))[0].clamp_(0, 1).cpu().numpy().transpose(1, 2, 0)
            weight = wy[:, None] * _axis_weights(c0, c1, left, right, w, overlap, scale)[None, :]
            ys, xs = slice(a * scale - base, b * scale - base), slice(left * scale, right * scale)
            acc[ys, xs] += y * weight[..., None]
            wacc[ys, xs] += weight
        done = (max(0, rows[i + 1][0] - overlap) if i + 1 < len(rows) else h) * scale
        n_done = done - base
        if n_done > 0:
            block = acc[:n_done] / np.maximum(wacc[:n_done], 1e-12)[..., None]
            out[base:done] = np.clip(np.round(block * peak), 0, peak).astype(dtype)
            keep = strip_rows - n_done
            acc[:keep] = acc[n_done:].copy()
            wacc[:keep] = wacc[n_done:].copy()
            acc[keep:] = 0
            wacc[keep:] = 0
            base = done
    return out


def upscale_image(model: nn.Module, image: ImageData, scale: int, tile: int = 256, overlap: int = 32) -> np.ndarray:
    """SR of a decoded image keeping its format: grey stays grey, RGBA keeps an alpha channel
    (bicubic-upscaled separately), 16-bit stays 16-bit."""
    dtype = np.uint16 if image.bit_depth == 16 else np.uint8
    rgb = upscale_rgb(model, image.rgb, scale, tile, overlap, dtype)
    if image.grey:
        return np.round(rgb.astype(np.float32).mean(axis=2)).astype(dtype)
    if image.alpha is not None:
        peak = 255.0 if dtype == np.uint8 else 65535.0
        h, w = image.alpha.shape
        alpha = cv2.resize(image.alpha, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
        alpha = np.clip(np.round(alpha * peak), 0, peak).astype(dtype)
        return np.concatenate([rgb, alpha[..., None]], axis=2)
    return rgb


def bicubic_image(image: ImageData, scale: int) -> np.ndarray:
    """Bicubic upscale in the same format as :func:`upscale_image` (for ``--compare``)."""
    dtype = np.uint16 if image.bit_depth == 16 else np.uint8
    peak = 255.0 if dtype == np.uint8 else 65535.0
    rgb = bicubic_upscale((image.rgb * 255.0).round().astype(np.uint8), scale).astype(np.float32) / 255.0
    rgb = np.clip(np.round(rgb * peak), 0, peak).astype(dtype)
    if image.grey:
        return rgb[..., 0]
    if image.alpha is not None:
        h, w = image.alpha.shape
        alpha = cv2.resize(image.alpha, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
        return np.concatenate([rgb, np.clip(np.round(alpha * peak), 0, peak).astype(dtype)[..., None]], axis=2)
    return rgb


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8,
                 labels: tuple[str, str] | None = None) -> np.ndarray:
    """left | gap | right (white gap), same dtype and channels; with ``labels`` each half gets its
    caption (e.g. "bicubic" | "CRL-SR") drawn in a white band above it."""
    peak = np.iinfo(left.dtype).max
    gap_shape = (left.shape[0], gap) + left.shape[2:]
    body = np.concatenate([left, np.full(gap_shape, peak, left.dtype), right], axis=1)
    if not labels:
        return body
    band_h = max(14, min(48, left.shape[0] // 8))
    ink = np.full((band_h, body.shape[1]), 255, np.uint8)  # OpenCV draws text on 8-bit only
    font_scale = band_h / 30.0
    thickness = max(1, band_h // 14)
    for text, x0, width in ((labels[0], 0, left.shape[1]), (labels[1], left.shape[1] + gap, right.shape[1])):
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        org = (x0 + max(2, (width - tw) // 2), (band_h + th) // 2)
        cv2.putText(ink, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 0, thickness, cv2.LINE_AA)
    band = np.round(ink.astype(np.float64) * (peak / 255.0)).astype(body.dtype)
    if body.ndim == 3:  # black text on white for every colour channel; alpha (4th channel) opaque
        band = np.repeat(band[..., None], body.shape[2], axis=2)
        if body.shape[2] == 4:
            band[..., 3] = peak
    return np.concatenate([band, body], axis=0)


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files from paths and folders (folders: image extensions only); missing paths become errors."""
    files, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
            if not found:
                errors.append(f"{path}: folder holds no images")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def output_paths(files: list[Path], out_dir: Path, compare: bool) -> dict[Path, list[Path]]:
    """``<stem>.png`` (+ ``<stem>_compare.png``) in ``out_dir`` for every input file."""
    return {path: [out_dir / f"{path.stem}.png"] + ([out_dir / f"{path.stem}_compare.png"] if compare else [])
            for path in files}


def run_inference(model: nn.Module, inputs: list[str], out_dir: str | Path, scale: int, tile: int = 256,
                  overlap: int = 32, compare: bool = False, log=print, guard=None,
                  model_label: str = "CRL-SR") -> int:
    """Upscale every input into ``out_dir/<stem>.png`` (+ labelled ``<stem>_compare.png``); returns the exit code.

    Every output is claimed through ``guard`` (a :class:`shared.guard.OutputGuard`; one is made with
    the inputs when none is given) *before* any image is processed: an output that is an input, or
    lies in an input folder, or is a foreign existing file (without ``--force``) stops the command
    (exit 2). A bad input image prints one ``cvsuite: error:`` line, the batch goes on, exit code 1.
    """
    from shared.guard import OutputGuard

    out_dir = Path(out_dir)
    files, errors = collect_inputs(inputs)
    if guard is None:
        guard = OutputGuard(inputs=inputs)
    guard.add_inputs(*files)
    guard.directory(out_dir)
    targets_of = output_paths(files, out_dir, compare)
    claimed: dict[Path, Path] = {}
    duplicates: dict[Path, Path] = {}
    for path, targets in targets_of.items():
        key = targets[0].resolve()
        if key in claimed:  # two inputs with the same stem: the second one is reported, not written
            duplicates[path] = claimed[key]
            continue
        claimed[key] = path
        for target in targets:
            guard.file(target)
    for message in errors:
        print(f"cvsuite: error: {message}", file=sys.stderr)
    failures = len(errors)
    for path in files:
        targets = targets_of[path]
        try:
            if path in duplicates:
                raise CvsuiteError(f"{path}: output {targets[0]} is also the output of {duplicates[path]} "
                                   f"in this batch; rename one of them")
            image = load_image(path)
            result = upscale_image(model, image, scale, tile, overlap)
            write_image(targets[0], result)
            if compare:
                write_image(targets[1], side_by_side(bicubic_image(image, scale), result,
                                                     labels=("bicubic", model_label)))
            log(f"{path} -> {targets[0]} ({result.shape[1]}x{result.shape[0]})")
        except CvsuiteError as exc:
            failures += 1
            print(f"cvsuite: error: {exc}", file=sys.stderr)
    guard.record()
    return 1 if failures else 0
