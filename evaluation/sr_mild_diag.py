"""Where does the mild row lose? Score models on the *validation* photos with each piece of the
benchmark's mild degradation alone and in pairs (no training; issue 23 diagnosis).

The mild point (``MILD_POINT``: Gaussian blur σ 0.8 → 2.2 across the image, bicubic x4, Gaussian
noise σ 5, JPEG 90) is taken apart: blur is switched off by a σ of 0.01 HR px (a delta kernel; the
bicubic x4 resize of the mild pipeline stays), noise by σ 0, JPEG by skipping the encoder. Every
variant uses the same per-image degradation seeds, so the variants differ only in the pieces left out.

    PYTHONPATH=. python evaluation/sr_mild_diag.py --weights crl=runs/sr_crl_x4_photos_s0/sr_model.safetensors \
        ablation=runs/sr_ablation_x4_photos_s0/sr_model.safetensors --json evaluation/results/sr_mild_diag.json

Also prints the training ``mild`` ranges next to the point values (the point lies inside every range).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.sr import degradations  # noqa: E402
from apps.sr.data import VALIDATION_PHOTOS, bundled_photo  # noqa: E402
from apps.sr.degradations import MILD_POINT, DegradationConfig  # noqa: E402
from apps.sr.evaluate import bicubic_upscale, pairs_from_degradation, psnr_y, ssim_y  # noqa: E402
from apps.sr.infer import upscale_rgb  # noqa: E402
from apps.sr.model import load_model  # noqa: E402

SCALE = 4
NO_BLUR = {"mild_sigma_start": (0.01, 0.01), "mild_sigma_end": (0.01, 0.01)}
NO_NOISE = {"mild_noise": (0.0, 0.0)}
# variant -> (config overrides on top of MILD_POINT, JPEG on?)
VARIANTS: dict[str, tuple[dict, bool]] = {
    "resize only": ({**NO_BLUR, **NO_NOISE}, False),
    "blur": (NO_NOISE, False),
    "noise": (NO_BLUR, False),
    "jpeg": ({**NO_BLUR, **NO_NOISE}, True),
    "blur+noise": ({}, False),
    "blur+jpeg": (NO_NOISE, True),
    "noise+jpeg": (NO_BLUR, True),
    "mild (all three)": ({}, True),
}


def score(sr: np.ndarray, hr: np.ndarray) -> tuple[float, float]:
    """(Y-PSNR, Y-SSIM) of one output against its ground truth (the benchmark's border and channel)."""
    return psnr_y(sr, hr, SCALE), ssim_y(sr, hr, SCALE)


@contextlib.contextmanager
def jpeg_off(off: bool) -> Iterator[None]:
    """Replace the pipeline's JPEG step by the identity for the duration of the block."""
    original = degradations._jpeg_rgb
    if off:
        degradations._jpeg_rgb = lambda img, quality: img
    try:
        yield
    finally:
        degradations._jpeg_rgb = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", required=True, help="label=path of each model")
    parser.add_argument("--deg-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_cfg = DegradationConfig()
    ranges = {k: getattr(train_cfg, k) for k in MILD_POINT}
    print(json.dumps({"training_mild_ranges": ranges, "benchmark_point": MILD_POINT}), flush=True)
    models = {label: load_model(path, SCALE) for label, path in (w.split("=", 1) for w in args.weights)}
    images = [(name, bundled_photo(name)) for name in VALIDATION_PHOTOS]
    results: dict = {"photos": list(VALIDATION_PHOTOS), "degradation_seeds": args.deg_seeds,
                     "weights": dict(w.split("=", 1) for w in args.weights), "variants": {}}
    for variant, (overrides, jpeg) in VARIANTS.items():
        cfg = replace(DegradationConfig(), **{**MILD_POINT, **overrides})
        with jpeg_off(not jpeg):
            pairs = [p for s in args.deg_seeds for p in pairs_from_degradation(images, SCALE, "mild", s, cfg)]
        bic = [score(bicubic_upscale(p.lr, SCALE), p.hr) for p in pairs]
        row: dict = {"bicubic_psnr": float(np.mean([b[0] for b in bic])),
                     "bicubic_ssim": float(np.mean([b[1] for b in bic]))}
        for label, model in models.items():
            scores = []
            for p in pairs:
                scores.append(score(upscale_rgb(model, p.lr.astype(np.float32) / 255.0, SCALE, tile=0), p.hr))
            per_photo: dict[str, list[float]] = {}
            for p, s, b in zip(pairs, scores, bic):
                per_photo.setdefault(p.name, []).append(s[0] - b[0])
            row[label] = {"gain_db": float(np.mean([s[0] - b[0] for s, b in zip(scores, bic)])),
                          "ssim_gain": float(np.mean([s[1] - b[1] for s, b in zip(scores, bic)])),
                          "photo_gain_db": {k: float(np.mean(v)) for k, v in per_photo.items()}}
        results["variants"][variant] = row
        print(json.dumps({"variant": variant, "bicubic_psnr": round(row["bicubic_psnr"], 3),
                          **{label: {"gain_db": round(row[label]["gain_db"], 3),
                                     "photos": {k: round(v, 3) for k, v in row[label]["photo_gain_db"].items()}}
                             for label in models}}), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
