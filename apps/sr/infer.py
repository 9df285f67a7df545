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


def _caption_font(size: int):
    """DejaVu Sans (ships with matplotlib; has σ, →, ×) at ``size`` px, else Pillow's default font."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def _fitted_font(draw, text: str, size: int, width: int):
    """The largest font ≤ ``size`` px whose rendering of ``text`` fits ``width`` pixels (≥ 7 px)."""
    while True:
        font = _caption_font(size)
        if size <= 7 or draw.textlength(text, font=font) <= width:
            return font
        size -= 1


def compare_panels(panels: list[np.ndarray], labels: list[str] | None = None, title: str | None = None,
                   gap: int = 8) -> np.ndarray:
    """Panels (same shape and dtype) left to right with white ``gap`` columns; with ``labels`` each
    panel gets its caption (e.g. "CRL-SR 28.10 dB / 0.759") in a white band above it, and ``title``
    (e.g. the degradation) adds a line across the whole width above the labels. Black text; grey,
    RGB, RGBA (opaque band) and 16-bit stay as they are."""
    from PIL import Image, ImageDraw

    first = panels[0]
    peak = np.iinfo(first.dtype).max
    gap_block = np.full((first.shape[0], gap) + first.shape[2:], peak, first.dtype)
    parts: list[np.ndarray] = []
    for i, panel in enumerate(panels):
        parts += [gap_block, panel] if i else [panel]
    body = np.concatenate(parts, axis=1)
    if not labels and not title:
        return body
    line_h = max(14, min(40, first.shape[0] // 10))
    lines = ([title] if title else []) + ([None] if labels else [])
    canvas = Image.new("L", (body.shape[1], line_h * len(lines)), 255)
    draw = ImageDraw.Draw(canvas)
    font_px = max(7, int(line_h * 0.7))
    for row, text in enumerate(lines):
        spans = [(text, 0, body.shape[1])] if text is not None else [
            (label, i * (first.shape[1] + gap), first.shape[1]) for i, label in enumerate(labels or [])]
        for caption, x0, width in spans:
            font = _fitted_font(draw, caption, font_px, width - 4)
            tw = draw.textlength(caption, font=font)
            draw.text((x0 + max(2, (width - tw) / 2), row * line_h + line_h / 2), caption, fill=0, font=font,
                      anchor="lm")
    ink = np.asarray(canvas)
    band = np.round(ink.astype(np.float64) * (peak / 255.0)).astype(body.dtype)
    if body.ndim == 3:  # the same grey for every colour channel; alpha (4th channel) opaque
        band = np.repeat(band[..., None], body.shape[2], axis=2)
        if body.shape[2] == 4:
            band[..., 3] = peak
    return np.concatenate([band, body], axis=0)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8,
                 labels: tuple[str, str] | None = None) -> np.ndarray:
    """left | gap | right (white gap); with ``labels`` each half is captioned (:func:`compare_panels`)."""
    return compare_panels([left, right], list(labels) if labels else None, gap=gap)


def to_rgb8(img: np.ndarray) -> np.ndarray:
    """Any decoded/SR image (grey, RGB, RGBA; 8- or 16-bit) as uint8 RGB, for metrics and 3-panel pictures."""
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float64) / 257.0).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def metric_label(name: str, img: np.ndarray, hr: np.ndarray, scale: int) -> tuple[str, float, float]:
    """``"<name> 28.10 dB / 0.7593"`` (Y-PSNR / SSIM, ``scale``-px border) and the two numbers."""
    from .evaluate import psnr_y, ssim_y

    p, s = psnr_y(img, hr, scale), ssim_y(img, hr, scale)
    return f"{name} {p:.2f} dB / {s:.4f}", p, s


def ground_truth_panel(bicubic: np.ndarray, sr: np.ndarray, hr: np.ndarray, scale: int, model_label: str,
                       title: str) -> tuple[np.ndarray, dict[str, float]]:
    """bicubic | model | ground truth (uint8 RGB, same size), captioned with Y-PSNR/SSIM and ``title``."""
    bic_text, bic_psnr, bic_ssim = metric_label("bicubic", bicubic, hr, scale)
    sr_text, sr_psnr, sr_ssim = metric_label(model_label, sr, hr, scale)
    picture = compare_panels([bicubic, sr, hr], [bic_text, sr_text, "ground truth"], title=title)
    return picture, {"bicubic_psnr": bic_psnr, "bicubic_ssim": bic_ssim, "model_psnr": sr_psnr, "model_ssim": sr_ssim}


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


def degradation_title(lr_path: Path, scale: int) -> str:
    """What degraded this LR file, from the ``degradations.json`` that ``sr degrade`` writes beside it."""
    import json

    from .degradations import describe_degradation

    record = lr_path.parent / "degradations.json"
    stem = lr_path.stem[: -len(f"x{scale}")] if lr_path.stem.endswith(f"x{scale}") else lr_path.stem
    try:
        info = json.loads(record.read_text())["images"][stem]
        return f"{lr_path.name}: {describe_degradation(info, scale)}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{lr_path.name}: x{scale}, degradation not recorded (no degradations.json entry beside it)"


def ground_truth_files(files: list[Path], hr: str | Path, scale: int) -> dict[Path, Path]:
    """Each input's ground truth: ``--hr FILE`` for a single input, or ``HR_DIR/<stem>.*`` where the
    input is ``<stem>.*`` or ``<stem>x<scale>.*`` (the ``sr degrade`` / DIV2K naming)."""
    hr = Path(hr)
    if hr.is_file():
        if len(files) != 1:
            raise UsageError(f"--hr {hr} is one file but {len(files)} inputs were given; pass the HR folder")
        return {files[0]: hr}
    if not hr.is_dir():
        raise UsageError(f"--hr {hr}: no such file or folder")
    from .data import resolve_hr_dirs

    folder = resolve_hr_dirs(hr)[0]
    found = {}
    for path in files:
        stem = path.stem[: -len(f"x{scale}")] if path.stem.endswith(f"x{scale}") else path.stem
        match = next((folder / f"{stem}{ext}" for ext in (path.suffix, *IMAGE_EXTS)
                      if (folder / f"{stem}{ext}").is_file()), None)
        if match is not None:
            found[path] = match
    return found


def run_inference(model: nn.Module, inputs: list[str], out_dir: str | Path, scale: int, tile: int = 256,
                  overlap: int = 32, compare: bool = False, log=print, guard=None,
                  model_label: str = "CRL-SR", hr: str | None = None, progress: bool = False) -> int:
    """Upscale every input into ``out_dir/<stem>.png`` (+ labelled ``<stem>_compare.png``); returns the exit code.

    With ``hr`` (a ground-truth file or folder) each output is scored (Y-PSNR/SSIM, ``scale``-px
    border, bicubic beside it) and the compare picture is bicubic | model | ground truth in 8-bit
    RGB, captioned with the numbers and the degradation (from ``degradations.json`` beside the input).
    Every output is claimed through ``guard`` (a :class:`shared.guard.OutputGuard`; one is made with
    the inputs when none is given) *before* any image is processed: an output that is an input, or
    lies in an input folder, or is a foreign existing file (without ``--force``) stops the command
    (exit 2). A bad input image prints one ``cvsuite: error:`` line, the batch goes on, exit code 1.
    """
    from tqdm import tqdm

    from shared.guard import OutputGuard

    out_dir = Path(out_dir)
    files, errors = collect_inputs(inputs)
    if guard is None:
        guard = OutputGuard(inputs=inputs)
    guard.add_inputs(*files)
    truth: dict[Path, Path] = {}
    if hr is not None:
        guard.add_inputs(hr)
        truth = ground_truth_files(files, hr, scale)
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
    for path in tqdm(files, desc="sr infer", unit="image", file=sys.stderr, leave=False,
                     disable=None if progress and len(files) > 1 else True):
        targets = targets_of[path]
        try:
            if path in duplicates:
                raise CvsuiteError(f"{path}: output {targets[0]} is also the output of {duplicates[path]} "
                                   f"in this batch; rename one of them")
            if hr is not None and path not in truth:
                raise CvsuiteError(f"{path}: no ground truth for it in {hr} (expected <stem>.png there)")
            image = load_image(path)
            result = upscale_image(model, image, scale, tile, overlap)
            write_image(targets[0], result)
            scores = ""
            if hr is not None:
                sr8, bic8 = to_rgb8(result), to_rgb8(bicubic_image(image, scale))
                gt = _as_uint8(load_image(truth[path]))
                if gt.shape[0] < sr8.shape[0] or gt.shape[1] < sr8.shape[1]:
                    raise CvsuiteError(f"{truth[path]}: ground truth {gt.shape[1]}x{gt.shape[0]} is smaller than the "
                                       f"x{scale} output {sr8.shape[1]}x{sr8.shape[0]}")
                gt = gt[:sr8.shape[0], :sr8.shape[1]]
                picture, numbers = ground_truth_panel(bic8, sr8, gt, scale, model_label, degradation_title(path, scale))
                scores = (f"; vs {truth[path].name}: bicubic {numbers['bicubic_psnr']:.2f} dB / "
                          f"{numbers['bicubic_ssim']:.4f}, {model_label} {numbers['model_psnr']:.2f} dB / "
                          f"{numbers['model_ssim']:.4f} (Y, {scale}-px border)")
                if compare:
                    write_image(targets[1], picture)
            elif compare:
                write_image(targets[1], side_by_side(bicubic_image(image, scale), result,
                                                     labels=("bicubic", model_label)))
            log(f"{path} -> {targets[0]} ({result.shape[1]}x{result.shape[0]}){scores}")
        except CvsuiteError as exc:
            failures += 1
            print(f"cvsuite: error: {exc}", file=sys.stderr)
    guard.record()
    return 1 if failures else 0


def _as_uint8(image: ImageData) -> np.ndarray:
    """A decoded image's RGB as uint8 (16-bit rounded)."""
    from .degradations import quantize

    return quantize(image.rgb)
