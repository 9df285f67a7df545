"""``cvsuite videoqa synth|pretrain|train|eval|infer`` and the app's demo."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from shared.errors import CvsuiteError, UsageError

SHIPPED = "videoqa_synth_full"


def _print_summary(summary: dict[str, Any], what: str) -> None:
    metrics = summary.get("metrics", {})
    print(f"{what}: {summary['step']} steps on {summary.get('questions', '?')} questions in {summary['seconds']:.1f} s; "
          f"last acc {metrics.get('acc', float('nan')):.3f}; weights: {summary['weights']}")
    if "eval" in summary:
        from .evaluate import format_table

        print(format_table(summary["eval"]))
    elif "eval_skipped" in summary:
        print(f"(no evaluation: {summary['eval_skipped']})")


def _train_config(args: argparse.Namespace, stage: str):
    from shared.cli_utils import config_from_args

    from .train import VideoQAConfig

    flags = {"data": "data.root", "out": "train.out_dir", "steps": "train.max_steps", "resume": "train.resume",
             "features": "data.features", "init_from": "init_from", "text_model": "model.text_model"}
    cfg = config_from_args(VideoQAConfig, args, flag_map=flags)
    if stage == "question":
        cfg = dataclasses.replace(cfg, stage="question", eval_split=None)
    elif cfg.stage != "answer":
        raise UsageError("cvsuite videoqa train runs stage 2 (stage=answer); use 'videoqa pretrain' for stage 1")
    return cfg


def cmd_train(args: argparse.Namespace, stage: str = "answer") -> int:
    from shared.guard import OutputGuard

    from .train import run_training

    cfg = _train_config(args, stage)
    guard = OutputGuard([cfg.data.root, cfg.data.features, cfg.init_from, cfg.model.text_model], force=args.force)
    summary = run_training(cfg, guard=guard)
    _print_summary(summary, "stage 1 (question prediction)" if stage == "question" else "stage 2 (answer prediction)")
    return 0


def _weights(args: argparse.Namespace) -> Path:
    """``--weights``, else the shipped synthetic-set weights (``videoqa_synth_full``, sha256-checked)."""
    if args.weights:
        return Path(args.weights)
    from shared.weights import read_manifest, shipped_weight

    if SHIPPED not in read_manifest():
        raise UsageError("no videoqa weights are shipped yet: pass --weights (a model.safetensors written by "
                         "'cvsuite videoqa train')")
    return shipped_weight(SHIPPED)


def _open(args: argparse.Namespace, weights: Path, need_labels: bool):
    """Model, vocab and the split's dataset built with the data settings the weights were trained with."""
    from .data import open_split
    from .dataset import VideoQADataset
    from .infer import hidden_answers
    from .model import load_model
    from .train import DataConfig

    model, vocab, meta = load_model(weights, args.device)
    data_cfg = DataConfig()
    if "data_config" in meta:
        stored = json.loads(meta["data_config"])
        data_cfg = DataConfig(**{k: v for k, v in stored.items() if k in {f.name for f in dataclasses.fields(DataConfig)}})
    if args.no_ts:
        data_cfg = dataclasses.replace(data_cfg, use_ts=False)
    if model.cfg.visual == "features" and not args.features and model.cfg.streams != "text":
        raise UsageError(f"{weights} reads precomputed features: pass --features FILE.h5")
    split = open_split(args.data, args.split, args.features, labelled=None, bad_ts=args.bad_ts)
    labels_from = None
    if need_labels and any(it.answer_idx is None for it in split.items):
        hidden = hidden_answers(Path(args.data))
        if hidden is not None:
            for item in split.items:
                if item.answer_idx is None and str(item.qid) in hidden:
                    item.answer_idx = hidden[str(item.qid)]
            labels_from = "synth_test_public_answers.json"
    dataset = VideoQADataset(split, vocab, data_cfg.sizes(), mode="answer", visual=model.cfg.visual,
                             load_visual=model.cfg.streams != "text", load_subtitles=model.cfg.streams != "video",
                             need_labels=need_labels)
    return model, dataset, meta, labels_from


def _warn_domain(meta: dict[str, str], dataset: Any, weights: Path) -> None:
    from .infer import out_of_vocabulary

    unknown = out_of_vocabulary(dataset)
    if unknown > 0.2:
        trained_on = meta.get("train_root", "?")
        print(f"cvsuite: warning: {100 * unknown:.0f} % of the question/answer words are unknown to {weights.name} "
              f"(trained on {trained_on}): its answers here are not meaningful", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .evaluate import evaluate_model, format_table

    weights = _weights(args)
    guard = OutputGuard([weights, args.data, args.features], force=args.force)
    if args.json:
        guard.file(args.json)
    model, dataset, meta, labels_from = _open(args, weights, need_labels=True)
    _warn_domain(meta, dataset, weights)
    result = evaluate_model(model, dataset, batch_size=args.batch_size, device=args.device)
    if labels_from:
        print(f"(labels of {args.split} from {labels_from})")
    print(format_table(result))
    print(f"{result['questions_per_s']:.1f} questions/s")
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2) + "\n")
        guard.record()
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .infer import infer_split

    weights = _weights(args)
    guard = OutputGuard([weights, args.data, args.features], force=args.force)
    out = guard.file(args.out)
    if not str(args.out).endswith(".json"):
        raise UsageError(f"--out must be a .json file (the leaderboard format), got {args.out}")
    pictures = Path(args.pictures) if args.pictures else None
    model, dataset, meta, _ = _open(args, weights, need_labels=False)
    _warn_domain(meta, dataset, weights)
    if pictures is not None:  # a synthetic set ships its test answers: the pictures then mark right / wrong
        from .infer import hidden_answers

        hidden = hidden_answers(Path(args.data)) or {}
        for item in dataset.items:
            if item.answer_idx is None and str(item.qid) in hidden:
                item.answer_idx = hidden[str(item.qid)]
    result = infer_split(model, dataset, out, guard, pictures, args.max_pictures, args.batch_size)
    print(f"wrote {result['questions']} predictions {{qid: answer_idx}} to {result['out']}"
          + (f"; {len(result['pictures'])} pictures in {pictures}" if pictures else ""))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .synth import write_dataset

    counts = write_dataset(args.out, args.clips, args.seed, guard=OutputGuard([], force=args.force))
    print(f"wrote {counts['clips']} clips ({counts['frames']} frames): {counts['train']} train, {counts['val']} val, "
          f"{counts['test_public']} test_public questions under {args.out}")
    return 0


def _read_args(p: argparse.ArgumentParser, split_default: str) -> None:
    from shared.cli_utils import add_force_arg

    p.add_argument("--data", required=True, help="dataset root (TVQA release layout, a TVQA+ or a DramaQA folder)")
    p.add_argument("--split", default=split_default, help=f"train | val | test_public (default {split_default})")
    p.add_argument("--weights", help="model .safetensors written by 'videoqa train' (default: the shipped videoqa_synth_full, trained on the synthetic set only)")
    p.add_argument("--features", help="HDF5 of per-frame features keyed by vid_name (for feature-based weights)")
    p.add_argument("--no-ts", action="store_true", help="use the whole clip instead of the question's ts window")
    p.add_argument("--bad-ts", default="error", choices=("error", "whole_clip"),
                   help="rows with a NaN/malformed ts: refuse (default) or use the whole clip")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    add_force_arg(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    from shared.cli_utils import add_app_parser, add_force_arg, add_run_args

    sub = add_app_parser(subparsers, "videoqa",
                         help="multiple-choice video QA (TVQA / TVQA+ / DramaQA): question-prediction "
                              "pretraining, masked-answer contrast, locally aligned attention")
    p = sub.add_parser("synth", help="write a synthetic QA set in the TVQA release layout (seeded)")
    p.add_argument("--out", required=True, help="dataset root to write")
    p.add_argument("--clips", type=int, default=60, help="number of clips (4 questions each; default 60)")
    p.add_argument("--seed", type=int, default=0)
    add_force_arg(p)
    p.set_defaults(func=cmd_synth)

    for name, stage, help_text in (
            ("pretrain", "question", "stage 1: self-supervised question prediction (no extra labels)"),
            ("train", "answer", "stage 2: answer prediction + masked-answer contrast (train split; evaluates on val)")):
        p = sub.add_parser(name, help=help_text)
        add_run_args(p, data_help="dataset root (data.root=)")
        p.add_argument("--features", help="per-frame features HDF5 keyed by vid_name (data.features=; model.visual=features)")
        p.add_argument("--text-model", help="local Hugging Face checkpoint folder (BERT / RoBERTa: config.json, weights, "
                                            "tokenizer files) as the text encoder (model.text_model=; never downloads; "
                                            "model.text_freeze=true keeps it fixed, text_lr= its fine-tuning lr)")
        if name == "train":
            p.add_argument("--init-from", help="stage-1 weights to start from (init_from=)")
        p.set_defaults(func=lambda a, s=stage: cmd_train(a, s))

    p = sub.add_parser("eval", help="accuracy overall and per question type on a labelled split")
    _read_args(p, "val")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("infer", help="leaderboard predictions {qid: answer_idx} (+ optional pictures)")
    _read_args(p, "test_public")
    p.add_argument("--out", required=True, help="predictions .json")
    p.add_argument("--pictures", help="folder for one PNG per example (frames, attention, subtitle, answers)")
    p.add_argument("--max-pictures", type=int, default=8)
    p.set_defaults(func=cmd_infer)
