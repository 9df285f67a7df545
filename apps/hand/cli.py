"""``cvsuite hand synth|pretrain|train|infer|predict|eval`` and the app's demo section."""
from __future__ import annotations

import argparse
import os
import json
import time
from pathlib import Path
from typing import Any

from shared.cli_utils import RUN_FLAGS, add_app_parser, add_force_arg, add_run_args, config_from_args
from shared.errors import CvsuiteError, UsageError

SHIPPED_ENCODER = "hand_moco_bgswap_multiview"
SHIPPED_REGRESSOR = "hand_keypoints"


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_app_parser(subparsers, "hand",
                         help="hand keypoints: MoCo pretraining on HanCo-style pairs, FreiHAND evaluation",
                         metavar="{synth,pretrain,train,infer,predict,eval}")

    p = sub.add_parser("synth", help="render synthetic multi-view hand sequences in the HanCo layout (seeded)")
    p.add_argument("--out", required=True, help="output root (HanCo layout; FreiHAND evaluation layout with --layout freihand)")
    p.add_argument("--sequences", type=int, default=4, help="number of sequences (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=16, help="frames per sequence (default 16)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--key-every", type=int, default=3,
                   help="frames between random key poses (default 3; 1 = a new pose every frame: most distinct poses)")
    p.add_argument("--cameras", type=int, default=8,
                   help="cameras per frame, 1..8 (default 8, HanCo's rig; 1 = one view per pose: for the same number of "
                        "images, 8 times the distinct poses)")
    p.add_argument("--layout", choices=("hanco", "freihand"), default="hanco",
                   help="freihand: write the frames as a FreiHAND evaluation split (evaluation/rgb + evaluation_*.json)")
    add_force_arg(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("pretrain", help="MoCo v2 pretraining with positives a/b/c/d (augment, background swap, view, time)")
    add_run_args(p, data_help="HanCo root (data=)")
    p.add_argument("--positives", help="e.g. a, a+b, a+b+c, a+b+c+d (positives=)")
    p.add_argument("--backgrounds", help="folder of background photos for the swap (b), e.g. HanCo_rnd_backgrounds "
                                         "(backgrounds_dir=); default: photos bundled with scikit-image/matplotlib")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("train", help="fine-tune the keypoint regressor (few labels) from random init or a pretrained encoder")
    add_run_args(p, data_help="HanCo root with xyz/ and calib/, or a FreiHAND root (training split) (data=)")
    p.add_argument("--init", help="'random', a pretrained encoder .safetensors, or a `hand train` result to continue (init=)")
    p.add_argument("--labels", type=float, help="fraction of labelled images used, e.g. 0.01 (label_fraction=)")
    p.add_argument("--mano", help="your MANO_RIGHT.pkl: also train a MANO head (778 vertices) (mano=)")
    p.add_argument("--backgrounds", help="folder of background photos the hands are composited over (backgrounds_dir=)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="hand keypoints in photos of any size: OUT/<stem>.json + OUT/<stem>_skeleton.png")
    p.add_argument("images", nargs="+", help="image files or folders (hand crops, or photos with --box)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--box", help="x,y,w,h: the hand's box in input pixels (same for every image); default: "
                                 "the whole image, padded to a square (aspect kept)")
    p.add_argument("--min-confidence", type=float, default=0.5,
                   help="warn when the hand score is below this (default 0.5)")
    p.add_argument("--weights", help="keypoint regressor (.safetensors); default: the shipped one")
    p.add_argument("--mano", help="MANO_RIGHT.pkl for a regressor trained with --mano (adds 778 vertices)")
    p.add_argument("--left", action="store_true", help="the hands are left hands (a right-hand estimator then sees "
                                                       "the crop mirrored; keypoints are mapped back)")
    add_force_arg(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("predict", help="write the official FreiHAND pred.json ([xyz_list, verts_list]) for a split")
    p.add_argument("--data", required=True, help="FreiHAND root (SPLIT/rgb, SPLIT_K.json, SPLIT_scale.json)")
    p.add_argument("--out", required=True, help="pred.json to write")
    p.add_argument("--split", default="evaluation", choices=("evaluation", "training"))
    p.add_argument("--weights", help="keypoint regressor (.safetensors); default: the shipped one")
    p.add_argument("--mano", help="MANO_RIGHT.pkl for a regressor trained with --mano: verts_list = 778 MANO vertices")
    add_force_arg(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("eval", help="FreiHAND scores exactly as the official eval.py (+ PCK curve PNG)")
    p.add_argument("--gt", required=True, help="folder with evaluation_xyz.json and evaluation_verts.json")
    p.add_argument("--pred", required=True, help="pred.json: [xyz_list, verts_list]")
    p.add_argument("--json", help="write all scores here (default: print only)")
    p.add_argument("--plot", help="PCK curve PNG (default: next to --json as <name>_pck.png)")
    p.add_argument("--txt", help="also write scores.txt exactly as the official eval.py does")
    p.add_argument("--split", default="evaluation", choices=("evaluation", "training"))
    add_force_arg(p)
    p.set_defaults(func=cmd_eval)


def _run_outputs(guard, out_dir: str, resume: bool) -> None:
    """Claim what the shared Trainer writes in a run folder (a resumed run owns them already)."""
    out = Path(out_dir)
    guard.directory(out)
    guard.file(out / "model.safetensors")
    if not resume:
        for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "checkpoints/last.pt"):
            guard.file(out / name)


def cmd_synth(args: argparse.Namespace) -> int:
    import tempfile

    from shared.guard import OutputGuard

    from .synth import SynthConfig, generate

    if args.sequences < 1 or args.frames < 2 or not 24 <= args.size <= 1024 or args.key_every < 1:
        raise UsageError("--sequences must be >= 1, --frames >= 2, --key-every >= 1 and --size within 24..1024")
    if not 1 <= args.cameras <= 8:
        raise UsageError(f"--cameras must be within 1..8 (the synthetic rig's cube corners), got {args.cameras}")
    guard = OutputGuard(force=args.force)
    out = guard.directory(args.out)
    cfg = SynthConfig(size=args.size, frames=args.frames, key_every=args.key_every, cameras=args.cameras)
    started = time.perf_counter()
    if args.layout == "hanco":
        names = generate(out, args.sequences, args.seed, cfg, guard=guard)
        guard.record()
        print(f"wrote {len(names)} sequences x {cfg.frames} frames x {cfg.cameras} cameras to {out} "
              f"({time.perf_counter() - started:.1f} s)")
        return 0
    from .data import HanCo
    from .infer import write_freihand_eval

    with tempfile.TemporaryDirectory() as tmp:
        names = generate(Path(tmp), args.sequences, args.seed, cfg)
        n = write_freihand_eval(out, HanCo(tmp), names, guard)
    guard.record()
    print(f"wrote a FreiHAND evaluation split with {n} frames to {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .train import PretrainConfig, pretrain

    cfg = config_from_args(PretrainConfig, args, {**RUN_FLAGS, "positives": "positives", "backgrounds": "backgrounds_dir"})
    guard = OutputGuard(inputs=[cfg.data, cfg.backgrounds_dir or None, getattr(args, "config", None)], force=args.force)
    _run_outputs(guard, cfg.train.out_dir, cfg.train.resume)
    summary = pretrain(cfg, guard=guard)
    guard.record()
    print(json.dumps(summary, default=str))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .train import FinetuneConfig, finetune

    cfg = config_from_args(FinetuneConfig, args, {**RUN_FLAGS, "init": "init", "labels": "label_fraction", "mano": "mano",
                                                  "backgrounds": "backgrounds_dir"})
    init = None if cfg.init in ("", "random") else cfg.init
    if init and not Path(init).is_file():
        raise CvsuiteError(f"{init}: --init weights file not found")
    guard = OutputGuard(inputs=[cfg.data, init, cfg.mano or None, cfg.backgrounds_dir or None, getattr(args, "config", None)],
                        force=args.force)
    _run_outputs(guard, cfg.train.out_dir, cfg.train.resume)
    summary = finetune(cfg, guard=guard)
    guard.record()
    print(json.dumps(summary, default=str))
    return 0


def load_regressor(weights: str | None, mano: str | None = None):
    """(net, image_size) from ``weights`` or the shipped regressor (+ the user's MANO model)."""
    from shared.weights import shipped_weight

    from .model import KeypointNet

    mano_model = None
    if mano:
        from .mano import load_mano

        mano_model = load_mano(mano)
    path = Path(weights) if weights else shipped_weight(SHIPPED_REGRESSOR)
    net, meta = KeypointNet.from_file(path, mano_model)
    return net, int(meta.get("image_size", 64))


def _image_paths(items: list[str]) -> list[Path]:
    from shared.data.images import is_image_file, list_images

    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise CvsuiteError(f"{p}: no images in this folder")
            paths += found
        elif p.is_file():
            if not is_image_file(p):
                raise CvsuiteError(f"{p}: not an image file (expected .png/.jpg/...)")
            paths.append(p)
        else:
            raise CvsuiteError(f"{p}: no such file or folder")
    stems = [p.stem for p in paths]
    dup = {s for s in stems if stems.count(s) > 1}
    if dup:
        raise UsageError(f"two inputs share the name {sorted(dup)[0]!r}; their outputs would collide")
    return paths


def cmd_infer(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .infer import infer_images

    import sys

    from .infer import parse_box

    box = parse_box(args.box) if args.box else None
    if not 0 <= args.min_confidence <= 1:
        raise UsageError(f"--min-confidence must be within 0..1, got {args.min_confidence}")
    paths = _image_paths(args.images)
    guard = OutputGuard(inputs=[*args.images, args.weights, args.mano], force=args.force)
    guard.add_inputs(*paths)
    out = guard.directory(args.out)
    net, size = load_regressor(args.weights, args.mano)
    records = infer_images(net, size, paths, out, guard, box, args.min_confidence,
                           warn=lambda line: print(line, file=sys.stderr), left=args.left)
    guard.record()
    print(f"{len(records)} images -> {out} (<stem>.json, <stem>_skeleton.png)")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .infer import predict_freihand

    guard = OutputGuard(inputs=[args.data, args.weights, args.mano], force=args.force)
    out = guard.file(args.out)
    net, size = load_regressor(args.weights, args.mano)
    xyz, verts = predict_freihand(net, size, Path(args.data), args.split)
    from shared.guard import write_atomic

    write_atomic(out, json.dumps([xyz, verts]))
    guard.record()
    print(f"{len(xyz)} predictions -> {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .evaluate import (evaluate, format_scores, load_ground_truth, load_prediction, plot_pck, write_json,
                           write_scores_txt)

    guard = OutputGuard(inputs=[args.gt, args.pred], force=args.force)
    out_json = guard.file(args.json) if args.json else None
    out_txt = guard.file(args.txt) if args.txt else None
    plot = args.plot or (str(Path(args.json).with_name(Path(args.json).stem + "_pck.png")) if args.json else None)
    if plot and args.json and os.path.realpath(plot) == os.path.realpath(args.json):
        raise UsageError(f"--plot and --json are the same file {args.json}; give two paths")
    if plot and Path(plot).suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise UsageError(f"--plot {plot}: give a .png, .pdf, .svg or .jpg file")
    out_plot = guard.file(plot) if plot else None
    xyz_gt, verts_gt = load_ground_truth(args.gt, args.split)
    xyz, verts = load_prediction(args.pred, len(xyz_gt))
    scores = evaluate(xyz_gt, verts_gt, xyz, verts)
    print(format_scores(scores))
    if out_json:
        write_json(scores, out_json)
    if out_txt:
        write_scores_txt(scores, out_txt)
    if out_plot:
        plot_pck(scores, out_plot)
    guard.record()
    return 0


def demo(out_dir: Path, force: bool = False) -> dict[str, Any]:
    """Held-out synthetic frames (seed 2026): skeleton overlays from the shipped regressor, PA error,
    and the FreiHAND protocol on a small synthetic evaluation split."""
    import numpy as np

    from shared.data.images import write_image

    from .data import HanCo
    from .evaluate import evaluate, plot_pck
    from .infer import crop_to_input, draw_skeleton, evaluate_hanco, predict, predict_freihand, write_freihand_eval
    from .synth import SynthConfig, generate
    from .train import HanCoImages, left_flags

    from shared.guard import OutputGuard

    started = time.perf_counter()
    out_dir = Path(out_dir)
    guard = OutputGuard(force=force)
    for name in ("skeletons.png", "pck.png", "scores.json"):
        guard.file(out_dir / name)
    net, size = load_regressor(None)
    generate(out_dir / "hanco", 1, seed=2026, cfg=SynthConfig(size=128, frames=4), guard=guard)
    ds = HanCo(out_dir / "hanco")
    images = HanCoImages(ds, ds.sequences, size)
    metrics = evaluate_hanco(net, images)
    crops = images.images[::4].copy()
    left = left_flags(images)[::4] & (net.hands == "right")  # a right-hand estimator sees left hands mirrored
    crops[left] = crops[left][:, :, ::-1]
    uv, _ = predict(net, crops)
    uv[left, :, 0] = (size - 1) / size - uv[left, :, 0]
    tiles = [draw_skeleton(ds.read_image(*s, "rgb_merged"), crop_to_input(u, (0.0, 0.0, 128.0), size))
             for s, u in zip(images.samples[::4], uv)]
    write_image(out_dir / "skeletons.png", np.concatenate([np.concatenate(tiles[i:i + 4], 1)
                                                           for i in range(0, len(tiles) - 3, 4)], 0))
    n = write_freihand_eval(out_dir / "freihand", ds, ds.sequences, guard)
    xyz, verts = predict_freihand(net, size, out_dir / "freihand")
    from .data import FreiHAND

    fh = FreiHAND(out_dir / "freihand")
    scores = evaluate(fh.xyz(), fh.verts(), xyz, verts)
    plot_pck(scores, out_dir / "pck.png")
    from shared.guard import write_atomic

    write_atomic(out_dir / "scores.json", json.dumps(scores, indent=2))
    guard.record()
    return {"images": metrics["images"], "pa_mpjpe_mm": metrics["pa_mpjpe_mm"], "pa_auc": metrics["pa_auc"],
            f"err2d_px_of_{size}": metrics["err2d_px"], "freihand_frames": n, "xyz_mean3d_cm": scores["xyz_mean3d"],
            "xyz_al_mean3d_cm": scores["xyz_al_mean3d"], "xyz_al_auc3d": scores["xyz_al_auc3d"],
            "overlay": str(out_dir / "skeletons.png"), "seconds": time.perf_counter() - started}

