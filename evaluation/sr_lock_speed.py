"""Speed cost of the SR colour lock: the shipped CRL-SR with the lock off (σ 0) and on (σ 16), tiled
(tile 256, default overlap = 2 × receptive radius), 2 threads, 1024² output, repeats interleaved in
one process on the same input; prints the medians and their ratio.

    PYTHONPATH=. python evaluation/sr_lock_speed.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.sr.model import COLOUR_LOCK_SIGMA, load_model  # noqa: E402
from evaluation.bench_sr import speed_input, upscale_times  # noqa: E402
from shared.weights import shipped_weight  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per setting (median)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    lr = speed_input()
    models = {sigma: load_model(shipped_weight("sr_crl_x4"), 4, sigma) for sigma in (0.0, COLOUR_LOCK_SIGMA)}
    times = upscale_times(models, lr, args.repeats)  # both settings see the same load
    medians = {sigma: statistics.median(t) for sigma, t in times.items()}
    for sigma, median in medians.items():
        print(f"colour lock {sigma:g}: median {median:.3f} s, {(1024 * 1024 / 1e6) / median:.3f} output MP/s")
    print(f"lock on / off time ratio: {medians[COLOUR_LOCK_SIGMA] / medians[0.0]:.3f}")


if __name__ == "__main__":
    main()
