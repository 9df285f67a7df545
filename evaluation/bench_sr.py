"""SR benchmark: CRL-SR vs its --no-contrastive ablation vs bicubic, x4, with an honest protocol.

* Photos are split three ways (``apps/sr/data.py``): training, **validation** (astronaut, rocket:
  every tuned choice is scored with ``--split validation``) and **held-out test** (chelsea, coffee,
  camera, grace_hopper: only the final table, ``--split test``).
* Rows: clean MATLAB-bicubic LR; *mild* (Gaussian blur σ 0.8 → 2.2 across the image, bicubic x4,
  Gaussian noise σ 5, JPEG 90 — the point values ``MILD_POINT``); *blind* (Real-ESRGAN first stage);
  *spatially-variant*. Each photo x degradation seeds 0, 1, 2.
* Arms: CRL-SR and the ablation, trained with seeds 0, 1, 2 each (``runs/sr_{crl,ablation}_x4_colour_s{S}``,
  see ``apps/sr/README.md``); for one seed both arms start from the same network and see the same
  patches. Reported: mean ± std over seeds of the mean Y-PSNR/SSIM (4-px border, basicsr), the
  paired CRL − ablation difference per seed, and the worst photo's gain over bicubic.
* NIQE (basicsr) of x4 outputs of the split's photos taken as they are (real LR, no ground truth).
* Throughput (output MP/s, 2 threads, tiled, median of repeats) and peak RSS of a 4096² tiled output
  (fresh subprocess).

    nice -n 5 env PYTHONPATH=. .venv/bin/python evaluation/bench_sr.py --split test

Numbers in the README were measured on a 2-core machine shared with other jobs.
"""
from __future__ import annotations

import argparse
import warnings
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.sr.data import HELDOUT_PHOTOS, VALIDATION_PHOTOS, bundled_photo, write_image  # noqa: E402
from apps.sr.degradations import MILD_POINT, DegradationConfig  # noqa: E402
from apps.sr.evaluate import EvalPair, bicubic_upscale, niqe_y, pairs_from_degradation, psnr_y, ssim_y  # noqa: E402
from apps.sr.infer import upscale_rgb  # noqa: E402
from apps.sr.model import COLOUR_LOCK_SIGMA, count_parameters, load_model  # noqa: E402

K = TypeVar("K")
SPLITS = {"validation": VALIDATION_PHOTOS, "test": HELDOUT_PHOTOS}
ROWS = ("bicubic", "mild", "blind", "spatially-variant")
ARMS = {"crl": "CRL-SR", "ablation": "ablation"}
SCALE = 4
COLOUR_LOCK = COLOUR_LOCK_SIGMA  # --colour-lock (what sr infer/eval use by default)
SELF_ENSEMBLE = False  # --self-ensemble (x8 flips/rotations; sr infer/eval --self-ensemble)

RSS_CHILD = r"""
import resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(2)
from apps.sr.model import load_model
from apps.sr.infer import run_inference
model = load_model({weights!r}, 4, {lock!r})
t = time.perf_counter()
code = run_inference(model, [{src!r}], {out!r}, 4, tile={tile}, overlap={overlap}, log=lambda *a: None)
elapsed = time.perf_counter() - t
print(code, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_pairs(photos: tuple[str, ...], rows: list[str], deg_seeds: list[int]) -> dict[str, list[EvalPair]]:
    """Degraded (LR, HR) pairs per row, shared by every model; ``mild`` uses the fixed point values."""
    images = [(name, bundled_photo(name)) for name in photos]
    mild = replace(DegradationConfig(), **MILD_POINT)
    return {row: [p for seed in deg_seeds
                  for p in pairs_from_degradation(images, SCALE, row, seed, mild if row == "mild" else None)]
            for row in rows}


def score(upscale, pairs: list[EvalPair]) -> dict[str, list]:
    out: dict[str, list] = {"image": [], "psnr": [], "ssim": []}
    for pair in pairs:
        sr = upscale(pair.lr)
        out["image"].append(pair.name)
        out["psnr"].append(psnr_y(sr, pair.hr, SCALE))
        out["ssim"].append(ssim_y(sr, pair.hr, SCALE))
    return out


def model_upscaler(model: torch.nn.Module):
    return lambda lr: upscale_rgb(model, lr.astype(np.float32) / 255.0, SCALE, tile=0)


def photo_gains(model_scores: dict[str, list], base: dict[str, list], metric: str = "psnr") -> dict[str, float]:
    """Per photo: mean over degradation draws of (model − bicubic) PSNR (or SSIM)."""
    gains: dict[str, list[float]] = {}
    for name, m, b in zip(base["image"], model_scores[metric], base[metric]):
        gains.setdefault(name, []).append(m - b)
    return {name: float(np.mean(g)) for name, g in gains.items()}


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def quality(split: str, runs: dict[str, list[Path]], rows: list[str], deg_seeds: list[int]) -> dict:
    pairs = make_pairs(SPLITS[split], rows, deg_seeds)
    bicubic = {row: score(lambda lr: bicubic_upscale(lr, SCALE), pairs[row]) for row in rows}
    results: dict = {"split": split, "photos": list(SPLITS[split]), "degradation_seeds": deg_seeds, "rows": {}}
    per_model: dict[str, dict[str, list[dict]]] = {arm: {row: [] for row in rows} for arm in runs}
    for arm, paths in runs.items():
        for path in paths:
            model = load_model(path, SCALE, COLOUR_LOCK, SELF_ENSEMBLE)
            up = model_upscaler(model)
            for row in rows:
                s = score(up, pairs[row])
                gains = photo_gains(s, bicubic[row])
                ssim_gains = photo_gains(s, bicubic[row], "ssim")
                entry = {"weights": str(path), "psnr": float(np.mean(s["psnr"])), "ssim": float(np.mean(s["ssim"])),
                         "photo_gain": gains, "worst_photo_gain": min(gains.values()),
                         "photo_ssim_gain": ssim_gains, "worst_photo_ssim_gain": min(ssim_gains.values()),
                         "worst_pair_gain": float(np.min(np.subtract(s["psnr"], bicubic[row]["psnr"])))}
                per_model[arm][row].append(entry)
                print(json.dumps({"case": f"quality/{split}/{row}", "arm": arm, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in entry.items() if k not in ("photo_gain", "photo_ssim_gain")}}), flush=True)
    for row in rows:
        r: dict = {"pairs": len(pairs[row]), "bicubic_psnr": float(np.mean(bicubic[row]["psnr"])),
                   "bicubic_ssim": float(np.mean(bicubic[row]["ssim"]))}
        for arm, entries in per_model.items():
            r[arm] = {"psnr_mean_std": mean_std([e["psnr"] for e in entries[row]]),
                      "ssim_mean_std": mean_std([e["ssim"] for e in entries[row]]),
                      "gain_mean_std": mean_std([e["psnr"] - r["bicubic_psnr"] for e in entries[row]]),
                      "worst_photo_gain": min(e["worst_photo_gain"] for e in entries[row]),
                      "worst_photo_gain_per_seed": [e["worst_photo_gain"] for e in entries[row]],
                      "worst_photo_ssim_gain": min(e["worst_photo_ssim_gain"] for e in entries[row]),
                      "photo_gain_seed0": entries[row][0]["photo_gain"],
                      "photo_ssim_gain_seed0": entries[row][0]["photo_ssim_gain"],
                      "photo_gain_per_seed": [e["photo_gain"] for e in entries[row]],
                      "photo_ssim_gain_per_seed": [e["photo_ssim_gain"] for e in entries[row]],
                      "seed0_psnr": entries[row][0]["psnr"], "seed0_ssim": entries[row][0]["ssim"],
                      "seeds": len(entries[row])}
        if "crl" in per_model and "ablation" in per_model:
            diffs = [c["psnr"] - a["psnr"] for c, a in zip(per_model["crl"][row], per_model["ablation"][row])]
            r["crl_minus_ablation_mean_std"] = mean_std(diffs)
            r["crl_minus_ablation_per_seed"] = diffs
        results["rows"][row] = r
    return results


def niqe_real(photos: tuple[str, ...], models: dict[str, torch.nn.Module]) -> dict:
    """NIQE of x4 outputs of the photos taken as they are (no ground truth): lower is better."""
    out: dict[str, dict[str, float]] = {}
    for name in photos:
        lr = bundled_photo(name)
        row = {"bicubic": niqe_y(bicubic_upscale(lr, SCALE), SCALE)}
        for label, model in models.items():
            row[label] = niqe_y(upscale_rgb(model, lr.astype(np.float32) / 255.0, SCALE, tile=256,
                                            overlap=2 * model.receptive_radius), SCALE)
        out[name] = row
        print(json.dumps({"case": f"niqe/{name}", **{k: round(v, 4) for k, v in row.items()}}), flush=True)
    labels = list(next(iter(out.values())))
    return {"per_photo": out, "mean": {k: float(np.mean([r[k] for r in out.values()])) for k in labels}}


def speed_input() -> np.ndarray:
    """The LR input of every SR speed figure: a 256² crop of astronaut, float in [0, 1] (1024² output at x4)."""
    return bundled_photo("astronaut")[:256, :256].astype(np.float32) / 255.0


def upscale_times(models: dict[K, torch.nn.Module], lr: np.ndarray, repeats: int) -> dict[K, list[float]]:
    """Seconds per tiled x4 upscaling of ``lr`` (tile 256, default overlap = 2 × receptive radius) for each
    model, after one warm-up each; with several models the repeats are interleaved so that every model sees
    the same machine load (``evaluation/sr_speed_pair.py``, ``sr_lock_speed.py``)."""
    times: dict[K, list[float]] = {key: [] for key in models}
    for model in models.values():
        upscale_rgb(model, lr[:64, :64], SCALE, tile=256, overlap=2 * model.receptive_radius)
    for _ in range(repeats):
        for key, model in models.items():
            start = time.perf_counter()
            upscale_rgb(model, lr, SCALE, tile=256, overlap=2 * model.receptive_radius)
            times[key].append(time.perf_counter() - start)
    return times


def throughput(model: torch.nn.Module, repeats: int) -> dict:
    times = upscale_times({"model": model}, speed_input(), repeats)["model"]
    mp = (256 * SCALE) ** 2 / 1e6
    row = {"case": "throughput/1024x1024-output", "threads": torch.get_num_threads(),
           "median_s": round(statistics.median(times), 3),
           "output_mp_per_s": round(mp / statistics.median(times), 3), "repeats": repeats}
    print(json.dumps(row), flush=True)
    return row


def peak_memory(weights: str, radius: int, tile: int) -> dict:
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lr1024.png"
        big = cv2.resize(bundled_photo("astronaut"), (1024, 1024), interpolation=cv2.INTER_AREA)
        write_image(src, big)
        code = RSS_CHILD.format(root=str(ROOT), weights=weights, src=str(src), out=str(Path(tmp) / "out"),
                                tile=tile, overlap=2 * radius, lock=COLOUR_LOCK)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rc, elapsed, rss_kb = proc.stdout.split()[-3:]
        out_shape = cv2.imread(str(Path(tmp) / "out" / "lr1024.png")).shape
    row = {"case": "memory/4096x4096-output", "exit": int(rc), "output": f"{out_shape[1]}x{out_shape[0]}",
           "tile": tile, "seconds": round(float(elapsed), 1), "peak_rss_gb": round(int(rss_kb) / 1024 ** 2, 3)}
    print(json.dumps(row), flush=True)
    return row


def fmt(ms: tuple[float, float], digits: int = 2) -> str:
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


def table(results: dict) -> str:
    lines = [f"| degradation (x4, {results['split']}) | bicubic PSNR / SSIM | ablation PSNR / SSIM | CRL-SR PSNR / SSIM "
             "| CRL-SR − bicubic | CRL-SR − ablation | worst photo vs bicubic (CRL-SR / ablation) "
             "| worst photo SSIM vs bicubic (CRL-SR / ablation) |",
             "|---|---|---|---|---|---|---|---|"]
    for row, r in results["rows"].items():
        cells = [row, f"{r['bicubic_psnr']:.2f} / {r['bicubic_ssim']:.4f}"]
        for arm in ("ablation", "crl"):
            cells.append(f"{fmt(r[arm]['psnr_mean_std'])} / {r[arm]['ssim_mean_std'][0]:.4f}" if arm in r else "—")
        cells.append(f"{fmt(r['crl']['gain_mean_std'])} dB" if "crl" in r else "—")
        cells.append(f"{fmt(r['crl_minus_ablation_mean_std'])} dB" if "crl_minus_ablation_mean_std" in r else "—")
        cells.append(" / ".join(f"{r[a]['worst_photo_gain']:+.2f}" for a in ("crl", "ablation") if a in r) + " dB")
        cells.append(" / ".join(f"{r[a]['worst_photo_ssim_gain']:+.4f}" for a in ("crl", "ablation") if a in r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


RECIPES = {
    "2k": {"crl": "cvsuite sr train --config apps/sr/configs/crl_x4.yaml (train.seed=0; uninterrupted; 2000 steps, "
                  "batch 8, 64-px HR patches, 1 CPU thread; scikit-image training photos only, degraded on the fly)",
           "ablation": "cvsuite sr train --config apps/sr/configs/ablation_x4.yaml (train.seed=0; uninterrupted; same "
                       "network, initialisation and patches as CRL-SR, L1 only)"},
    "long": {"crl": "cvsuite sr train --config apps/sr/configs/crl_x4_long.yaml (train.seed=0; uninterrupted; 5000 "
                    "steps, batch 8, 64-px HR patches, 45% clean bicubic, 1 CPU thread; scikit-image training photos "
                    "only, degraded on the fly)",
             "ablation": "cvsuite sr train --config apps/sr/configs/ablation_x4_long.yaml (train.seed=0; uninterrupted; "
                         "same network, initialisation and patches as CRL-SR, L1 only)"},
    "colour": {"crl": "cvsuite sr train --config apps/sr/configs/crl_x4_colour.yaml (train.seed=0; uninterrupted; width "
                      "48, 6 body blocks, 14000 steps, batch 8, 64-px HR patches, 45% clean bicubic, random RGB "
                      "permutation per patch, 1 CPU thread; 12 bundled training photos (scikit-image, scikit-learn) "
                      "only, degraded on the fly)",
               "ablation": "cvsuite sr train --config apps/sr/configs/ablation_x4_colour.yaml (train.seed=0; "
                           "uninterrupted; same network, initialisation and patches as CRL-SR, L1 only)"},
    "photos": {"crl": "python tools/fetch_sr_photos.py && cvsuite sr train --config apps/sr/configs/crl_x4_photos.yaml "
                      "(train.seed=0; uninterrupted; the colour recipe (width 48, 6 body blocks, 14000 steps, batch 8, "
                      "64-px HR patches, 45% clean bicubic, random RGB permutation per patch, 1 CPU thread) on 20 "
                      "training photos: the 12 bundled ones + 8 real photos of Debian plasma-workspace-wallpapers "
                      "4:5.27.5-2 (sha256-pinned), degraded on the fly)",
               "ablation": "python tools/fetch_sr_photos.py && cvsuite sr train --config "
                           "apps/sr/configs/ablation_x4_photos.yaml (train.seed=0; uninterrupted; same network, "
                           "initialisation and patches as CRL-SR, L1 only)"},
}
# The staged recipes, built from one text per stage so that a later stage repeats the earlier ones verbatim.
_STAGE1 = {"crl": "python tools/fetch_sr_photos.py && cvsuite sr train --config apps/sr/configs/crl_x4_photos.yaml "
                  "train.seed=0 --out runs/sr_crl_x4_photos_s0 (stage 1: the photos recipe, 14000 steps of 64-px "
                  "patches, uninterrupted)",
           "ablation": "python tools/fetch_sr_photos.py && cvsuite sr train --config "
                       "apps/sr/configs/ablation_x4_photos.yaml train.seed=0 --out runs/sr_ablation_x4_photos_s0 "
                       "(stage 1, L1 only)"}
_STAGE2 = {arm: f" && cvsuite sr train --config apps/sr/configs/{arm}_x4_stage2.yaml train.seed=0 --init-from "
                f"runs/sr_{arm}_x4_photos_s0/sr_model.safetensors --out runs/sr_{arm}_x4_stage2_s0 (stage 2: "
                + ("3000 steps of 128-px patches, batch 4, lr 2e-4 cosine, L1" if arm == "crl" else "the same stage as CRL-SR's")
           for arm in ("crl", "ablation")}
_STAGE3 = {arm: f" && cvsuite sr train --config apps/sr/configs/{arm}_x4_stage3.yaml train.seed=0 --init-from "
                f"runs/sr_{arm}_x4_stage2_s0/sr_model.safetensors --out runs/sr_{arm}_x4_stage3_mild35_s0 "
                "train.progress=false loss.ssim_weight=0 'data.kind_probs=[0.45,0.35,0.10,0.10]' (stage 3: "
                + ("1500 steps of 128-px patches, batch 4, lr 1e-4 cosine, L1, degradation mix clean/mild/blind/"
                   "spatially-variant 45/35/10/10 %; = evaluation/sr_stage_runs.sh 3 crl 0 _mild35 "
                   "loss.ssim_weight=0 'data.kind_probs=[0.45,0.35,0.10,0.10]'; 1 CPU thread)" if arm == "crl"
                   else "the same stage as CRL-SR's)")
           for arm in ("crl", "ablation")}
RECIPES["stage2"] = {arm: _STAGE1[arm] + _STAGE2[arm] + ("; 1 CPU thread)" if arm == "crl" else ")") for arm in _STAGE1}
RECIPES["stage3"] = {arm: _STAGE1[arm] + _STAGE2[arm] + ")" + _STAGE3[arm] for arm in _STAGE1}


def update_manifest(results: dict, shipped: dict[str, Path], recipe: str) -> None:
    """Manifest entries of the shipped weights with their held-out test metrics (``results`` of the shipped files)."""
    from apps.sr.model import load_model as _load
    from shared.weights import add_manifest_entry

    if results["split"] != "test":
        raise SystemExit("--update-manifest needs --split test")
    for arm, path in shipped.items():
        metrics: dict = {}
        for row, r in results["rows"].items():
            entry = r[arm]
            metrics[f"psnr_y/{row}_x4"] = round(r[arm]["seed0_psnr"], 4)
            metrics[f"ssim_y/{row}_x4"] = round(r[arm]["seed0_ssim"], 4)
            metrics[f"bicubic_psnr_y/{row}_x4"] = round(r["bicubic_psnr"], 4)
            metrics[f"worst_photo_gain_db/{row}_x4"] = round(entry["worst_photo_gain_per_seed"][0], 4)
            metrics[f"worst_photo_ssim_gain/{row}_x4"] = round(entry["worst_photo_ssim_gain"], 4)
        if "niqe" in results:
            metrics["niqe/real_lr_x4"] = round(results["niqe"]["mean"][ARMS[arm]], 4)
            metrics["niqe/real_lr_x4_bicubic"] = round(results["niqe"]["mean"]["bicubic"], 4)
        model = _load(path, SCALE, COLOUR_LOCK)
        add_manifest_entry(f"sr_{arm}_x4", path, RECIPES[recipe][arm], metrics, {
            "app": "sr", "arch": "crlsr", "scale": SCALE, "params": count_parameters(model),
            "eval": "evaluation/bench_sr.py --split test: held-out chelsea/coffee/camera/grace_hopper x degradation "
                    "seeds 0,1,2, Y-PSNR/SSIM, 4-px border (basicsr)",
            "inference": f"colour lock sigma {COLOUR_LOCK:g} HR px (sr infer/eval --colour-lock; "
                         f"{COLOUR_LOCK_SIGMA:g} is their default)"})
        print(f"manifest: sr_{arm}_x4 updated", flush=True)


def find_runs(runs_dir: Path, seeds: list[int], pattern: str, arms: tuple[str, ...] = tuple(ARMS)) -> dict[str, list[Path]]:
    """Seed runs ``runs_dir/<pattern>/sr_model.safetensors`` of ``arms`` (empty when ``seeds`` is empty)."""
    found = {arm: [runs_dir / pattern.format(arm=arm, seed=s) / "sr_model.safetensors" for s in seeds] for arm in arms}
    missing = [str(p) for paths in found.values() for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"missing seed runs: {', '.join(missing)} (see apps/sr/README.md for the commands)")
    return found if seeds else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=tuple(SPLITS), default="test",
                        help="validation (for choices) or held-out test (the README table)")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="folder with sr_{crl,ablation}_x4_s<S> runs")
    parser.add_argument("--run-pattern", default="sr_{arm}_x4_colour_s{seed}",
                        help="seed run folder under --runs (earlier rounds: sr_{arm}_x4_{wide,long}_s{seed}, sr_{arm}_x4_s{seed})")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="training seeds per arm (none: only the shipped weights)")
    parser.add_argument("--arms", nargs="+", choices=tuple(ARMS), default=list(ARMS),
                        help="which arms' seed runs to score (a pilot of one arm: --arms crl --skip-shipped)")
    parser.add_argument("--deg-seeds", type=int, nargs="+", default=[0, 1, 2], help="degradation draws per photo")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--crl", default=str(ROOT / "weights" / "sr_crl_x4.safetensors"))
    parser.add_argument("--ablation", default=str(ROOT / "weights" / "sr_ablation_x4.safetensors"))
    parser.add_argument("--repeats", type=int, default=3, help="throughput repeats (median)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--skip-niqe", action="store_true")
    parser.add_argument("--skip-shipped", action="store_true", help="only the seed table")
    parser.add_argument("--skip-speed", action="store_true", help="skip throughput and the 4096² memory run")
    parser.add_argument("--colour-lock", type=float, default=COLOUR_LOCK_SIGMA,
                        help="colour lock sigma (HR px) for every model; 0 = off (default: the CLI default)")
    parser.add_argument("--self-ensemble", action="store_true",
                        help="quality rows with the x8 flip/rotation ensemble (sr infer/eval --self-ensemble)")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--shipped-recipe", choices=tuple(RECIPES), default="colour",
                        help="which recipe the shipped weights come from (for the manifest)")
    parser.add_argument("--update-manifest", action="store_true",
                        help="(test split) write the shipped seed-0 weights' test metrics into weights/MANIFEST.json")
    args = parser.parse_args()
    global COLOUR_LOCK, SELF_ENSEMBLE
    COLOUR_LOCK, SELF_ENSEMBLE = args.colour_lock, args.self_ensemble
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message="Mean of empty slice")  # inside basicsr's NIQE
    shipped = {"crl": Path(args.crl), "ablation": Path(args.ablation)}
    runs = find_runs(Path(args.runs), args.seeds, args.run_pattern, tuple(args.arms))
    started = time.perf_counter()
    results = quality(args.split, runs, args.rows, args.deg_seeds) if runs else {}
    if args.skip_shipped:
        results["split"] = args.split
        print(f"\nseed runs {args.seeds} per arm (mean ± std over seeds):\n" + table(results))
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        return
    results["shipped_quality"] = quality(args.split, {a: [p] for a, p in shipped.items()}, args.rows, args.deg_seeds)
    shipped_models = {ARMS[a]: load_model(p, SCALE, COLOUR_LOCK) for a, p in shipped.items() if p.is_file()}
    results["colour_lock"] = COLOUR_LOCK
    results["self_ensemble"] = SELF_ENSEMBLE
    results["shipped"] = {a: str(p) for a, p in shipped.items()}
    results["parameters"] = {k: count_parameters(m) for k, m in shipped_models.items()}
    if not args.skip_niqe:
        results["niqe"] = niqe_real(SPLITS[args.split], shipped_models)
    if not args.skip_speed:
        crl = shipped_models["CRL-SR"]
        results["throughput"] = throughput(crl, args.repeats)
        results["memory"] = peak_memory(str(shipped["crl"]), crl.receptive_radius, args.tile)
    results["split"] = args.split
    results["seconds"] = round(time.perf_counter() - started, 1)
    print()
    if "rows" in results:
        print(f"seed runs {args.seeds} per arm (mean ± std over seeds):")
        print(table(results))
    print("\nshipped weights (" + ", ".join(str(p) for p in shipped.values()) + "):")
    print(table(results["shipped_quality"]))
    if "niqe" in results:
        m = results["niqe"]["mean"]
        print(f"\nNIQE (x4 of the {args.split} photos as they are, lower is better): "
              + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))
    if "throughput" in results:
        print(f"throughput: {results['throughput']['output_mp_per_s']} output MP/s "
              f"({results['throughput']['threads']} threads, tile {args.tile}); 4096x4096 tiled output: peak RSS "
              f"{results['memory']['peak_rss_gb']} GB, {results['memory']['seconds']} s")
    if args.update_manifest:
        update_manifest(results["shipped_quality"] | {"niqe": results.get("niqe")} if "niqe" in results
                        else results["shipped_quality"], shipped, args.shipped_recipe)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
