"""``cvsuite sr degrade|train|infer|eval`` and the SR part of ``cvsuite demo``."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.cli_utils import add_config_args, config_from_args
from shared.errors import CvsuiteError, UsageError

SHIPPED = {"crl": "sr_crl_x4", "ablation": "sr_ablation_x4"}


def _load(weights: str | None, scale: int):
    from shared.weights import shipped_weight

    from .model import load_model

    if weights in (None, "", "crl", "ablation"):
        if scale != 4:
            raise UsageError(f"shipped weights are x4; pass --weights for x{scale}")
        weights = str(shipped_weight(SHIPPED[weights or "crl"]))
    return load_model(weights, scale)


def cmd_degrade(args: argparse.Namespace) -> int:
    from .data import list_images, read_image, resolve_hr_dirs, write_image
    from .degradations import degrade, image_seed, mod_crop, quantize

    hr_dir = resolve_hr_dirs(args.hr)[0]
    out = Path(args.out)
    hr_out = out / "HR"
    lr_out = out / f"LR_{args.kind}" / f"X{args.scale}"
    if hr_out.resolve() == hr_dir.resolve() or lr_out.resolve() == hr_dir.resolve():
        raise UsageError(f"--out {out} would write into the input folder {hr_dir}; choose another --out")
    files = list_images(hr_dir)
    if not files:
        raise CvsuiteError(f"{hr_dir}: no images")
    records: dict[str, Any] = {}
    for path in files:
        image = read_image(path)
        hr = mod_crop(image.rgb, args.scale)
        lr, meta = degrade(hr, args.scale, args.kind, seed=image_seed(args.seed, path.stem))
        write_image(hr_out / f"{path.stem}.png", quantize(hr))
        write_image(lr_out / f"{path.stem}x{args.scale}.png", quantize(lr))
        records[path.stem] = meta["info"]
        if args.maps and meta["maps"]:
            map_dir = out / f"maps_{args.kind}" / f"X{args.scale}"
            map_dir.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(map_dir / f"{path.stem}x{args.scale}.npz", **meta["maps"])
    (lr_out / "degradations.json").write_text(json.dumps(
        {"kind": args.kind, "scale": args.scale, "seed": args.seed, "images": records}, indent=2) + "\n")
    print(f"wrote {len(files)} HR images to {hr_out} and LR images to {lr_out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import SRConfig, run_training

    cfg = config_from_args(SRConfig, args, {"out_dir": "train.out_dir",
                                            "steps": "train.max_steps", "resume": "train.resume"})
    if args.no_contrastive:
        cfg.loss.contrastive = False
    if args.hr:
        cfg.data.hr = list(args.hr)
    summary = run_training(cfg)
    print(f"trained {summary['step']} steps; weights: {summary['weights']}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .infer import run_inference

    model = _load(args.weights, args.scale)
    overlap = args.overlap if args.overlap is not None else 2 * getattr(model, "receptive_radius", 16)
    return run_inference(model, args.inputs, args.out, args.scale, args.tile, overlap, args.compare)


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import bicubic_upscale, evaluate_pairs, hr_folder_images, pairs_from_degradation, pairs_from_folders, write_json
    from .infer import upscale_rgb

    if bool(args.lr) == bool(args.degradation):
        raise UsageError("give exactly one of --lr DIR or --degradation KIND")
    if args.lr:
        pairs = pairs_from_folders(args.hr, args.lr, args.scale)
    else:
        pairs = pairs_from_degradation(hr_folder_images(args.hr), args.scale, args.degradation, args.seed)
    model = _load(args.weights, args.scale)
    overlap = 2 * getattr(model, "receptive_radius", 16)

    def run_model(lr: np.ndarray) -> np.ndarray:
        return upscale_rgb(model, lr.astype(np.float32) / 255.0, args.scale, args.tile, overlap)

    result = evaluate_pairs(pairs, args.scale, {"bicubic": lambda lr: bicubic_upscale(lr, args.scale),
                                                "model": run_model}, niqe=args.niqe)
    result["weights"] = args.weights or SHIPPED["crl"]
    for row in result["per_image"]:
        print(f"{row['image']:<24} bicubic {row['bicubic_psnr']:.2f} dB / {row['bicubic_ssim']:.4f}   "
              f"model {row['model_psnr']:.2f} dB / {row['model_ssim']:.4f}")
    m = result["mean"]
    print(f"{'mean':<24} bicubic {m['bicubic_psnr']:.2f} dB / {m['bicubic_ssim']:.4f}   "
          f"model {m['model_psnr']:.2f} dB / {m['model_ssim']:.4f}  (Y channel, {args.scale}-px border)")
    if args.json:
        write_json(result, args.json)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sr", help="blind super-resolution (CRL-SR)")
    sub = parser.add_subparsers(dest="sr_command", metavar="{degrade,train,infer,eval}")

    p = sub.add_parser("degrade", help="write a degraded LR set in the standard layout")
    p.add_argument("--hr", required=True, help="HR folder (or DIV2K/Set5-style root)")
    p.add_argument("--out", required=True, help="output root: OUT/HR, OUT/LR_<kind>/X<scale>")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    p.add_argument("--kind", default="blind", choices=("bicubic", "blind", "spatially-variant"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--maps", action="store_true", help="also write per-pixel kernel/noise maps (.npz)")
    p.set_defaults(func=cmd_degrade)

    p = sub.add_parser("train", help="train CRL-SR (or the --no-contrastive ablation)")
    add_config_args(p)
    p.add_argument("--no-contrastive", action="store_true", help="ablation: L1 only, same network")
    p.add_argument("--hr", nargs="+", help="HR folders or photo:NAME (overrides data.hr)")
    p.add_argument("--out-dir", help="= train.out_dir")
    p.add_argument("--steps", type=int, help="= train.max_steps")
    p.add_argument("--resume", action="store_true", help="= train.resume=true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="upscale images or folders (tiled)")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--out", required=True, help="output folder (DIR/<stem>.png)")
    p.add_argument("--weights", help="weight file (default: shipped CRL-SR x4; 'ablation' for the ablation)")
    p.add_argument("--tile", type=int, default=256, help="LR tile size (0 = whole image)")
    p.add_argument("--overlap", type=int, help="LR context per tile side (default: 2 x receptive radius)")
    p.add_argument("--compare", action="store_true", help="also write <stem>_compare.png: bicubic | ours")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("eval", help="PSNR/SSIM (Y, border crop) of the model and bicubic")
    p.add_argument("--hr", required=True)
    p.add_argument("--lr", help="LR folder (e.g. Set5/LR_bicubic/X4)")
    p.add_argument("--degradation", choices=("bicubic", "blind", "spatially-variant"),
                   help="degrade --hr on the fly instead of reading --lr")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--weights")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--niqe", action="store_true", help="also report NIQE (basicsr)")
    p.add_argument("--json", help="write the full result here")
    p.set_defaults(func=cmd_eval)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def demo(out_dir: Path) -> dict[str, Any]:
    """x4 SR of a held-out photo (blind degradation) with the shipped weights; bicubic | ours PNG."""
    from .data import bundled_photo, write_image
    from .evaluate import bicubic_upscale, pairs_from_degradation, psnr_y, ssim_y
    from .infer import side_by_side, upscale_rgb

    started = time.perf_counter()
    out_dir = Path(out_dir)
    model = _load(None, 4)
    pair = pairs_from_degradation([("chelsea", bundled_photo("chelsea"))], 4, "blind", seed=0)[0]
    ours = upscale_rgb(model, pair.lr.astype(np.float32) / 255.0, 4, tile=0)
    bicubic = bicubic_upscale(pair.lr, 4)
    write_image(out_dir / "chelsea_x4_bicubic_vs_crlsr.png", side_by_side(bicubic, ours))
    write_image(out_dir / "chelsea_x4_lr.png", pair.lr)
    return {"image": "chelsea (held out), blind x4",
            "bicubic_psnr_y": psnr_y(bicubic, pair.hr, 4), "crlsr_psnr_y": psnr_y(ours, pair.hr, 4),
            "bicubic_ssim_y": ssim_y(bicubic, pair.hr, 4), "crlsr_ssim_y": ssim_y(ours, pair.hr, 4),
            "seconds": time.perf_counter() - started}
