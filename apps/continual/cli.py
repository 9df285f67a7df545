"""``cvsuite continual {train,eval,infer,sample}`` and the continual demo."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from shared.cli_utils import RUN_FLAGS, add_app_parser, add_force_arg, add_run_args, config_from_args
from shared.errors import UsageError
from shared.guard import OutputGuard, write_atomic

SHIPPED = "continual_digits_sequential"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _default_weights(weights: str | None) -> str:
    if weights:
        return weights
    from shared.weights import shipped_weight

    return str(shipped_weight(SHIPPED))


def cmd_train(args: argparse.Namespace) -> int:
    from .train import ContinualConfig, run_summary_line, run_training

    cfg = config_from_args(ContinualConfig, args, flag_map={**RUN_FLAGS, "regime": "regime", "tasks": "tasks"})
    guard = OutputGuard(([cfg.data] if cfg.data != "digits" else []) + [getattr(args, "config", None)], force=args.force)
    summary = run_training(cfg, guard=guard)
    print(run_summary_line(summary))
    print(f"model: {summary['curl']}; stream metrics: {Path(cfg.train.out_dir) / 'stream.json'}")
    return 0


def evaluate_weights(weights: str, data: str) -> dict[str, Any]:
    from .data import check_tasks, default_tasks, open_dataset
    from .evaluate import evaluate_model
    from .model import load_curl

    model, info = load_curl(weights)
    size = int(info["image_shape"][0])
    test = open_dataset(data, "test", size if data != "digits" else 0)
    reference = open_dataset(data, "train", size if data != "digits" else 0)
    if list(test.shape) != list(info["image_shape"]):
        raise UsageError(f"{data} has {test.shape[0]}x{test.shape[1]} images but {weights} was trained on "
                         f"{info['image_shape'][0]}x{info['image_shape'][1]}")
    tasks = info.get("tasks") or default_tasks(len(test.classes), 1)
    try:
        check_tasks(tasks, len(test.classes))
    except UsageError:
        tasks = default_tasks(len(test.classes), 1)
    result = evaluate_model(model, test, reference, tasks)
    result.update(weights=str(weights), data=data, tasks=tasks, trained_on=info.get("data"), regime=info.get("regime"))
    return result


def cmd_eval(args: argparse.Namespace) -> int:
    weights = _default_weights(args.weights)
    guard = OutputGuard([weights, args.data if args.data != "digits" else None], force=args.force)
    if args.json:
        guard.file(args.json)
    result = evaluate_weights(weights, args.data)
    print(f"cluster accuracy {100 * result['cluster_accuracy']:.1f} %  kNN error {100 * result['knn_error']:.1f} %  "
          f"test ELBO {result['elbo']:.2f} nats  components {result['components']}")
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
        guard.record()
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .infer import infer_files

    guard = OutputGuard([args.weights, *args.images], force=args.force)
    result = infer_files(args.weights, args.images, args.out, guard, invert=args.invert)
    print(f"wrote {result['images']} rows to {result['out']} ({result['components']} components; "
          f"{result['outside']} outside the model)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .infer import sample_grid
    from .model import load_curl

    if args.per_component < 1 or args.per_component > 64:
        raise UsageError(f"--per-component must be in 1..64, got {args.per_component}")
    guard = OutputGuard([args.weights], force=args.force)
    guard.file(args.out)
    model, info = load_curl(args.weights)
    sample_grid(model, tuple(info["image_shape"]), Path(args.out), per_component=args.per_component, seed=args.seed)
    guard.record()
    print(f"wrote {model.active} x {args.per_component} samples to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_app_parser(subparsers, "continual", help="continual unsupervised representation learning (CURL)")

    train = sub.add_parser("train", help="train CURL on a non-stationary stream (no labels in unsupervised modes)")
    add_run_args(train, data_help="'digits' or a folder: raw MNIST/Fashion-MNIST, omniglot-py, ImageFolder (data=)")
    train.add_argument("--regime", help="sequential | smooth | iid (regime=)")
    train.add_argument("--tasks", help="class groups in stream order, e.g. '[[0,1],[2,3]]' (tasks=)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="cluster accuracy, kNN error, test ELBO, components")
    evaluate.add_argument("--weights", help=f"curl.safetensors (default: shipped {SHIPPED})")
    evaluate.add_argument("--data", default="digits", help="'digits' or a dataset folder with a test split")
    evaluate.add_argument("--json", help="also write the results to this JSON file")
    add_force_arg(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    infer = sub.add_parser("infer", help="component, its probability, ELBO and latent per image -> CSV")
    infer.add_argument("--weights", required=True, help="curl.safetensors")
    infer.add_argument("images", nargs="+", help="image files or folders")
    infer.add_argument("--out", required=True, help="output .csv")
    infer.add_argument("--invert", action="store_true", help="invert grey levels (dark strokes on white paper)")
    add_force_arg(infer)
    infer.set_defaults(func=cmd_infer)

    sample = sub.add_parser("sample", help="PNG grid: one row of generated samples per component")
    sample.add_argument("--weights", required=True, help="curl.safetensors")
    sample.add_argument("--out", required=True, help="output .png")
    sample.add_argument("--per-component", type=int, default=8, help="samples per component (1..64)")
    sample.add_argument("--seed", type=int, default=0)
    add_force_arg(sample)
    sample.set_defaults(func=cmd_sample)


def demo(out_dir: Path, force: bool = False) -> dict[str, Any]:
    """Evaluate the shipped digits model (sequential stream) and draw its components; a few seconds."""
    from shared.weights import shipped_weight

    from .infer import sample_grid
    from .model import load_curl

    started = time.perf_counter()
    weights = shipped_weight(SHIPPED)
    guard = OutputGuard([weights], force=force)
    out_json = guard.file(out_dir / "eval.json")
    out_png = guard.file(out_dir / "samples.png")
    result = evaluate_weights(str(weights), "digits")
    write_atomic(out_json, json.dumps(result, indent=2) + "\n")
    model, info = load_curl(str(weights))
    sample_grid(model, tuple(info["image_shape"]), Path(out_png))
    guard.record()
    return {"weights": weights.name, "cluster_accuracy": result["cluster_accuracy"], "knn_error": result["knn_error"],
            "components": result["components"], "first_task_accuracy": result["task_accuracy"][0],
            "seconds": round(time.perf_counter() - started, 1)}
