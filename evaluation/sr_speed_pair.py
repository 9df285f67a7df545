"""Relative inference speed of SR weight files (e.g. a grown network against the shipped one): tiled x4
upscaling of the same 256² LR crop (1024² output, tile 256, default overlap = 2 × receptive radius, colour
lock on), repeats interleaved in one process so every file sees the same machine load; prints each file's
median output MP/s and its ratio to the first file. ``--candidate KEY=VAL[,KEY=VAL...]`` adds an untrained
network (seed 0) built from the first file's model settings with those overrides (e.g. a wider ``crlsr``), to
price a size before training it; ``--candidate ""`` is the first file's own size untrained (a check that trained
and untrained weights run at the same speed).

    PYTHONPATH=. python evaluation/sr_speed_pair.py W0 W1 [...] [--candidate width=64,invariant=48 ...]
        [--threads 2] [--repeats 5] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.sr.model import COLOUR_LOCK_SIGMA, build_model, count_parameters, load_model, model_record  # noqa: E402
from evaluation.bench_sr import speed_input, upscale_times  # noqa: E402


def untrained_candidate(reference: str, overrides: str) -> torch.nn.Module:
    """The network of ``reference`` (a weight file) with ``overrides`` ("width=64,invariant=48") applied, built
    untrained from seed 0, in inference mode with the default colour lock, as :func:`load_model` returns it."""
    arch, kwargs = model_record(reference)
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        kwargs[key] = value.strip().lower() in ("1", "true") if isinstance(kwargs.get(key), bool) else int(value)
    torch.manual_seed(0)
    model = build_model(arch, **kwargs)
    model.colour_lock = COLOUR_LOCK_SIGMA
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", nargs="+", help="weight files; the first is the reference")
    parser.add_argument("--candidate", action="append", default=[],
                        help="untrained network: the first file's settings with KEY=VAL[,KEY=VAL] overrides")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per file (median)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lr = speed_input()
    models = {w: load_model(w, 4) for w in args.weights}
    for overrides in args.candidate:
        models[f"untrained:{overrides}"] = untrained_candidate(args.weights[0], overrides)
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
