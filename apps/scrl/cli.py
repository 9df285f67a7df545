"""``cvsuite scrl synth|pretrain|finetune|eval|export|infer`` and the SCRL demo."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shared.cli_utils import RUN_FLAGS, add_app_parser, add_force_arg, add_run_args, config_from_args
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard, write_atomic

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SHIPPED = {"scrl": "scrl_synth_resnet18slim_scrl", "byol": "scrl_synth_resnet18slim_byol"}
SHIPPED_DETECTOR = "scrl_synth_detector_from_scrl"
RUN_FILES = ("config.yaml", "model.safetensors", "metrics.jsonl", "metrics.csv", "checkpoints/last.pt")


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_app_parser(subparsers, "scrl",
                         help="spatially consistent representation learning (SCRL) -> detection")

    p = sub.add_parser("synth", help="synthetic detection scenes as COCO json + images (seeded)")
    p.add_argument("--out", required=True, help="output folder: OUT/annotations.json + OUT/images/")
    p.add_argument("--images", type=int, default=64, help="number of scenes (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="scene side in pixels (default 128)")
    p.add_argument("--min-object", type=int, help="smallest object side in pixels (default size*14/128)")
    p.add_argument("--max-object", type=int, help="largest object side in pixels (default size*44/128)")
    add_force_arg(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("pretrain", help="SCRL (box-level BYOL) or image-level BYOL pretraining on unlabelled images")
    add_run_args(p, data_help="image folder (recursive) or COCO json (data=)")
    p.add_argument("--method", help="scrl | byol (method=)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune Faster R-CNN FPN from a pretrained backbone; COCOeval on --val")
    add_run_args(p, data_help="training COCO json or VOC folder (data=)", resume=False)
    p.add_argument("--images", help="image folder of the COCO json (default: beside it)")
    p.add_argument("--val", help="held-out COCO json / VOC folder for box AP (val=)")
    p.add_argument("--weights", help="pretrained backbone; omit for random init (weights=)")
    p.add_argument("--engine", choices=("torchvision", "detectron2"), help="engine= (default torchvision)")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("eval", help="COCOeval box AP/AP50/AP75 of a fine-tuned detector on a COCO json / VOC folder")
    p.add_argument("--weights", required=True, help="detector.safetensors written by finetune")
    p.add_argument("--data", required=True, help="COCO json or VOC folder")
    p.add_argument("--images", help="image folder of the COCO json (default: beside it)")
    p.add_argument("--json", help="also write the metrics here")
    add_force_arg(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="backbone -> detectron2 .pkl + .yaml, or a torchvision state dict")
    p.add_argument("--weights", required=True, help="any ResNet checkpoint (ours, torchvision, BYOL/MoCo/SCRL)")
    p.add_argument("--format", required=True, choices=("detectron2", "torchvision"))
    p.add_argument("--out", required=True, help="X.pkl (detectron2: X.yaml is written beside it) or X.pth")
    p.add_argument("--num-classes", type=int, default=80, help="MODEL.ROI_HEADS.NUM_CLASSES (default 80)")
    p.add_argument("--norm", default="BN", choices=("BN", "SyncBN", "FrozenBN"),
                   help="MODEL.RESNETS.NORM / FPN.NORM in the config (default BN)")
    add_force_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("infer", help="detect objects: COCO results JSON + PNGs with boxes and class names")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--weights", help="detector.safetensors written by finetune (default: the shipped detector "
                   "for the synthetic shape scenes)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--score", type=float, default=0.5, help="minimum score kept (default 0.5)")
    add_force_arg(p)
    p.set_defaults(func=cmd_infer)


def _claim_run(guard: OutputGuard, out_dir: str, extra: tuple[str, ...]) -> None:
    guard.directory(out_dir)
    for name in RUN_FILES + extra:
        guard.file(Path(out_dir) / name)


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SceneConfig, generate

    if args.images < 1:
        raise UsageError("--images must be >= 1")
    if not 48 <= args.size <= 1024:
        raise UsageError("--size must be between 48 and 1024")
    guard = OutputGuard(force=args.force)
    guard.directory(args.out)
    guard.directory(Path(args.out) / "images")
    min_object = args.min_object or max(8, 14 * args.size // 128)
    max_object = args.max_object or 44 * args.size // 128
    if not 4 <= min_object <= max_object <= args.size:
        raise UsageError(f"need 4 <= --min-object ({min_object}) <= --max-object ({max_object}) <= --size")
    path = generate(args.out, args.images, args.seed,
                    SceneConfig(size=args.size, min_object=min_object, max_object=max_object), claim=guard.file)
    guard.record()
    print(f"{args.images} scenes -> {path}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .train import PretrainConfig, run_pretraining

    from .data import dataset_inputs

    cfg = config_from_args(PretrainConfig, args, flag_map={**RUN_FLAGS, "method": "method"})
    guard = OutputGuard(inputs=[*dataset_inputs(cfg.data), getattr(args, "config", None)], force=args.force or cfg.train.resume)
    _claim_run(guard, cfg.train.out_dir, ("encoder.safetensors",))
    summary = run_pretraining(cfg, guard=guard)
    guard.record()
    print(f"pretrained {cfg.method} on {summary['images']} images for {summary['step']} steps "
          f"({summary['seconds']:.1f} s); encoder: {summary['encoder']}")
    return 0


def _print_ap(name: str, metrics: dict[str, Any]) -> None:
    print(f"{name}: AP {100 * metrics['AP']:.2f}  AP50 {100 * metrics['AP50']:.2f}  AP75 {100 * metrics['AP75']:.2f}")


def cmd_finetune(args: argparse.Namespace) -> int:
    from .train import FinetuneConfig, run_finetune

    cfg = config_from_args(FinetuneConfig, args, flag_map={
        **RUN_FLAGS, "images": "images", "val": "val", "weights": "weights", "engine": "engine"})
    from .data import dataset_inputs

    inputs = [*dataset_inputs(cfg.data, cfg.images), *dataset_inputs(cfg.val, cfg.val_images), cfg.weights,
              getattr(args, "config", None)]
    guard = OutputGuard(inputs=inputs, force=args.force)
    if cfg.engine == "detectron2":
        from .d2engine import run_d2_finetune

        guard.directory(cfg.train.out_dir)
        d2_dir = Path(cfg.train.out_dir) / "detectron2"
        guard.directory(d2_dir)
        for name in ("model_final.pth", "last_checkpoint", "metrics.json", "log.txt"):
            guard.file(d2_dir / name)
        summary = run_d2_finetune(cfg, claim=guard.file)
    elif cfg.engine == "torchvision":
        _claim_run(guard, cfg.train.out_dir, ("detector.safetensors", "metrics.json"))
        summary = run_finetune(cfg, guard=guard)
    else:
        raise UsageError(f"unknown engine {cfg.engine!r}; choose torchvision or detectron2")
    guard.record()
    print(f"fine-tuned ({cfg.engine}) -> {cfg.train.out_dir}")
    if "eval" in summary:
        _print_ap(f"box AP on {cfg.val}", summary["eval"])
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import dataset_inputs, open_detection_set
    from .evaluate import evaluate_detector
    from .model import load_detector

    guard = OutputGuard(inputs=[args.weights, *dataset_inputs(args.data, args.images)], force=args.force)
    if args.json:
        guard.file(args.json)
    model, names, _ = load_detector(args.weights)
    dataset = open_detection_set(args.data, args.images)
    if dataset.class_names != names:
        raise CvsuiteError(f"{args.data}: categories {dataset.class_names} differ from the detector's {names}")
    metrics = evaluate_detector(model, dataset)
    _print_ap(f"box AP on {args.data}", metrics)
    if args.json:
        write_atomic(args.json, json.dumps(metrics, indent=2) + "\n")
    guard.record()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    if args.num_classes < 1:
        raise UsageError("--num-classes must be >= 1")
    guard = OutputGuard(inputs=[args.weights], force=args.force)
    written = export(args.weights, args.format, args.out, args.num_classes, args.norm, claim=guard.file)
    guard.record()
    print(" ".join(f"{k}: {v}" for k, v in written.items()))
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .infer import expand_inputs, run_inference

    if not 0.0 <= args.score <= 1.0:  # also refuses nan
        raise UsageError(f"--score must be between 0 and 1, got {args.score}")
    files = expand_inputs(args.images)
    if not args.weights:
        from shared.weights import shipped_weight

        args.weights = str(shipped_weight(SHIPPED_DETECTOR))
    guard = OutputGuard(inputs=[*args.images, args.weights], force=args.force)
    guard.directory(args.out)
    summary = run_inference(files, args.weights, Path(args.out), args.score, claim=guard.file)
    guard.record()
    print(f"{summary['images']} images, {summary['detections']} detections -> {summary['json']}")
    return 0


def demo(out_dir: Path, force: bool = False) -> dict:
    """Held-out synthetic scenes -> the shipped detector (fine-tuned from the shipped SCRL backbone) ->
    COCOeval box AP and drawn detections; the shipped SCRL backbone exported for torchvision."""
    from shared.weights import shipped_weight

    from .data import read_coco
    from .evaluate import evaluate_detector
    from .export import export
    from .infer import run_inference
    from .model import load_detector
    from .synth import SceneConfig, generate

    out_dir = Path(out_dir)
    guard = OutputGuard(force=force)
    guard.directory(out_dir)
    scenes = SceneConfig(size=96, min_object=10, max_object=34)  # as in the benchmark (its test seed)
    val_json = generate(out_dir / "data", 24, seed=1002, cfg=scenes, claim=guard.file)
    detector_path = shipped_weight(SHIPPED_DETECTOR)
    model, _, _ = load_detector(detector_path)
    metrics = evaluate_detector(model, read_coco(val_json))
    files = [r.path for r in read_coco(val_json).records[:6]]
    guard.directory(out_dir / "detections")
    run_inference(files, detector_path, out_dir / "detections", 0.5, claim=guard.file)
    export(shipped_weight(SHIPPED["scrl"]), "torchvision", out_dir / "scrl_backbone_torchvision.pth",
           claim=guard.file)
    guard.record()
    return {"AP": metrics["AP"], "AP50": metrics["AP50"], "AP75": metrics["AP75"],
            "detections": str(out_dir / "detections")}
