"""``cvsuite sr degrade|train|infer|eval`` and the SR part of ``cvsuite demo``."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.cli_utils import add_config_args, add_force_arg, config_from_args
from shared.errors import CvsuiteError, UsageError

SHIPPED = {"crl": "sr_crl_x4", "ablation": "sr_ablation_x4"}
KIND_CHOICES = ("bicubic", "mild", "blind", "spatially-variant")
TILE_RANGE = (16, 4096)  # LR pixels; 0 = whole image
OVERLAP_MAX = 512
COLOUR_LOCK_MAX = 64.0  # HR px (σ of the colour lock's Gaussian)


def check_tiling(tile: int, overlap: int | None) -> None:
    """``--tile``/``--overlap`` bounds (usage errors, exit 2)."""
    if tile != 0 and not TILE_RANGE[0] <= tile <= TILE_RANGE[1]:
        raise UsageError(f"--tile must be 0 (whole image) or between {TILE_RANGE[0]} and {TILE_RANGE[1]} "
                         f"LR pixels, got {tile}")
    if overlap is not None and not 0 <= overlap <= OVERLAP_MAX:
        raise UsageError(f"--overlap must be between 0 and {OVERLAP_MAX} LR pixels, got {overlap}")


def resolve_overlap(model, tile: int, overlap: int | None) -> int:
    """Default overlap = 2 × receptive radius (tiled output = whole-image output); warn below that."""
    radius = int(getattr(model, "receptive_radius", 16))
    if overlap is None:
        return 2 * radius
    if tile > 0 and overlap < 2 * radius:
        import sys

        print(f"cvsuite: warning: --overlap {overlap} is below 2 x the network's receptive radius ({2 * radius}): "
              f"tile borders can show seams (omit --overlap for seam-free output)", file=sys.stderr)
    return overlap


def _load(weights: str | None, scale: int, colour_lock: float | None = None, self_ensemble: bool = False):
    from shared.weights import shipped_weight

    from .model import COLOUR_LOCK_SIGMA, load_model

    if colour_lock is None:
        colour_lock = COLOUR_LOCK_SIGMA
    if not 0 <= colour_lock <= COLOUR_LOCK_MAX:
        raise UsageError(f"--colour-lock must be between 0 (off) and {COLOUR_LOCK_MAX:g} HR pixels, got {colour_lock:g}")

    if weights in (None, "", "crl", "ablation"):
        if scale != 4:
            raise UsageError(f"shipped weights are x4; pass --weights for x{scale}")
        weights = str(shipped_weight(SHIPPED[weights or "crl"]))
    return load_model(weights, scale, colour_lock, self_ensemble)


def cmd_degrade(args: argparse.Namespace) -> int:
    from .data import list_images, load_image, resolve_hr_dirs, write_image
    from .degradations import degrade, image_seed, mod_crop, quantize

    from shared.guard import OutputGuard, atomic_output, write_atomic

    hr_dir = resolve_hr_dirs(args.hr)[0]
    guard = OutputGuard(inputs=[args.hr, hr_dir], force=args.force)
    out = guard.directory(args.out)
    hr_out = out / "HR"
    lr_out = out / f"LR_{args.kind}" / f"X{args.scale}"
    map_dir = out / f"maps_{args.kind}" / f"X{args.scale}"
    files = list_images(hr_dir)
    if not files:
        raise CvsuiteError(f"{hr_dir}: no images")
    by_stem: dict[str, Path] = {}
    for path in files:  # a.png and a.jpg would both write HR/a.png: refuse before any work
        if path.stem in by_stem:
            raise UsageError(f"{by_stem[path.stem]} and {path} would both write {hr_out / (path.stem + '.png')}; "
                             "rename one of them")
        by_stem[path.stem] = path
    for path in files:  # claim every output before any work
        guard.file(hr_out / f"{path.stem}.png")
        guard.file(lr_out / f"{path.stem}x{args.scale}.png")
        if args.maps and args.kind != "bicubic":
            guard.file(map_dir / f"{path.stem}x{args.scale}.npz")
    json_out = guard.file(lr_out / "degradations.json")
    records: dict[str, Any] = {}
    for path in files:
        image = load_image(path)
        hr = mod_crop(image.rgb, args.scale)
        if hr.shape[0] < args.scale or hr.shape[1] < args.scale:
            raise CvsuiteError(f"{path}: {image.rgb.shape[1]}x{image.rgb.shape[0]} is smaller than the scale {args.scale}")
        lr, meta = degrade(hr, args.scale, args.kind, seed=image_seed(args.seed, path.stem))
        write_image(hr_out / f"{path.stem}.png", quantize(hr))
        write_image(lr_out / f"{path.stem}x{args.scale}.png", quantize(lr))
        records[path.stem] = meta["info"]
        if args.maps and meta["maps"]:
            with atomic_output(map_dir / f"{path.stem}x{args.scale}.npz") as tmp:
                np.savez_compressed(tmp, **meta["maps"])
    write_atomic(json_out, json.dumps(
        {"kind": args.kind, "scale": args.scale, "seed": args.seed, "images": records}, indent=2) + "\n")
    guard.record()
    print(f"wrote {len(files)} HR images to {hr_out} and LR images to {lr_out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import SRConfig, run_training

    cfg = config_from_args(SRConfig, args, {"out_dir": "train.out_dir",
                                            "steps": "train.max_steps", "resume": "train.resume",
                                            "init_from": "init_from"})
    if args.no_contrastive:
        cfg.loss.contrastive = False
    if args.hr:
        cfg.data.hr = list(args.hr)
    from shared.guard import OutputGuard

    guard = OutputGuard(inputs=[h for h in cfg.data.hr if not h.startswith(("photo:", "wallpaper:"))]
                        + [cfg.data.lr or None, getattr(args, "config", None), cfg.init_from or None],
                        force=args.force)
    out = guard.directory(cfg.train.out_dir)
    claimed = [out / "sr_model.safetensors"]
    if not cfg.train.resume:  # a resumed run continues its own files
        claimed += [out / "config.yaml", out / "metrics.jsonl", out / "checkpoints" / "last.pt"]
    for path in claimed:
        guard.file(path)
    summary = run_training(cfg, guard=guard)
    guard.record()
    print(f"trained {summary['step']} steps; weights: {summary['weights']}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .infer import run_inference

    from shared.guard import OutputGuard

    check_tiling(args.tile, args.overlap)
    guard = OutputGuard(inputs=[*args.inputs, args.weights if args.weights not in SHIPPED else None],
                        force=args.force)
    model = _load(args.weights, args.scale, args.colour_lock, args.self_ensemble)
    overlap = resolve_overlap(model, args.tile, args.overlap)
    label = "ablation" if args.weights == "ablation" else "CRL-SR"
    return run_inference(model, args.inputs, args.out, args.scale, args.tile, overlap, args.compare,
                         guard=guard, model_label=label, hr=args.hr, progress=True)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import bicubic_upscale, evaluate_pairs, hr_folder_images, pairs_from_degradation, pairs_from_folders, write_json
    from .infer import upscale_rgb

    from shared.guard import OutputGuard

    if bool(args.lr) == bool(args.degradation):
        raise UsageError("give exactly one of --lr DIR or --degradation KIND")
    check_tiling(args.tile, args.overlap)
    guard = OutputGuard(inputs=[args.hr, args.lr, args.weights if args.weights not in SHIPPED else None],
                        force=args.force)
    json_out = guard.file(args.json) if args.json else None
    image_dir = guard.directory(args.save_images) if args.save_images else None
    if args.lr:
        pairs = pairs_from_folders(args.hr, args.lr, args.scale)
    else:
        pairs = pairs_from_degradation(hr_folder_images(args.hr), args.scale, args.degradation, args.seed)
    if image_dir is not None:
        for pair in pairs:  # claim every picture before any work
            guard.file(image_dir / f"{pair.name}.png")
            guard.file(image_dir / f"{pair.name}_compare.png")
    model = _load(args.weights, args.scale, args.colour_lock, args.self_ensemble)
    overlap = resolve_overlap(model, args.tile, args.overlap)
    label = "ablation" if args.weights == "ablation" else "CRL-SR"

    def run_model(lr: np.ndarray) -> np.ndarray:
        return upscale_rgb(model, lr.astype(np.float32) / 255.0, args.scale, args.tile, overlap)

    def save_pictures(pair, outputs: dict[str, np.ndarray]) -> None:
        from .data import write_image
        from .degradations import describe_degradation
        from .infer import ground_truth_panel

        title = f"{pair.name}: " + (describe_degradation(pair.info, args.scale) if pair.info
                                    else f"x{args.scale}, LR from {args.lr}")
        write_image(image_dir / f"{pair.name}.png", outputs["model"])
        picture, _ = ground_truth_panel(outputs["bicubic"], outputs["model"], pair.hr, args.scale, label, title)
        write_image(image_dir / f"{pair.name}_compare.png", picture)

    result = evaluate_pairs(pairs, args.scale, {"bicubic": lambda lr: bicubic_upscale(lr, args.scale),
                                                "model": run_model}, niqe=args.niqe, progress=True,
                            on_outputs=save_pictures if image_dir is not None else None)
    if image_dir is not None:
        guard.record()
    result["weights"] = args.weights or SHIPPED["crl"]
    for row in result["per_image"]:
        print(f"{row['image']:<24} bicubic {row['bicubic_psnr']:.2f} dB / {row['bicubic_ssim']:.4f}   "
              f"model {row['model_psnr']:.2f} dB / {row['model_ssim']:.4f}")
    m = result["mean"]
    print(f"{'mean':<24} bicubic {m['bicubic_psnr']:.2f} dB / {m['bicubic_ssim']:.4f}   "
          f"model {m['model_psnr']:.2f} dB / {m['model_ssim']:.4f}  (Y channel, {args.scale}-px border)")
    if json_out is not None:
        write_json(result, json_out)
        guard.record()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sr", help="blind super-resolution (CRL-SR)")
    sub = parser.add_subparsers(dest="sr_command", metavar="{degrade,train,infer,eval}")

    p = sub.add_parser("degrade", help="write a degraded LR set in the standard layout")
    p.add_argument("--hr", required=True, help="HR folder (or DIV2K/Set5-style root)")
    p.add_argument("--out", required=True, help="output root: OUT/HR, OUT/LR_<kind>/X<scale>")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4), help="downscaling factor (default 4)")
    p.add_argument("--kind", default="blind", choices=KIND_CHOICES, help="degradation pipeline (default blind)")
    p.add_argument("--seed", type=int, default=0, help="degradation seed (per image: hash of seed and file stem)")
    p.add_argument("--maps", action="store_true", help="also write per-pixel kernel/noise maps (.npz)")
    add_force_arg(p)
    p.set_defaults(func=cmd_degrade)

    p = sub.add_parser("train", help="train CRL-SR (or the --no-contrastive ablation)",
                       description="train CRL-SR (or the --no-contrastive ablation); --data/--out as in every app")
    add_config_args(p)
    p.add_argument("--no-contrastive", action="store_true", help="ablation: L1 only, same network")
    p.add_argument("--data", "--hr", dest="hr", nargs="+",
                   help="HR folders (DIV2K/Flickr2K/DF2K layouts or plain), photo:NAME or wallpaper:NAME "
                        "(overrides data.hr; --hr is the old spelling)")
    p.add_argument("--out", "--out-dir", dest="out_dir", help="run folder (= train.out_dir; --out-dir is the old spelling)")
    p.add_argument("--steps", type=int, help="optimizer steps (= train.max_steps)")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoints/last.pt (= train.resume=true)")
    p.add_argument("--init-from", help="stage 2: start the network from these weights (= init_from=)")
    add_force_arg(p)
    p.set_defaults(func=cmd_train)

    tile_help = (f"LR tile size, 0 = whole image, else {TILE_RANGE[0]}..{TILE_RANGE[1]} (default 256; bounds "
                 "the memory of large images)")
    colour_help = (f"sigma (HR px) of the colour lock: the output keeps bicubic's low frequencies above it, so "
                   f"flat colours do not shift; 0 = off, max {COLOUR_LOCK_MAX:g} (default 16)")
    ensemble_help = ("average the outputs for the 8 flips/90-degree rotations of the input (x8 compute; "
                     "the '+' results of EDSR/RCAN)")
    overlap_help = (f"LR context per tile side, 0..{OVERLAP_MAX} (default 2 x the receptive radius: tiled = whole "
                    "image; smaller values warn about seams)")
    p = sub.add_parser("infer", help="upscale images or folders (tiled)")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor; must match the weights (default 4)")
    p.add_argument("--out", required=True, help="output folder (DIR/<stem>.png)")
    p.add_argument("--weights", help="weight file (default: shipped CRL-SR x4; 'ablation' for the ablation)")
    p.add_argument("--tile", type=int, default=256, help=tile_help)
    p.add_argument("--overlap", type=int, help=overlap_help)
    p.add_argument("--compare", action="store_true",
                   help="also write <stem>_compare.png: bicubic | CRL-SR (| ground truth with --hr), captioned")
    p.add_argument("--hr", help="ground truth (file, or folder with <stem>.png for input <stem>[x4].png): scores "
                                "each output (Y-PSNR/SSIM) and adds a ground-truth panel to --compare")
    p.add_argument("--colour-lock", type=float, help=colour_help)
    p.add_argument("--self-ensemble", action="store_true", help=ensemble_help)
    add_force_arg(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("eval", help="PSNR/SSIM (Y, border crop) of the model and bicubic")
    p.add_argument("--hr", required=True, help="HR folder (or Set5-style root with HR/)")
    p.add_argument("--lr", help="LR folder (e.g. Set5/LR_bicubic/X4)")
    p.add_argument("--degradation", choices=KIND_CHOICES, help="degrade --hr on the fly instead of reading --lr")
    p.add_argument("--seed", type=int, default=0, help="degradation seed for --degradation (default 0)")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor; must match the weights (default 4)")
    p.add_argument("--weights", help="weight file (default: shipped CRL-SR x4; 'ablation' for the ablation)")
    p.add_argument("--tile", type=int, default=256, help=tile_help)
    p.add_argument("--overlap", type=int, help=overlap_help)
    p.add_argument("--colour-lock", type=float, help=colour_help)
    p.add_argument("--self-ensemble", action="store_true", help=ensemble_help)
    p.add_argument("--niqe", action="store_true", help="also report NIQE (basicsr)")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--save-images", metavar="DIR",
                   help="write DIR/<name>.png (model output) and DIR/<name>_compare.png (bicubic | model | ground "
                        "truth, captioned with Y-PSNR/SSIM and the degradation)")
    add_force_arg(p)
    p.set_defaults(func=cmd_eval)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def demo(out_dir: Path, force: bool = False) -> dict[str, Any]:
    """x4 SR of a held-out photo (blind degradation) with the shipped weights; bicubic | ours | ground
    truth PNG captioned with Y-PSNR/SSIM and the degradation."""
    from shared.guard import OutputGuard

    from .data import bundled_photo, write_image
    from .degradations import describe_degradation
    from .evaluate import bicubic_upscale, pairs_from_degradation, psnr_y, ssim_y
    from .infer import ground_truth_panel, upscale_rgb

    started = time.perf_counter()
    out_dir = Path(out_dir)
    guard = OutputGuard(force=force)
    guard.directory(out_dir)
    side, low = guard.file(out_dir / "chelsea_x4_bicubic_vs_crlsr.png"), guard.file(out_dir / "chelsea_x4_lr.png")
    model = _load(None, 4)
    pair = pairs_from_degradation([("chelsea", bundled_photo("chelsea"))], 4, "blind", seed=0)[0]
    ours = upscale_rgb(model, pair.lr.astype(np.float32) / 255.0, 4, tile=0)
    bicubic = bicubic_upscale(pair.lr, 4)
    picture, _ = ground_truth_panel(bicubic, ours, pair.hr, 4, "CRL-SR",
                                    "chelsea (held out): " + describe_degradation(pair.info or {}, 4))
    write_image(side, picture)
    write_image(low, pair.lr)
    guard.record()
    return {"image": "chelsea (held out), blind x4",
            "bicubic_psnr_y": psnr_y(bicubic, pair.hr, 4), "crlsr_psnr_y": psnr_y(ours, pair.hr, 4),
            "bicubic_ssim_y": ssim_y(bicubic, pair.hr, 4), "crlsr_ssim_y": ssim_y(ours, pair.hr, 4),
            "seconds": time.perf_counter() - started}
