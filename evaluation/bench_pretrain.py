"""Benchmark of the pretrain app: every method, same small CNN, same budget, on scikit-learn digits.

Each method trains ``small_cnn`` (width 32, 16x16 inputs) with its recipe
``apps/pretrain/configs/digits_<method>.yaml`` for the same number of steps and batch size, then
the frozen backbone is evaluated (kNN-5 / kNN-200 weighted cosine, linear probe, 10-label probe
averaged over 5 seeds) on the fixed digits test split, beside the same network at random init.
Prints one JSON line per method, then a markdown table; writes the table into
``apps/pretrain/README.md`` (between the bench markers) and all numbers to a JSON file.
Runs are resumable: a finished method is reused, an interrupted one resumes from its checkpoint.

    flock /tmp/cvsuite-train.lock python -m evaluation.bench_pretrain --ship   # ~2-4 min per method on 2 cores
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apps.pretrain.evaluate import evaluate_encoder_file  # noqa: E402
from apps.pretrain.losses import METHODS  # noqa: E402
from apps.pretrain.model import load_encoder, random_encoder  # noqa: E402
from apps.pretrain.train import PretrainConfig, run_training  # noqa: E402
from shared.config import load_config  # noqa: E402

CONFIGS = ROOT / "apps" / "pretrain" / "configs"
README = ROOT / "apps" / "pretrain" / "README.md"
BEGIN, END = "<!-- bench_pretrain:begin -->", "<!-- bench_pretrain:end -->"
COLUMNS = ("knn5", "knn200", "linear", "linear_10label")


def train_method(method: str, out_root: Path, steps: int, threads: int) -> tuple[dict[str, Any], float]:
    """Train (or reuse / resume) one method; returns (eval metrics, training seconds)."""
    out_dir = out_root / method
    done = out_dir / "bench_done.json"
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("steps") == steps:
            return record["eval"], record["seconds"]
        shutil.rmtree(out_dir)
    resume = (out_dir / "checkpoints" / "last.pt").is_file()
    cfg = load_config(PretrainConfig, CONFIGS / f"digits_{method}.yaml", [
        f"train.out_dir={out_dir}", f"train.max_steps={steps}", f"train.resume={str(resume).lower()}",
        "train.progress=false", "evaluate=false"])
    torch.set_num_threads(threads)
    started = time.perf_counter()
    summary = run_training(cfg)
    seconds = summary["seconds"] if not resume else time.perf_counter() - started
    metrics = evaluate_encoder_file(summary["encoder"], "digits")
    done.write_text(json.dumps({"steps": steps, "seconds": seconds, "eval": metrics}, indent=2) + "\n")
    return metrics, seconds


def random_baseline(reference_encoder: Path) -> dict[str, Any]:
    """The same architecture, untrained (seed 0), evaluated the same way."""
    from apps.pretrain.data import read_digits
    from apps.pretrain.evaluate import evaluate_backbone

    _, info = load_encoder(reference_encoder)
    return evaluate_backbone(random_encoder(info, seed=0), read_digits("train"), read_digits("test"),
                             info.image_size, info.mean, info.std)


def markdown_table(rows: list[dict[str, Any]], steps: int) -> str:
    lines = [f"Digits (scikit-learn, 1,257 train / 540 test, fixed split), `small_cnn` width 32 on 16x16 inputs, "
             f"{steps} steps x 256 images per method; accuracy in % on the test split "
             "(10-label: mean ± std over 5 seeds).", "",
             "| method | kNN-5 | kNN-200 | linear | 10-label linear | train time (s) |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        m = row["metrics"]
        time_s = f"{row['seconds']:.0f}" if row["seconds"] is not None else "-"
        lines.append(f"| {row['method']} | {100 * m['knn5']:.2f} | {100 * m['knn200']:.2f} | {100 * m['linear']:.2f} | "
                     f"{100 * m['linear_10label']:.2f} ± {100 * m['linear_10label_std']:.2f} | {time_s} |")
    return "\n".join(lines) + "\n"


def write_readme(table: str, command: str) -> None:
    block = f"{BEGIN}\n{table}\nMeasured with `{command}`.\n{END}"
    text = README.read_text() if README.is_file() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## Benchmark\n\n" + block + "\n"
    README.write_text(text)


def ship(row: dict[str, Any], steps: int, baseline: dict[str, Any], note: str) -> Path:
    """Copy one method's encoder to ``weights/pretrain_digits_<method>.safetensors`` + manifest entry."""
    from shared.weights import add_manifest_entry

    method = row["method"]
    target = ROOT / "weights" / f"pretrain_digits_{method}.safetensors"
    shutil.copyfile(row["encoder"], target)
    metrics = {k: round(row["metrics"][k], 4) for k in (*COLUMNS, "linear_10label_std")}
    metrics["random_init"] = {k: round(baseline[k], 4) for k in (*COLUMNS, "linear_10label_std")}
    add_manifest_entry(
        f"pretrain_digits_{method}", target,
        recipe=(f"cvsuite pretrain train --config apps/pretrain/configs/digits_{method}.yaml "
                f"train.max_steps={steps} (scikit-learn digits train split, small_cnn width 32, 16x16); {note}"),
        metrics=metrics, extra={"app": "pretrain", "dataset": "sklearn digits (fixed 70/30 split, seed 0)"})
    return target


def ship_rows(rows: list[dict[str, Any]], steps: int, baseline: dict[str, Any]) -> list[str]:
    """Ship the best encoder (10-label probe); refresh any other method already shipped, so no
    entry in the manifest keeps numbers from an older run."""
    trained = [r for r in rows if r["encoder"]]
    best = max(trained, key=lambda r: r["metrics"]["linear_10label"])
    shipped = [str(ship(best, steps, baseline, "best 10-label probe of evaluation/bench_pretrain.py"))]
    for row in trained:
        if row is not best and (ROOT / "weights" / f"pretrain_digits_{row['method']}.safetensors").is_file():
            shipped.append(str(ship(row, steps, baseline, "shipped by an earlier benchmark run, refreshed")))
    return shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per method (batch 256)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cvsuite-bench-pretrain"), help="run folders")
    parser.add_argument("--json", type=Path, default=ROOT / "evaluation" / "results" / "bench_pretrain.json")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite apps/pretrain/README.md")
    parser.add_argument("--ship", action="store_true", help="copy the best encoder (10-label probe) to weights/")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        metrics, seconds = train_method(method, args.out, args.steps, args.threads)
        row = {"method": method, "metrics": {k: metrics[k] for k in (*COLUMNS, "linear_10label_std")},
               "seconds": seconds, "encoder": metrics["weights"]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    baseline = random_baseline(Path(rows[0]["encoder"]))
    rows.append({"method": "random init", "metrics": baseline, "seconds": None, "encoder": None})
    print(json.dumps(rows[-1]), flush=True)
    table = markdown_table(rows, args.steps)
    print(table)
    command = "flock /tmp/cvsuite-train.lock python -m evaluation.bench_pretrain" + (" --ship" if args.ship else "")
    if not args.no_readme:
        write_readme(table, command)
    trained = [r for r in rows if r["encoder"]]
    best = max(trained, key=lambda r: r["metrics"]["linear_10label"])
    shipped = ship_rows(rows, args.steps, baseline) if args.ship else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"steps": args.steps, "batch_size": 256, "rows": rows, "best": best["method"],
                                     "shipped": shipped, "threads": args.threads}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
