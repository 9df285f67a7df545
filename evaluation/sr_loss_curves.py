"""Training-loss curves of SR runs side by side (issue 23, capacity pilot): the L1 term and the batch RGB PSNR that
the engine logs every ``log_every`` steps (each a single batch), averaged over windows of steps, for each run and as
a difference against the first run. Runs of the same seed see the same patches (the engine seeds every sample), so
the difference is paired: a lower L1 means the network fits the training patches better.

    PYTHONPATH=. python evaluation/sr_loss_curves.py RUN0 RUN1 [...] [--window 1000] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_metrics(run: Path) -> dict[int, dict[str, float]]:
    """``{step: record}`` from ``run/metrics.jsonl`` (the last record of a step wins, as after a resume)."""
    records: dict[int, dict[str, float]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[int(record["step"])] = record
    return records


def windowed(records: dict[int, dict[str, float]], key: str, window: int, steps: list[int]) -> dict[int, float]:
    """Mean of ``key`` over the logged ``steps`` in (w - window, w] for every window end w."""
    out: dict[int, float] = {}
    for end in range(window, max(steps) + 1, window):
        values = [records[s][key] for s in steps if end - window < s <= end]
        if values:
            out[end] = sum(values) / len(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders; the first is the reference")
    parser.add_argument("--window", type=int, default=1000, help="steps per window")
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args()
    metrics = [read_metrics(run) for run in args.runs]
    common = sorted(set.intersection(*(set(m) for m in metrics)))
    if not common:
        raise SystemExit("cvsuite: error: the runs have no logged step in common")
    table = {}
    for key in ("l1", "psnr_rgb"):
        curves = [windowed(m, key, args.window, common) for m in metrics]
        table[key] = {str(run): curve for run, curve in zip(args.runs, curves)}
        print(f"{key}, mean per {args.window}-step window (steps logged by every run: {len(common)}):")
        print("window end " + " ".join(f"{run.name:>28}" for run in args.runs) + "   diff vs first")
        for end in curves[0]:
            values = [c[end] for c in curves]
            diffs = " ".join(f"{v - values[0]:+.5f}" for v in values[1:])
            print(f"{end:>10} " + " ".join(f"{v:>28.5f}" for v in values) + f"   {diffs}")
    if args.json:
        Path(args.json).write_text(json.dumps({"window": args.window, "common_steps": len(common), **table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
