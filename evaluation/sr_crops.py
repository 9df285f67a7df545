"""1:1 crops of x4 SR on fur, brick, foliage and text (bicubic | CRL-SR | ground truth) for the SR README.

    PYTHONPATH=. python evaluation/sr_crops.py --out apps/sr/docs/crops_x4_mild.png [--kind mild] [--force]

Each source photo is degraded with the benchmark's point values (``mild``: blur σ 0.8 → 2.2, noise
σ 5, JPEG 90; degradation seed 0), upscaled x4 by bicubic and by the shipped CRL-SR weights (default
inference settings, colour lock on), and a 160² HR crop is shown at 1:1 with Y-PSNR/SSIM of the
crop. Which split each photo belongs to is written in its row title (training photos only show
what the network does, not how it generalises).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.sr.data import bundled_photo, write_image  # noqa: E402
from apps.sr.degradations import MILD_POINT, DegradationConfig, describe_degradation  # noqa: E402
from apps.sr.evaluate import bicubic_upscale, pairs_from_degradation  # noqa: E402
from apps.sr.infer import compare_panels, ground_truth_panel, upscale_rgb  # noqa: E402
from apps.sr.model import load_model  # noqa: E402
from shared.guard import OutputGuard  # noqa: E402
from shared.weights import shipped_weight  # noqa: E402

CROP = 160


def text_photo() -> np.ndarray:
    import skimage.data

    return np.repeat(skimage.data.text()[..., None], 3, axis=2)  # a real photo of a sign, in no split


# (row title, photo, HR crop origin y, x)
SOURCES = [
    ("fur: chelsea (held-out test photo)", lambda: bundled_photo("chelsea"), 0, 180),
    ("brick: scikit-image brick (training photo)", lambda: bundled_photo("brick"), 180, 180),
    ("foliage: scikit-learn china (training photo)", lambda: bundled_photo("china"), 300, 20),
    ("text: scikit-image text (in no split)", text_photo, 12, 90),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--kind", default="mild", choices=("bicubic", "mild", "blind", "spatially-variant"))
    parser.add_argument("--force", action="store_true", help="replace a file cvsuite did not write")
    args = parser.parse_args()
    torch.set_num_threads(2)
    guard = OutputGuard(force=args.force)
    out = guard.file(args.out)
    model = load_model(shipped_weight("sr_crl_x4"), 4)
    cfg = replace(DegradationConfig(), **MILD_POINT) if args.kind == "mild" else None
    rows = []
    for title, load, y, x in SOURCES:
        pair = pairs_from_degradation([(title.split(":")[0], load())], 4, args.kind, seed=0, cfg=cfg)[0]
        sr = upscale_rgb(model, pair.lr.astype(np.float32) / 255.0, 4, tile=0)
        bic = bicubic_upscale(pair.lr, 4)
        crop = (slice(y, y + CROP), slice(x, x + CROP))
        panel, _ = ground_truth_panel(bic[crop], sr[crop], pair.hr[crop], 4, "CRL-SR",
                                      f"{title}; {describe_degradation(pair.info or {}, 4)}")
        rows.append(panel)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 12), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    write_image(out, np.concatenate(rows, axis=0))
    guard.record()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
