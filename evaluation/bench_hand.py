"""Benchmark of apps.hand: few-label keypoint fine-tuning from four initialisations, and pretraining speed.

Data (all synthetic, HanCo layout, 64 px, 8 cameras): an unlabelled pretraining set (seed 11),
a labelled fine-tuning pool (seed 12, disjoint sequences) and a held-out test set (seed 13).
Initialisations: random; MoCo v2 with positives (a) augmentation only; (a+b) + background swap;
(a+b+c) + background swap + neighbouring camera - same encoder, steps, batch, queue, seed.
Each is fine-tuned on 1 % and 10 % of the pool's labelled images (label subsets drawn by the
fine-tuning seed, identical for every initialisation) for >= 2 seeds; reported on the test set:
PA keypoint error (mm, official FreiHAND similarity alignment) and its AUC over 0-50 mm, mean +- std;
an image-blind reference (the labelled subset's mean pose for every test image) shows what
"learnt nothing from the pixels" scores.
Speed: pretraining images/s (both views count; data + forward/backward + momentum/queue update)
on 2 and 1 threads, median of repeats. Everything runs in one process in about 10-15 min on a
loaded 2-core CPU; one JSON file + (``--markdown``) the README table.

    python -m evaluation.bench_hand --out runs/hand_bench --markdown
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.hand.data import HanCo  # noqa: E402
from apps.hand.infer import evaluate_hanco, evaluate_mean_pose  # noqa: E402
from apps.hand.model import KeypointNet  # noqa: E402
from apps.hand.synth import SynthConfig, generate  # noqa: E402
from apps.hand.train import (FinetuneConfig, HanCoImages, MoCoTask, PretrainConfig, PretrainPairs,  # noqa: E402
                             build_pair_sampler, finetune, labelled_subset, pretrain)
from shared.engine.data import move_to  # noqa: E402

VARIANTS = (("mean pose (no image)", "none"), ("random init", None), ("MoCo (a)", "a"), ("bg-swap (a+b)", "a+b"), ("bg-swap + multi-view (a+b+c)", "a+b+c"))


def make_data(root: Path, sequences: int, frames: int) -> dict[str, Path]:
    cfg = SynthConfig(size=64, frames=frames)
    out = {}
    for name, seed, n in (("pretrain", 11, sequences), ("finetune", 12, sequences), ("test", 13, max(2, sequences // 3))):
        out[name] = root / "data" / name
        if not (out[name] / "meta.json").is_file():
            generate(out[name], n, seed, cfg)
    return out


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def throughput(data: Path, threads: int, batch: int, repeats: int) -> float:
    """Pretraining images/s (2 views per sample) of the a+b+c recipe at ``threads`` threads."""
    torch.set_num_threads(threads)
    cfg = PretrainConfig(data=str(data), positives="a+b+c")
    cfg.train.batch_size = batch
    dataset = PretrainPairs(build_pair_sampler(cfg))
    torch.manual_seed(0)
    task = MoCoTask(cfg)
    opt = torch.optim.AdamW(task.parameters(), lr=1e-3)
    times = []
    for r in range(repeats + 1):
        started = time.perf_counter()
        items = [dataset[(r * batch + i) % len(dataset)] for i in range(batch)]
        b = move_to({k: torch.stack([it[k] for it in items]) for k in items[0]}, torch.device("cpu"))
        out = task(b)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        task.on_step_end(r, out)
        if r:  # the first step warms up
            times.append(time.perf_counter() - started)
    return 2 * batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/hand_bench")
    ap.add_argument("--sequences", type=int, default=12)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--pretrain-steps", type=int, default=250)
    ap.add_argument("--finetune-steps", type=int, default=150)
    ap.add_argument("--fractions", default="0.01,0.1")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--json", default="evaluation/results/bench_hand.json")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.out)
    t0 = time.perf_counter()
    data = make_data(root, args.sequences, args.frames)
    t_data = time.perf_counter() - t0
    encoders: dict[str, str | None] = {}
    pre_log = {}
    for label, positives in VARIANTS:
        if positives in (None, "none"):
            encoders[label] = positives
            continue
        cfg = PretrainConfig(data=str(data["pretrain"]), positives=positives, num_threads=1)
        cfg.train.out_dir = str(fresh(root / f"pre_{positives.replace('+', '')}"))
        cfg.train.max_steps, cfg.train.batch_size, cfg.train.progress = args.pretrain_steps, 32, False
        cfg.train.ckpt_every = args.pretrain_steps
        s = pretrain(cfg)
        encoders[label] = s["weights"]
        pre_log[label] = {"loss": s["metrics"].get("loss"), "pos_cos": s["metrics"].get("pos_cos"), "seconds": s["seconds"]}
        print(json.dumps({"pretrain": label, **pre_log[label]}), flush=True)
    t_pre = time.perf_counter() - t0 - t_data
    ft_ds, test_ds = HanCo(data["finetune"]), HanCo(data["test"])
    ft_images = HanCoImages(ft_ds, ft_ds.sequences, 64)
    test_images = HanCoImages(test_ds, test_ds.sequences, 64)
    rows = []
    for frac in [float(f) for f in args.fractions.split(",")]:
        for label, _ in VARIANTS:
            for seed in [int(s) for s in args.seeds.split(",")]:
                if encoders[label] == "none":  # image-blind reference on the same label subset
                    idx = labelled_subset(len(ft_images.samples), frac, seed)
                    m = evaluate_mean_pose(ft_images, idx, test_images)
                    rows.append({"fraction": frac, "init": label, "seed": seed, "labelled_images": len(idx), **m})
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                cfg = FinetuneConfig(data=str(data["finetune"]), init=encoders[label] or "random",
                                     label_fraction=frac, label_seed=seed, num_threads=1)
                cfg.train.out_dir = str(fresh(root / f"ft_{label.split()[0]}_{frac}_{seed}"))
                cfg.train.max_steps, cfg.train.seed, cfg.train.progress = args.finetune_steps, seed, False
                cfg.train.ckpt_every = args.finetune_steps
                s = finetune(cfg, ft_images)
                net, _ = KeypointNet.from_file(s["weights"])
                m = evaluate_hanco(net, test_images)
                row = {"fraction": frac, "init": label, "seed": seed, "labelled_images": s["labelled_images"], **m}
                rows.append(row)
                print(json.dumps(row), flush=True)
    t_ft = time.perf_counter() - t0 - t_data - t_pre
    speed = {f"{t}_threads": throughput(data["pretrain"], t, 32, 5) for t in (2, 1)}
    torch.set_num_threads(1)
    summary = []
    for frac in sorted({r["fraction"] for r in rows}):
        for label, _ in VARIANTS:
            sel = [r for r in rows if r["fraction"] == frac and r["init"] == label]
            pa, auc = [r["pa_mpjpe_mm"] for r in sel], [r["pa_auc"] for r in sel]
            summary.append({"fraction": frac, "init": label, "labelled_images": sel[0]["labelled_images"],
                            "pa_mm_mean": float(np.mean(pa)), "pa_mm_std": float(np.std(pa, ddof=1)) if len(pa) > 1 else 0.0,
                            "auc_mean": float(np.mean(auc)), "auc_std": float(np.std(auc, ddof=1)) if len(auc) > 1 else 0.0,
                            "err2d_px_mean": float(np.mean([r["err2d_px"] for r in sel])), "seeds": len(sel)})
    total = time.perf_counter() - t0
    result = {"rows": rows, "summary": summary, "pretrain": pre_log, "pretrain_images_per_s": speed,
              "seconds": {"data": t_data, "pretrain": t_pre, "finetune_eval": t_ft, "total": total},
              "setup": {"sequences": args.sequences, "frames": args.frames, "image_size": 64, "cameras": 8,
                        "pretrain_steps": args.pretrain_steps, "finetune_steps": args.finetune_steps, "batch": 32,
                        "backbone": "resnet10_small width 16", "test_images": len(test_images.samples),
                        "pool_images": len(ft_images.samples),
                        "machine": "2-core CPU shared with other jobs (load average ~8)"}}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        print("\n| labels | init | PA-MPJPE (mm) | PA AUC 0-50 mm | 2-D err (px of 64) |")
        print("|---|---|---|---|---|")
        for s in summary:
            print(f"| {100 * s['fraction']:g} % ({s['labelled_images']} img) | {s['init']} | "
                  f"{s['pa_mm_mean']:.2f} ± {s['pa_mm_std']:.2f} | {s['auc_mean']:.3f} ± {s['auc_std']:.3f} | "
                  f"{s['err2d_px_mean']:.2f} |")
        print(f"\npretraining throughput (a+b+c, batch 32, 64 px): {speed['2_threads']:.0f} images/s on 2 threads, "
              f"{speed['1_threads']:.0f} images/s on 1 thread; total {total / 60:.1f} min "
              f"(data {t_data:.0f} s, pretraining {t_pre:.0f} s, fine-tuning+eval {t_ft:.0f} s)")


if __name__ == "__main__":
    main()
