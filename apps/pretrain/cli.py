"""``cvsuite pretrain {train,eval,infer}`` and the pretrain demo."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from shared.cli_utils import RUN_FLAGS, add_force_arg, add_run_args, config_from_args
from shared.guard import OutputGuard, write_atomic
from shared.errors import CvsuiteError

DEMO_PREFIX = "pretrain_digits_"  # manifest names of shipped digits encoders: pretrain_digits_<method>
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _print_metrics(result: dict[str, Any]) -> None:
    def row(name: str, metrics: dict[str, Any]) -> str:
        return (f"{name:<12} kNN-5 {100 * metrics['knn5']:6.2f}  kNN-200 {100 * metrics['knn200']:6.2f}  "
                f"linear {100 * metrics['linear']:6.2f}  10-label {100 * metrics['linear_10label']:6.2f}"
                f" ± {100 * metrics['linear_10label_std']:.2f}")

    print(row(str(result.get("method", "encoder")), result))
    if "random_init" in result:
        print(row("random init", result["random_init"]))


def cmd_train(args: argparse.Namespace) -> int:
    from .train import PretrainConfig, check_method, run_training

    if args.method is not None:
        check_method(args.method)
    cfg = config_from_args(PretrainConfig, args, flag_map={
        **RUN_FLAGS, "method": "method", "batch_size": "train.batch_size"})
    check_method(cfg.method)
    guard = OutputGuard(([cfg.data] if cfg.data != "digits" else []) + [getattr(args, "config", None)], force=args.force)
    summary = run_training(cfg, guard=guard)
    from shared.engine.distributed import is_main_process

    if not is_main_process():
        return 0
    print(f"trained {cfg.method} for {summary['step']} steps in {summary['seconds']:.1f} s; "
          f"encoder: {summary.get('encoder')}")
    if "eval" in summary:
        _print_metrics(summary["eval"])
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_encoder_file

    guard = OutputGuard([args.weights, args.data if args.data != "digits" else None], force=args.force)
    if args.json:
        guard.file(args.json)  # refused before any work if it is the weights, inside the data, or foreign
    result = evaluate_encoder_file(args.weights, args.data, baseline=args.baseline, device=args.device)
    _print_metrics(result)
    if args.json:
        write_atomic(args.json, json.dumps(result, indent=2) + "\n")
        guard.record()
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .infer import extract_folder

    guard = OutputGuard([args.weights, args.input], force=args.force)
    result = extract_folder(args.weights, args.input, args.out, device=args.device, guard=guard)
    print(f"wrote {result['images']} x {result['dim']} features to {result['out']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pretrain", help="self-supervised image pretraining + kNN/linear evaluation")
    sub = parser.add_subparsers(dest="pretrain_command", metavar="VERB", required=True)

    train = sub.add_parser("train", help="pretrain a backbone (simclr, moco, wmse, adco, hcl, byol)")
    add_run_args(train, data_help="'digits' or a folder: ImageFolder, cifar-10-batches-py, "
                                  "cifar-100-python or stl10_binary (config key: data)")
    train.add_argument("--method", help="simclr | moco | wmse | adco | hcl | byol (config key: method)")
    train.add_argument("--batch-size", type=int, help="images per process and step (train.batch_size)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="kNN (k=5, 200), linear and 10-label linear probes on frozen features")
    evaluate.add_argument("--weights", required=True, help="encoder .safetensors (or a run's model.safetensors)")
    evaluate.add_argument("--data", default="digits", help="'digits' or a folder with train and test splits")
    evaluate.add_argument("--json", help="also write the results to this JSON file")
    evaluate.add_argument("--baseline", action="store_true", help="also evaluate a randomly initialised twin")
    evaluate.add_argument("--device", default="cpu")
    add_force_arg(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    infer = sub.add_parser("infer", help="extract features of a folder of images to .npy or .safetensors")
    infer.add_argument("--weights", required=True, help="encoder .safetensors")
    infer.add_argument("--input", required=True, help="folder of images (searched recursively)")
    infer.add_argument("--out", required=True, help="output .npy or .safetensors file")
    infer.add_argument("--device", default="cpu")
    add_force_arg(infer)
    infer.set_defaults(func=cmd_infer)


def demo(out_dir: Path, force: bool = False) -> dict[str, Any]:
    """Evaluate the shipped digits encoder (kNN + probes) beside a random-init twin; < 60 s on CPU."""
    from shared.weights import shipped_weight

    from .evaluate import evaluate_encoder_file

    started = time.perf_counter()
    from shared.weights import read_manifest

    manifest = read_manifest()
    names = [name for name in manifest if name.startswith(DEMO_PREFIX)]
    if not names:
        raise CvsuiteError(f"no shipped weights named {DEMO_PREFIX}<method> in weights/MANIFEST.json")
    # the shipped encoder with the best recorded 10-label probe
    best = max(names, key=lambda n: float(manifest[n].get("metrics", {}).get("linear_10label", 0.0)))
    weights = shipped_weight(best)
    guard = OutputGuard([weights], force=force)
    out_json = guard.file(out_dir / "eval.json")
    result = evaluate_encoder_file(weights, "digits", baseline=True)
    write_atomic(out_json, json.dumps(result, indent=2) + "\n")
    guard.record()
    _print_metrics(result)
    base = result["random_init"]
    return {"weights": weights.name, "method": result["method"],
            "knn5": result["knn5"], "knn5_random_init": base["knn5"],
            "linear_10label": result["linear_10label"], "linear_10label_random_init": base["linear_10label"],
            "seconds": round(time.perf_counter() - started, 1)}
