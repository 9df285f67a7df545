"""How much fine detail the SR training photos carry: for each photo, 300 random 128-px patches (the stage 2-4
patch size; numpy seed 0), the mean |Laplacian| of the grey patch (grey levels), reported per set as the share of
"flat" patches (mean |Laplacian| < 2) and the median over photos of each photo's median patch value.
``--sampler MIN TRIES`` measures instead the HR patches that the training sampler picks (apps.sr.data.SRTrainDataset,
``data.detail_min=MIN data.detail_tries=TRIES``; ``0 1`` = plain random crops), 300 per photo, seeded.

    PYTHONPATH=. python evaluation/sr_photo_detail.py      # needs the fetched photos (tools/fetch_sr_photos.py)
    PYTHONPATH=. python evaluation/sr_photo_detail.py --sampler 4 4
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.sr.data import TRAIN_PHOTOS, SRTrainDataset, bundled_photo, luma_laplacian  # noqa: E402
from apps.sr.photos import FIRST_ROUND, WALLPAPERS, load_wallpaper  # noqa: E402

PATCH, SAMPLES, FLAT = 128, 300, 2.0


def patch_detail(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lap = luma_laplacian(img)
    h, w = lap.shape
    ys, xs = rng.integers(0, h - PATCH, SAMPLES), rng.integers(0, w - PATCH, SAMPLES)
    return np.array([lap[y:y + PATCH, x:x + PATCH].mean() for y, x in zip(ys, xs)])


def sampled_detail(img: np.ndarray, dataset: SRTrainDataset) -> np.ndarray:
    """Mean |Laplacian| of the HR patches the training sampler picks from ``img`` (``SAMPLES`` draws)."""
    m, p = dataset.margin, dataset.patch
    return np.array([luma_laplacian(dataset.degradation_crop(img))[m:m + p, m:m + p].mean() for _ in range(SAMPLES)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", nargs=2, type=float, metavar=("MIN", "TRIES"),
                        help="measure the patches the training sampler picks with data.detail_min/detail_tries")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    random.seed(0)
    sets = {"bundled training photos": {n: bundled_photo(n) for n in TRAIN_PHOTOS},
            "plasma (first round)": {n: load_wallpaper(n) for n in FIRST_ROUND},
            "lomiri + mate (fourth round)": {n: load_wallpaper(n) for n in WALLPAPERS if n not in FIRST_ROUND}}
    for label, photos in sets.items():
        if args.sampler:
            dataset = SRTrainDataset(list(photos.values()), 4, PATCH, detail_min=args.sampler[0],
                                     detail_tries=int(args.sampler[1]))
            values = {name: sampled_detail(img, dataset) for name, img in photos.items()}
        else:
            values = {name: patch_detail(img, rng) for name, img in photos.items()}
        flat = np.mean([(v < FLAT).mean() for v in values.values()])
        median = np.median([np.median(v) for v in values.values()])
        print(f"{label}: {len(values)} photos, flat patches {flat:.0%}, median patch mean|Laplacian| {median:.2f}")
        if label.startswith("lomiri"):
            print("   " + ", ".join(f"{n} {(v < FLAT).mean():.0%}/{np.median(v):.1f}" for n, v in values.items()))


if __name__ == "__main__":
    main()
