"""Relative inference speed of SR weight files (e.g. a grown network against the shipped one): tiled x4
upscaling of the same 256² LR crop (1024² output, tile 256, default overlap = 2 × receptive radius, colour
lock on), repeats interleaved in one process so every file sees the same machine load; prints each file's
median output MP/s and its ratio to the first file.

    PYTHONPATH=. python evaluation/sr_speed_pair.py W0 W1 [...] [--threads 2] [--repeats 5] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.sr.model import count_parameters, load_model  # noqa: E402
from evaluation.bench_sr import speed_input, upscale_times  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+", help="weight files; the first is the reference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per file (median)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lr = speed_input()
    models = {w: load_model(w, 4) for w in args.weights}
    times = upscale_times(models, lr, args.repeats)
    reference = statistics.median(times[args.weights[0]])
    rows = []
    for w, model in models.items():
        median = statistics.median(times[w])
        rows.append({"weights": w, "parameters": count_parameters(model), "receptive_radius": model.receptive_radius,
                     "threads": args.threads, "repeats": args.repeats, "median_s": round(median, 3),
                     "output_mp_per_s": round((256 * 4) ** 2 / 1e6 / median, 3),
                     "speed_vs_first": round(reference / median, 3)})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
