"""SCRL benchmark: detection AP after the same fine-tuning budget from random init, image-level BYOL
and SCRL pretraining (>= 2 seeds, mean +- std), and SCRL vs BYOL pretraining throughput.

Data (same for every seed): unlabelled pretraining scenes (``cvsuite scrl synth`` seed 1000), a
labelled fine-tuning set (seed 1001) and held-out test scenes (seed 1002), 96 px. Per seed s:
pretrain BYOL and SCRL with ``train.seed=s`` (configs ``apps/scrl/configs/pretrain_{byol,scrl}.yaml``),
fine-tune Faster R-CNN FPN from random / BYOL / SCRL with ``train.seed=s``
(``finetune_synth.yaml``), score the held-out scenes with pycocotools' COCOeval. Hyper-parameters are
fixed in the configs (no tuning on the test scenes). Finished runs are reused (resumable).

Throughput: images/s of one pretraining step (forward, backward, optimiser, EMA; views made
beforehand) for SCRL and BYOL in the same process, median of ``--repeats``, at ``--threads``.

    python -m evaluation.bench_scrl --markdown            # ~15 min on a loaded 2-core machine
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from shared.config import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "apps" / "scrl" / "configs"
INITS = ("random", "byol", "scrl")


def make_data(root: Path, sizes: dict[str, int], pretrain_side: int = 96) -> dict[str, Path]:
    """Scenes at 96 px; the unlabelled pretraining scenes at ``pretrain_side`` (objects scaled with it) so
    that larger views crop real pixels instead of up-sampled ones."""
    from apps.scrl.synth import SceneConfig, generate

    paths = {}
    for offset, (name, count) in enumerate(sizes.items()):
        side = pretrain_side if name == "pretrain" else 96
        scene = SceneConfig(size=side, min_object=10 * side // 96, max_object=34 * side // 96)
        folder = root / (name if side == 96 else f"{name}_{side}")
        json_path = folder / "annotations.json"
        if not json_path.is_file():
            generate(folder, count, seed=1000 + offset, cfg=scene)
        paths[name] = json_path
    return paths


def view_overrides(view_size: int | None) -> list[str]:
    """``--view-size S``: views of S px (the last feature map is S/32 wide), min box scaled with them."""
    if not view_size:
        return []
    return [f"views.size={view_size}", f"views.min_box={max(8, view_size // 4)}", f"max_side={max(96, view_size)}"]


def pretrain(method: str, seed: int, data: Path, out: Path, steps: int | None, view_size: int | None = None) -> Path:
    from apps.scrl.train import PretrainConfig, run_pretraining

    encoder = out / "encoder.safetensors"
    if encoder.is_file():
        return encoder
    overrides = [f"data={data}", f"train.out_dir={out}", f"train.seed={seed}", "train.progress=false",
                 *view_overrides(view_size)]
    if steps:
        overrides.append(f"train.max_steps={steps}")
    cfg = load_config(PretrainConfig, CONFIGS / f"pretrain_{method}.yaml", overrides)
    if (out / "checkpoints" / "last.pt").is_file():
        cfg.train.resume = True
    run_pretraining(cfg)
    return encoder


def finetune(init: str, seed: int, data: dict[str, Path], weights: Path | None, out: Path,
             steps: int | None) -> dict[str, float]:
    from apps.scrl.train import FinetuneConfig, run_finetune

    metrics_path = out / "metrics.json"
    if metrics_path.is_file():
        return json.loads(metrics_path.read_text())
    overrides = [f"data={data['train']}", f"val={data['test']}", f"train.out_dir={out}", f"train.seed={seed}",
                 "train.progress=false"]
    if weights is not None:
        overrides.append(f"weights={weights}")
    if steps:
        overrides.append(f"train.max_steps={steps}")
    cfg = load_config(FinetuneConfig, CONFIGS / "finetune_synth.yaml", overrides)
    if (out / "checkpoints" / "last.pt").is_file():
        cfg.train.resume = True
    return run_finetune(cfg)["eval"]


def throughput(data: Path, repeats: int, batch: int, view_size: int | None = None) -> dict[str, float]:
    """Images/s of SCRL and BYOL training steps on identical pre-made view batches."""
    from apps.scrl.train import PairDataset, PretrainConfig, build_pretrain_task, collate_pairs
    from apps.scrl.data import unlabelled_images

    cfg = load_config(PretrainConfig, CONFIGS / "pretrain_scrl.yaml", view_overrides(view_size))
    dataset = PairDataset(unlabelled_images(data)[:batch], cfg.views, cfg.max_side)
    torch.manual_seed(0)
    batch_data = collate_pairs([dataset[i] for i in range(batch)])
    tasks = {}
    for method in ("byol", "scrl"):
        cfg_m = load_config(PretrainConfig, CONFIGS / f"pretrain_{method}.yaml", view_overrides(view_size))
        task = build_pretrain_task(cfg_m)
        tasks[method] = (task, torch.optim.AdamW([p for g in task.param_groups() for p in g["params"]], lr=1e-3))
    times: dict[str, list[float]] = {m: [] for m in tasks}
    for r in range(repeats + 1):  # interleaved, first round is warm-up
        for method, (task, opt) in tasks.items():
            start = time.perf_counter()
            loss = task(batch_data)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            task.on_step_end(r, {})
            if r:
                times[method].append(time.perf_counter() - start)
    out = {f"{m}_images_per_s": batch / statistics.median(t) for m, t in times.items()}
    out["scrl_over_byol"] = out["scrl_images_per_s"] / out["byol_images_per_s"]
    out["boxes_per_image"] = float(np.mean([len(b) for b in batch_data["boxes0"]]))
    return out


def summarise(results: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    table = {}
    for init, runs in results.items():
        row = {}
        for key in ("AP", "AP50", "AP75"):
            values = [100 * r[key] for r in runs]
            row[key] = statistics.mean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["seeds"] = len(runs)
        table[init] = row
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/scrl_bench")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="thread counts of the throughput measurement")
    parser.add_argument("--train-threads", type=int, default=1,
                        help="threads of the training runs (1: on a loaded 2-core machine 2 threads are slower)")
    parser.add_argument("--pretrain-images", type=int, default=256)
    parser.add_argument("--train-images", type=int, default=64)
    parser.add_argument("--test-images", type=int, default=48)
    parser.add_argument("--pretrain-steps", type=int, help="override the configs' train.max_steps")
    parser.add_argument("--finetune-steps", type=int, help="override the configs' train.max_steps")
    parser.add_argument("--tag", default="", help="suffix of the fine-tuning run folders and results file "
                        "(e.g. a longer --finetune-steps budget reusing the same pretraining runs)")
    parser.add_argument("--repeats", type=int, default=7, help="throughput repeats (median)")
    parser.add_argument("--view-size", type=int, help="pretraining view side (default: the configs' 64 px; "
                        "160 gives a 5x5 last feature map); pretraining runs go to *_v<S> folders")
    parser.add_argument("--throughput-only", action="store_true", help="only the SCRL vs BYOL throughput")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.train_threads)
    started = time.perf_counter()
    root = Path(args.out)
    data = make_data(root / "data", {"pretrain": args.pretrain_images, "train": args.train_images,
                                     "test": args.test_images}, pretrain_side=max(96, args.view_size or 96))
    if args.throughput_only:
        for threads in args.threads:
            torch.set_num_threads(threads)
            sp = throughput(data["pretrain"], args.repeats, batch=32, view_size=args.view_size)
            print(f"pretraining throughput ({threads} threads, {args.view_size or 64} px views, batch 32, median of "
                  f"{args.repeats}): BYOL {sp['byol_images_per_s']:.1f} img/s, SCRL {sp['scrl_images_per_s']:.1f} img/s "
                  f"(SCRL/BYOL {sp['scrl_over_byol']:.2f}, {sp['boxes_per_image']:.1f} boxes/image)")
        return 0
    results: dict[str, list[dict[str, float]]] = {init: [] for init in INITS}
    suffix = f"_v{args.view_size}" if args.view_size else ""
    for seed in args.seeds:
        encoders = {m: pretrain(m, seed, data["pretrain"], root / f"pretrain_{m}_s{seed}{suffix}", args.pretrain_steps,
                                args.view_size) for m in ("byol", "scrl")}
        for init in INITS:
            metrics = finetune(init, seed, data, encoders.get(init), root / f"finetune_{init}_s{seed}{suffix}{args.tag}",
                               args.finetune_steps)
            results[init].append(metrics)
            print(f"seed {seed} {init:<6} AP {100 * metrics['AP']:.2f} AP50 {100 * metrics['AP50']:.2f} "
                  f"AP75 {100 * metrics['AP75']:.2f}  ({time.perf_counter() - started:.0f} s)", flush=True)
    speed = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        speed[threads] = throughput(data["pretrain"], args.repeats, batch=32, view_size=args.view_size)
    table = summarise(results)
    report = {"table": table, "throughput": speed, "seeds": args.seeds, "train_threads": args.train_threads,
              "wall_s": time.perf_counter() - started, "raw": results}
    report["view_size"] = args.view_size or 64
    (root / f"results{suffix}{args.tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.markdown:
        print(f"\nfine-tuning: {args.finetune_steps or 'config'} steps; pretraining: {args.pretrain_steps or 'config'} steps")
        print("\n| init | box AP | AP50 | AP75 |\n|---|---|---|---|")
        for init in INITS:
            r = table[init]
            print(f"| {init} | {r['AP']:.2f} ± {r['AP_std']:.2f} | {r['AP50']:.2f} ± {r['AP50_std']:.2f} | "
                  f"{r['AP75']:.2f} ± {r['AP75_std']:.2f} |")
        for threads, sp in speed.items():
            print(f"pretraining throughput ({threads} threads, batch 32, median of {args.repeats}): "
                  f"BYOL {sp['byol_images_per_s']:.1f} img/s, SCRL {sp['scrl_images_per_s']:.1f} img/s "
                  f"(SCRL/BYOL {sp['scrl_over_byol']:.2f}, {sp['boxes_per_image']:.1f} boxes/image)")
    print(f"wall time {report['wall_s']:.0f} s -> {root / f'results{suffix}{args.tag}.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
