"""SR benchmark: held-out bundled photos × {bicubic, blind, spatially-variant} ×4 degradations.

Reports Y-channel PSNR/SSIM (4-px border, basicsr convention) of bicubic, the no-contrastive
ablation and CRL-SR; inference throughput (output megapixels/s, median of repeats, 2 threads);
and the peak RSS of a 4096×4096 tiled output measured in a fresh subprocess. One JSON line per
case, then a markdown table.

    flock /tmp/cvsuite-train.lock env PYTHONPATH=. .venv/bin/python evaluation/bench_sr.py
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.sr.data import HELDOUT_PHOTOS, bundled_photo, write_image  # noqa: E402
from apps.sr.evaluate import bicubic_upscale, evaluate_pairs, pairs_from_degradation  # noqa: E402
from apps.sr.infer import upscale_rgb  # noqa: E402
from apps.sr.model import load_model  # noqa: E402

RSS_CHILD = r"""
import resource, sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(2)
from apps.sr.model import load_model
from apps.sr.infer import run_inference
model = load_model({weights!r}, 4)
t = time.perf_counter()
code = run_inference(model, [{src!r}], {out!r}, 4, tile={tile}, overlap={overlap}, log=lambda *a: None)
elapsed = time.perf_counter() - t
print(code, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def quality(models: dict[str, torch.nn.Module], kinds: list[str], seeds: list[int]) -> list[dict]:
    photos = [(name, bundled_photo(name)) for name in HELDOUT_PHOTOS]
    rows = []
    for kind in kinds:
        # every held-out photo under several seeded draws of the degradation
        pairs = [p for seed in seeds for p in pairs_from_degradation(photos, 4, kind, seed)]
        upscalers = {"bicubic": lambda lr: bicubic_upscale(lr, 4)}
        for label, model in models.items():
            upscalers[label] = (lambda m: lambda lr: upscale_rgb(m, lr.astype(np.float32) / 255.0, 4, tile=0))(model)
        result = evaluate_pairs(pairs, 4, upscalers)
        row = {"case": f"quality/{kind}", "pairs": result["images"], **{k: round(v, 4) for k, v in result["mean"].items()}}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def throughput(model: torch.nn.Module, repeats: int) -> dict:
    lr = (bundled_photo("astronaut")[:256, :256].astype(np.float32) / 255.0)
    upscale_rgb(model, lr[:64, :64], 4, tile=256, overlap=2 * model.receptive_radius)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        upscale_rgb(model, lr, 4, tile=256, overlap=2 * model.receptive_radius)
        times.append(time.perf_counter() - t)
    mp = (256 * 4) ** 2 / 1e6
    row = {"case": "throughput/1024x1024-output", "threads": torch.get_num_threads(), "median_s": round(statistics.median(times), 3),
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
                                tile=tile, overlap=2 * radius)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rc, elapsed, rss_kb = proc.stdout.split()[-3:]
        out_shape = cv2.imread(str(Path(tmp) / "out" / "lr1024.png")).shape
    row = {"case": "memory/4096x4096-output", "exit": int(rc), "output": f"{out_shape[1]}x{out_shape[0]}",
           "tile": tile, "seconds": round(float(elapsed), 1), "peak_rss_gb": round(int(rss_kb) / 1024 ** 2, 3)}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crl", default=str(ROOT / "weights" / "sr_crl_x4.safetensors"))
    parser.add_argument("--ablation", default=str(ROOT / "weights" / "sr_ablation_x4.safetensors"))
    parser.add_argument("--kinds", nargs="+", default=["bicubic", "blind", "spatially-variant"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    models = {"ablation": load_model(args.ablation, 4), "crlsr": load_model(args.crl, 4)}
    rows = quality(models, args.kinds, args.seeds)
    speed = throughput(models["crlsr"], args.repeats)
    memory = None if args.skip_memory else peak_memory(args.crl, models["crlsr"].receptive_radius, args.tile)
    print("\n| degradation (x4, held-out) | bicubic PSNR/SSIM | ablation PSNR/SSIM | CRL-SR PSNR/SSIM | CRL-SR − bicubic |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case'].split('/')[1]} | {r['bicubic_psnr']:.2f} / {r['bicubic_ssim']:.4f} | "
              f"{r['ablation_psnr']:.2f} / {r['ablation_ssim']:.4f} | {r['crlsr_psnr']:.2f} / {r['crlsr_ssim']:.4f} | "
              f"{r['crlsr_psnr'] - r['bicubic_psnr']:+.2f} dB |")
    print(f"\nthroughput: {speed['output_mp_per_s']} output MP/s ({speed['threads']} threads, tile 256)")
    if memory:
        print(f"4096x4096 tiled output: peak RSS {memory['peak_rss_gb']} GB, {memory['seconds']} s")


if __name__ == "__main__":
    main()
