"""``cvsuite mot synth|train|track|eval`` and the app's demo."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.errors import CvsuiteError, UsageError

SHIPPED_FULL = "mot_embed_full"
SHIPPED_UNLABELLED = "mot_embed_unlabelled"


def register(subparsers: argparse._SubParsersAction) -> None:
    from shared.cli_utils import add_app_parser, add_force_arg, add_run_args

    sub = add_app_parser(subparsers, "mot",
                         help="multi-object tracking with an instance-to-track embedding (Semi-TCL)")

    p = sub.add_parser("synth", help="generate synthetic MOTChallenge sequences (seeded)")
    p.add_argument("--out", required=True, help="output root; sequences go to OUT/SYNssss-kk")
    p.add_argument("--seqs", type=int, default=4, help="number of sequences (default 4)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--length", type=int, default=80, help="frames per sequence (default 80)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--objects", type=int, default=12, help="objects per sequence (default 12)")
    add_force_arg(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="train the appearance embedding (instance-to-track or instance-to-instance)")
    add_run_args(p, data_help="root of training sequences (data=)")
    p.add_argument("--labels", help="full | partial:FRACTION (of frames) | partial-ids:FRACTION | none (labels=)")
    p.add_argument("--objective", choices=("i2t", "i2i"), help="i2t = instance-to-track, i2i = baseline (objective=)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("track", help="track a sequence directory, a folder of frames or a video")
    p.add_argument("--seq", required=True,
                   help="MOTChallenge sequence directory (with seqinfo.ini), a plain folder of frames, or a video file")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of a plain folder of frames (default 30; sequences and videos carry their own)")
    p.add_argument("--out", required=True, help="result file (MOTChallenge rows), e.g. RES/SEQ.txt")
    p.add_argument("--det", help="detections file (default: SEQ/det/det.txt)")
    p.add_argument("--detector",
                   help="detector instead of --det: 'hog' (OpenCV's HOG people detector: offline, no weights, weak) "
                        "or a torchvision detection model name (needs --detector-weights)")
    p.add_argument("--detector-weights", help="local weights file of a torchvision --detector")
    p.add_argument("--hog-upscale", type=float, default=1.5,
                   help="--detector hog: upscale frames by this first (people under ~130 px are missed at 1; default 1.5)")
    p.add_argument("--detector-class", type=int, default=1, help="class id to keep (COCO person = 1)")
    p.add_argument("--weights", help="embedding weights (.safetensors); default: the shipped full-label weights")
    p.add_argument("--no-appearance", action="store_true",
                   help="motion-only (IoU + Kalman): tracks from detections alone, reads no image, no torch")
    p.add_argument("--save-video", help="write frames with ids drawn: OUT.mp4 / OUT.avi, or a directory for .jpg")
    p.add_argument("--device", default="cpu", help="embedding/detector device (default cpu)")
    p.add_argument("--set", nargs="*", default=[], metavar="key=value",
                   help="tracker thresholds, e.g. high_thresh=0.6 max_lost=50")
    add_force_arg(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("eval", help="MOTA/IDF1/HOTA... of RES_ROOT/SEQ.txt against GT_ROOT/SEQ/gt/gt.txt")
    p.add_argument("--gt", required=True, help="ground-truth root (GT_ROOT/SEQ/gt/gt.txt)")
    p.add_argument("--res", required=True, help="results root (RES_ROOT/SEQ.txt)")
    p.add_argument("--json", help="also write the metrics as JSON here")
    p.add_argument("--benchmark", default="auto", choices=("auto", "MOT15", "MOT16", "MOT17", "MOT20"),
                   help="MOTChallenge preprocessing rules (default auto: MOT20 for MOT20-* names, MOT15 for "
                        "ground truth without a class column, else MOT17)")
    add_force_arg(p)
    p.set_defaults(func=cmd_eval)


def cmd_synth(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard, is_own_output

    from .synth import SynthConfig, generate_dataset, sequence_name

    if args.objects < 1:
        raise UsageError("--objects must be >= 1")
    out = Path(args.out)
    guard = OutputGuard(force=args.force)
    guard.directory(out)
    for k in range(max(args.seqs, 0)):
        target = out / sequence_name(args.seed, k)
        if target.exists() and not args.force and not all(
                is_own_output(p) for p in target.rglob("*") if p.is_file() and not p.name.startswith(".cvsuite")):
            raise UsageError(f"output {target} already exists; pass --force to overwrite it")
    cfg = SynthConfig(width=args.width, height=args.height, length=args.length, objects=args.objects)
    seqs = generate_dataset(out, args.seqs, args.seed, cfg, claim=guard.file)
    guard.record()
    for s in seqs:
        print(s)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from shared.cli_utils import RUN_FLAGS, config_from_args
    from shared.guard import OutputGuard

    from .train import MOTTrainConfig, train

    cfg = config_from_args(MOTTrainConfig, args, flag_map={**RUN_FLAGS, "labels": "labels", "objective": "objective"})
    guard = OutputGuard(inputs=[cfg.data, getattr(args, "config", None)], force=args.force)
    out_dir = guard.directory(cfg.train.out_dir)
    guard.file(out_dir / "model.safetensors")  # the run's product; checkpoints are the engine's own
    summary = train(cfg, guard=guard)
    guard.record()
    print(json.dumps(summary, default=str))
    return 0


def tracker_config(appearance: bool, overrides: list[str]):
    from shared.config import load_config

    from .tracker import TrackerConfig

    cfg = load_config(TrackerConfig, None, list(overrides))
    cfg.appearance = appearance and cfg.appearance
    return cfg


def resolve_embedder(weights: str | None, device: str, quiet: bool = False):
    """Embedder from ``weights``, else from the shipped full-label weights; None if neither exists."""
    from .model import Embedder

    if weights:
        return Embedder.from_file(weights, device)
    try:
        from shared.weights import shipped_weight

        return Embedder.from_file(shipped_weight(SHIPPED_FULL), device)
    except CvsuiteError as exc:
        if not quiet:
            print(f"cvsuite mot: no embedding weights ({exc}); tracking without appearance", file=sys.stderr)
        return None


def cmd_track(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .data import MOTSequence, open_source, write_mot_txt
    from .infer import VIDEO_OUT_SUFFIXES, HogDetector, TorchvisionDetector, load_detections, track

    if args.det and args.detector:
        raise UsageError("give either --det or --detector, not both")
    use_hog = args.detector == "hog"
    if args.detector and not use_hog and not args.detector_weights:
        raise UsageError(f"--detector {args.detector} needs --detector-weights PATH (or use --detector hog, no weights)")
    if args.detector_weights and (not args.detector or use_hog):
        raise UsageError("--detector-weights goes with a torchvision --detector NAME")
    if not (0.25 <= args.hog_upscale <= 4.0):
        raise UsageError(f"--hog-upscale must be between 0.25 and 4, got {args.hog_upscale}")
    source = open_source(args.seq, args.fps)
    is_seq = isinstance(source, MOTSequence)
    # every output is checked against every input before any work starts
    guard = OutputGuard(inputs=[args.seq, args.det, args.weights, args.detector_weights], force=args.force)
    if is_seq:
        guard.add_inputs(source.det_path, source.gt_path, source.root / "seqinfo.ini")
    out = guard.file(args.out)
    if args.save_video:
        if Path(args.save_video).suffix.lower() in VIDEO_OUT_SUFFIXES:
            guard.file(args.save_video)
        else:
            guard.directory(args.save_video)
    appearance = not args.no_appearance
    if appearance and is_seq and not source.has_images():
        raise CvsuiteError(f"{source.frame_path(1).parent}: the sequence has no images, which appearance "
                           f"embeddings need; pass --no-appearance to track from the detections alone")
    num_frames = source.info.length if is_seq else None
    det = detector = None
    if use_hog:
        detector = HogDetector(upscale=args.hog_upscale)
    elif args.detector:
        detector = TorchvisionDetector(args.detector, args.detector_weights, args.detector_class, device=args.device)
    else:
        det_path = Path(args.det) if args.det else (source.det_path if is_seq else None)
        if det_path is None:
            raise UsageError("a video or a folder of frames needs --det FILE or --detector hog "
                             "(or a torchvision --detector NAME --detector-weights PATH)")
        if not det_path.is_file():
            raise CvsuiteError(f"{det_path}: detections file not found (give --det or --detector)")
        det = load_detections(det_path, num_frames)
    cfg = tracker_config(appearance, args.set)
    embedder = resolve_embedder(args.weights, args.device) if appearance else None
    if det is not None:
        warn_if_all_filtered(det, cfg, det_path)
    result = track(source, det=det, detector=detector, embedder=embedder, cfg=cfg, save_video=args.save_video,
                   guard=guard, progress=True)
    write_mot_txt(out, result, kind="res")
    guard.record()
    mode = "motion-only" if embedder is None else "motion+appearance"
    print(f"{source.name}: {len(result)} boxes, {len(set(result.ids.tolist()))} tracks ({mode}) -> {out}")
    return 0


def warn_if_all_filtered(det, cfg, path: Path) -> None:
    """One warning line when no detection of the file can reach the tracker (e.g. MOT15 confidences of -1)."""
    if len(det) and not (det.conf >= cfg.low_thresh).any():
        print(f"cvsuite mot: warning: all {len(det)} detections in {path} have confidence "
              f"{det.conf.min():g}..{det.conf.max():g}, below low_thresh={cfg.low_thresh:g}: no track can start; "
              f"set thresholds on this file's confidence scale with --set low_thresh=... high_thresh=... "
              f"new_track_thresh=...",
              file=sys.stderr)
    elif len(det) and not (det.conf >= cfg.new_track_thresh).any():
        print(f"cvsuite mot: warning: all {len(det)} detections in {path} have confidence below "
              f"new_track_thresh={cfg.new_track_thresh:g} (max {det.conf.max():g}): no track can start; "
              f"lower it with --set new_track_thresh=... high_thresh=...", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from shared.guard import OutputGuard

    from .evaluate import evaluate_dirs, format_table, write_json

    guard = OutputGuard(inputs=[args.gt, args.res], force=args.force)
    json_path = guard.file(args.json) if args.json else None
    metrics = evaluate_dirs(args.gt, args.res, args.benchmark)
    print(format_table(metrics))
    if json_path is not None:
        write_json(metrics, json_path)
        guard.record()
    return 0


def doctor() -> dict[str, str]:
    """What ``cvsuite doctor`` reports for this app: the offline detector."""
    import cv2

    hog = hasattr(cv2, "HOGDescriptor") and hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector")
    return {"--detector hog (OpenCV HOG people detector)": "yes" if hog else
            "no: this OpenCV lacks HOGDescriptor (install opencv-contrib-python-headless)"}


def demo(out_dir: Path, force: bool = False) -> dict:
    """Generate one small synthetic sequence, track it with the shipped weights, score it, draw ids."""
    from shared.guard import OutputGuard
    from shared.weights import shipped_weight

    from .data import MOTSequence, write_mot_txt
    from .evaluate import as_reported, evaluate_tables
    from .infer import track
    from .model import Embedder
    from .synth import SynthConfig, write_sequence
    from .tracker import TrackerConfig

    out_dir = Path(out_dir)
    guard = OutputGuard(force=force)
    guard.directory(out_dir)
    for path in (out_dir / "tracks.mp4", out_dir / "results" / "SYN2026-00.txt"):
        guard.file(path)  # before any work
    seq = MOTSequence.open(write_sequence(out_dir / "data", seed=2026, index=0, cfg=SynthConfig(length=60),
                                          claim=guard.file))
    embedder = Embedder.from_file(shipped_weight(SHIPPED_FULL))
    result = track(seq, det=seq.det(), embedder=embedder, cfg=TrackerConfig(),
                   save_video=guard.file(out_dir / "tracks.mp4"))
    write_mot_txt(guard.file(out_dir / "results" / f"{seq.name}.txt"), result)
    guard.record()
    motion = track(seq, det=seq.det(), cfg=TrackerConfig(appearance=False))
    m = evaluate_tables({seq.name: (seq.gt(), result, len(seq))})["overall"]
    m0 = evaluate_tables({seq.name: (seq.gt(), motion, len(seq))})["overall"]
    m, m0 = as_reported(m), as_reported(m0)  # percent, as `mot eval` and the README
    return {"sequence": seq.name, "MOTA_%": m["MOTA"], "IDF1_%": m["IDF1"], "HOTA_%": m["HOTA"], "IDSW": m["IDSW"],
            "motion_only_IDF1_%": m0["IDF1"], "motion_only_IDSW": m0["IDSW"], "video": str(out_dir / "tracks.mp4")}
