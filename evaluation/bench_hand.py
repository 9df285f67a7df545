"""Benchmark of apps.hand: does the estimator read the hand, and does contrastive pretraining help?

Data (synthetic, HanCo layout, 64 px, 8 cameras, 16 frames, a new random pose every 3 frames):
unlabelled pretraining set (seed 11, 30 sequences), labelled fine-tuning pool (seed 12, 30 sequences),
validation split (seed 14, 4 sequences; used only to choose the estimator) and held-out test set
(seed 13, 8 sequences).

1. **select** (validation only): keypoint heads (heatmap soft-argmax vs pooled MLP regression),
   random init, 10 % labels, one seed; the lower validation PA-MPJPE picks the head used below.
2. **pretrain**: MoCo with positives (a), (a+b), (a+b+c) - same encoder, steps, batch, queue, seed.
3. **finetune**: random init and the three encoders, 1 % and 10 % labels, >= 3 seeds (label subset and
   head init drawn by the seed, identical across initialisations). Test scores: PA-MPJPE (official
   similarity alignment), PA AUC 0-50 mm, 2-D error and PCK@3.2 px (5 % of the side).
   Controls on the same test images and label subsets: the labelled poses' Procrustes mean (aligned
   mean pose), one fixed open-hand pose, and every model's shuffled-image score (prediction of image i
   against the ground truth of another image).
4. **speed**: pretraining images/s (2 views per pair) and ``hand infer`` photos/s (decode + square
   crop + network, model load excluded) on 2 and 1 threads, median of repeats.

Resumable: every finished unit goes to ``OUT/cache.json``; each call works until ``--budget-min`` is
spent, so the whole run is a few <=10-minute calls. When everything is cached the JSON result is written
(and with ``--markdown`` the README table printed).

    python -m evaluation.bench_hand --out runs/hand_bench --budget-min 9      # repeat until "complete"
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
from apps.hand.infer import crop_square, evaluate_controls, evaluate_hanco, predict, read_rgb_u8  # noqa: E402
from apps.hand.model import KeypointNet  # noqa: E402
from apps.hand.synth import SynthConfig, generate  # noqa: E402
from apps.hand.train import (FinetuneConfig, HanCoImages, MoCoTask, PretrainConfig, PretrainPairs,  # noqa: E402
                             build_pair_sampler, finetune, labelled_subset, pretrain)
from shared.engine.data import move_to  # noqa: E402

ENCODERS = (("random init", None), ("MoCo (a)", "a"), ("bg-swap (a+b)", "a+b"), ("bg-swap + multi-view (a+b+c)", "a+b+c"))
SPLITS = (("pretrain", 11, 30), ("finetune", 12, 30), ("val", 14, 4), ("test", 13, 8))
HEADS = ("heatmap", "pooled")


def make_data(root: Path, frames: int) -> dict[str, Path]:
    """The four synthetic splits (= ``cvsuite hand synth --size 64 --frames 16 --seed S --sequences N``)."""
    cfg = SynthConfig(size=64, frames=frames)
    out = {}
    for name, seed, n in SPLITS:
        out[name] = root / "data" / name
        if not (out[name] / "meta.json").is_file():
            generate(out[name], n, seed, cfg)
    return out


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


class Cache:
    """Finished units, one JSON file each under ``OUT/units/`` (so several bench processes can share the
    work: a unit is claimed by creating ``<unit>.lock`` exclusively; a lock whose process is gone is
    taken over)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "units"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str, suffix: str = ".json") -> Path:
        return self.dir / (key.replace("/", "__").replace(" ", "_").replace("+", "p") + suffix)

    @property
    def data(self) -> dict:
        out = {}
        for f in sorted(self.dir.glob("*.json")):
            item = json.loads(f.read_text())
            out[item["key"]] = item["value"]
        return out

    def __contains__(self, key: str) -> bool:
        return self._file(key).is_file()

    def __getitem__(self, key: str):
        return json.loads(self._file(key).read_text())["value"]

    def claim(self, key: str) -> bool:
        """True if this process may compute ``key`` now (not done, not being computed elsewhere)."""
        if key in self:
            return False
        lock = self._file(key, ".lock")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
                return False                     # another live process works on it
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)     # stale: its process is gone
                return self.claim(key)
            except PermissionError:
                return False
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        return True

    def put(self, key: str, value) -> None:
        tmp = self._file(key, ".tmp")
        tmp.write_text(json.dumps({"key": key, "value": value}, indent=1))
        tmp.replace(self._file(key))
        self._file(key, ".lock").unlink(missing_ok=True)
        print(json.dumps({key: value}, default=str)[:400], flush=True)


def pretrain_throughput(data: Path, threads: int, batch: int, repeats: int) -> float:
    """Pretraining images/s (2 views per pair) of the default recipe with a+b+c pairs."""
    torch.set_num_threads(threads)
    cfg = PretrainConfig(data=str(data), positives="a+b+c", queue_size=4096, momentum=0.99)
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


def infer_throughput(weights: str, photos: list[Path], threads: int, repeats: int) -> float:
    """``hand infer`` photos/s: decode, square crop (whole image, padded), one batched forward pass."""
    torch.set_num_threads(threads)
    net, meta = KeypointNet.from_file(weights)
    size = int(meta.get("image_size", 64))
    times = []
    for r in range(repeats + 1):
        started = time.perf_counter()
        crops = [crop_square(read_rgb_u8(p), None, size)[0] for p in photos]
        predict(net, np.stack(crops), with_confidence=True)
        if r:
            times.append(time.perf_counter() - started)
    return len(photos) / statistics.median(times)


def speed_photos(folder: Path) -> list[Path]:
    """32 JPEGs of 4 bundled photos (512x512 to 600x400): what ``hand infer`` reads from disk."""
    from shared.data.images import bundled_photo, write_image

    photos = []
    for name in ("astronaut", "coffee", "chelsea", "camera"):
        img = bundled_photo(name)
        for k in range(8):
            path = folder / f"{name}_{k}.jpg"
            write_image(path, img)
            photos.append(path)
    return photos


def infer_speed_only(weights: str, out: Path, repeats: int = 5) -> dict:
    """``--infer-speed WEIGHTS``: only the ``hand infer`` throughput (2 and 1 threads) of a regressor, with the
    machine's load average, appended to ``evaluation/results/hand_infer_speed.jsonl``."""
    import json
    import os

    photos = speed_photos(out / "photos")
    load_before = os.getloadavg()[0]
    result = {"weights": weights, "photos": f"{len(photos)} JPEGs of 4 bundled photos (512x512 to 600x400)",
              "repeats": repeats, "what": "decode + padded square crop + one batched forward pass (model load excluded)",
              "photos_per_s": {f"{t}_threads": round(infer_throughput(weights, photos, t, repeats), 1) for t in (2, 1)},
              "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cpu_count": os.cpu_count()}
    path = Path("evaluation/results/hand_infer_speed.jsonl")
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return result


def finetune_config(data: Path, head: str, init: str | None, frac: float, seed: int, steps: int, out: Path) -> FinetuneConfig:
    cfg = FinetuneConfig(data=str(data), init=init or "random", label_fraction=frac, label_seed=seed,
                         num_threads=1, head=head)
    cfg.train.out_dir = str(fresh(out))
    cfg.train.max_steps, cfg.train.seed, cfg.train.progress = steps, seed, False
    cfg.train.ckpt_every, cfg.train.lr, cfg.train.scheduler = steps, 2e-3, "cosine"
    return cfg


def summarise(cache: Cache, fractions: list[float], seeds: list[int], head: str) -> list[dict]:
    rows = []

    def stats(vals: list[float]) -> tuple[float, float]:
        return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0

    for frac in fractions:
        ctrl = [cache[f"controls/{frac}/{s}"] for s in seeds]
        for name, key in (("aligned mean pose (no image)", "aligned_mean"), ("fixed open-hand pose (no image)", "fixed_pose")):
            sel = [c[key] for c in ctrl]
            rows.append({"fraction": frac, "init": name, "labelled_images": ctrl[0]["labelled_images"],
                         **{m: stats([r[m] for r in sel]) for m in ("pa_mpjpe_mm", "pa_auc", "err2d_px", "pck2d") if m in sel[0]}})
        for label, _ in ENCODERS:
            sel = [cache[f"ft/{head}/{label}/{frac}/{s}"] for s in seeds]
            rows.append({"fraction": frac, "init": label, "labelled_images": sel[0]["labelled_images"],
                         **{m: stats([r[m] for r in sel]) for m in ("pa_mpjpe_mm", "pa_auc", "err2d_px", "pck2d",
                                                                     "shuffled_pa_mpjpe_mm", "shuffled_err2d_px")}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/hand_bench")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--finetune-steps", type=int, default=600)
    ap.add_argument("--fractions", default="0.01,0.1")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget-min", type=float, default=1e9, help="stop starting new units after this many minutes")
    ap.add_argument("--json", default="evaluation/results/bench_hand.json")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--infer-speed", metavar="WEIGHTS", help="only measure `hand infer` throughput of WEIGHTS, then stop")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.out)
    if args.infer_speed:
        infer_speed_only(args.infer_speed, root)
        return
    t0 = time.perf_counter()
    cache = Cache(root)
    fractions = [float(f) for f in args.fractions.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    data = make_data(root, args.frames)

    def time_left() -> bool:
        return (time.perf_counter() - t0) / 60 < args.budget_min

    images: dict[str, HanCoImages] = {}

    def held(name: str, fg: bool = False) -> HanCoImages:
        key = f"{name}/{fg}"
        if key not in images:
            ds = HanCo(data[name])
            images[key] = HanCoImages(ds, ds.sequences, 64, with_foreground=fg)
        return images[key]

    # 1. estimator choice on the validation split
    for head in HEADS:
        key = f"select/{head}"
        if time_left() and cache.claim(key):
            cfg = finetune_config(data["finetune"], head, None, 0.1, 0, args.finetune_steps, root / f"select_{head}")
            s = finetune(cfg, held("finetune", True))
            net, _ = KeypointNet.from_file(s["weights"])
            cache.put(key, {**evaluate_hanco(net, held("val"), shuffled=True), "seconds": s["seconds"]})
    if not all(f"select/{h}" in cache for h in HEADS):
        print("incomplete: rerun to continue")
        return
    head = min(HEADS, key=lambda h: cache[f"select/{h}"]["pa_mpjpe_mm"])
    # 2.-3. pretraining, controls, fine-tuning: the a+b+c encoder and random init first (the paper's claim),
    # then (a) and (a+b); each unit is cached, so an interrupted run resumes where it stopped
    def pretrain_unit(positives: str) -> None:
        key = f"pretrain/{positives}"
        if not time_left() or not cache.claim(key):
            return
        cfg = PretrainConfig(data=str(data["pretrain"]), positives=positives, num_threads=1,
                             queue_size=4096, momentum=0.99)  # CPU scale (README: official vs ours)
        cfg.train.out_dir = str(fresh(root / f"pre_{positives.replace('+', '')}"))
        cfg.train.max_steps, cfg.train.batch_size, cfg.train.progress = args.pretrain_steps, 32, False
        cfg.train.ckpt_every = args.pretrain_steps
        s = pretrain(cfg)
        cache.put(key, {"weights": s["weights"], "loss": s["metrics"].get("loss"),
                        "pos_cos": s["metrics"].get("pos_cos"), "seconds": s["seconds"]})

    def finetune_unit(label: str, positives: str | None, frac: float, seed: int) -> None:
        key = f"ft/{head}/{label}/{frac}/{seed}"
        if not time_left() or (positives and f"pretrain/{positives}" not in cache) or not cache.claim(key):
            return
        init = cache[f"pretrain/{positives}"]["weights"] if positives else None
        cfg = finetune_config(data["finetune"], head, init, frac, seed, args.finetune_steps,
                              root / f"ft_{label.split()[0]}_{frac}_{seed}")
        s = finetune(cfg, held("finetune", True))
        net, _ = KeypointNet.from_file(s["weights"])
        cache.put(key, {"labelled_images": s["labelled_images"], "seconds": s["seconds"],
                        **evaluate_hanco(net, held("test"), shuffled=True)})

    for frac in fractions:
        for seed in seeds:
            key = f"controls/{frac}/{seed}"
            if time_left() and cache.claim(key):
                idx = labelled_subset(len(held("finetune", True).samples), frac, seed)
                cache.put(key, {"labelled_images": len(idx), **evaluate_controls(held("finetune", True), idx, held("test"),
                                                                                  right_hands=FinetuneConfig().hands == "right")})
    for group in (ENCODERS[::3], ENCODERS[1:3]):          # (random, a+b+c), then (a, a+b)
        for _, positives in group:
            if positives:
                pretrain_unit(positives)
        for seed in seeds:                                # seed 0 of every cell first: a partial run still compares
            for frac in fractions[::-1]:
                for label, positives in group:
                    finetune_unit(label, positives, frac, seed)
    # 4. speed
    if time_left() and f"ft/{head}/random init/{fractions[-1]}/{seeds[0]}" in cache and cache.claim("speed"):
        photos = speed_photos(root / "photos")
        weights = str(root / f"ft_random_{fractions[-1]}_{seeds[0]}" / "model.safetensors")
        cache.put("speed", {"pretrain_images_per_s": {f"{t}_threads": pretrain_throughput(data["pretrain"], t, 32, 5)
                                                      for t in (2, 1)},
                            "infer_photos_per_s": {f"{t}_threads": infer_throughput(weights, photos, t, 5) for t in (2, 1)},
                            "photos": f"{len(photos)} JPEGs of 4 bundled photos (512x512 to 600x400)"})
    torch.set_num_threads(1)
    needed = ([f"pretrain/{p}" for _, p in ENCODERS if p] + ["speed"]
              + [f"controls/{f}/{s}" for f in fractions for s in seeds]
              + [f"ft/{head}/{lab}/{f}/{s}" for lab, _ in ENCODERS for f in fractions for s in seeds])
    missing = [k for k in needed if k not in cache]
    if missing:
        print(f"incomplete ({len(missing)} units left, e.g. {missing[0]}): rerun to continue")
        if args.markdown:  # what is finished so far, one row per unit (no means)
            print("\n| unit | PA-MPJPE (mm) | 2-D err (px of 64) | PCK@3.2 px | shuffled PA-MPJPE | shuffled 2-D |")
            print("|---|---|---|---|---|---|")
            for key, v in sorted(cache.data.items()):
                rows = [(key, v)] if "pa_mpjpe_mm" in v else [(f"{key} {c}", v[c]) for c in ("aligned_mean", "fixed_pose")
                                                             if key.startswith("controls/")]
                for name, r in rows:
                    print(f"| {name} | {r['pa_mpjpe_mm']:.2f} | {r.get('err2d_px', float('nan')):.2f} | "
                          f"{r.get('pck2d', float('nan')):.3f} | {r.get('shuffled_pa_mpjpe_mm', float('nan')):.2f} | "
                          f"{r.get('shuffled_err2d_px', float('nan')):.2f} |")
        return
    rows = summarise(cache, fractions, seeds, head)
    result = {"head": head, "select": {h: cache[f"select/{h}"] for h in HEADS}, "summary": rows,
              "units": cache.data, "setup": {"splits": {n: {"seed": s, "sequences": k} for n, s, k in SPLITS},
                                             "frames": args.frames, "image_size": 64, "cameras": 8,
                                             "pretrain_steps": args.pretrain_steps, "finetune_steps": args.finetune_steps,
                                             "batch": 32, "backbone": "resnet10_small width 16", "seeds": seeds,
                                             "machine": "2-core CPU shared with other jobs, 1 thread"}}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print("complete")
    if args.markdown:
        sel = cache
        print("\n| head (validation, 10 % labels, seed 0) | PA-MPJPE (mm) | 2-D err (px of 64) | shuffled PA-MPJPE |")
        print("|---|---|---|---|")
        for h in HEADS:
            v = sel[f"select/{h}"]
            print(f"| {h} | {v['pa_mpjpe_mm']:.2f} | {v['err2d_px']:.2f} | {v['shuffled_pa_mpjpe_mm']:.2f} |")

        def f(row, m, d=2):
            return f"{row[m][0]:.{d}f} ± {row[m][1]:.{d}f}" if m in row else "–"

        print("\n| labels | init | PA-MPJPE (mm) | PA AUC 0–50 mm | 2-D err (px of 64) | PCK@3.2 px | shuffled PA-MPJPE | shuffled 2-D |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {100 * r['fraction']:g} % ({r['labelled_images']} img) | {r['init']} | {f(r, 'pa_mpjpe_mm')} | "
                  f"{f(r, 'pa_auc', 3)} | {f(r, 'err2d_px')} | {f(r, 'pck2d', 3)} | {f(r, 'shuffled_pa_mpjpe_mm')} | "
                  f"{f(r, 'shuffled_err2d_px')} |")
        sp = cache["speed"]
        print(f"\npretraining: {sp['pretrain_images_per_s']['2_threads']:.0f} images/s on 2 threads, "
              f"{sp['pretrain_images_per_s']['1_threads']:.0f} on 1; infer: {sp['infer_photos_per_s']['2_threads']:.1f} "
              f"photos/s on 2 threads, {sp['infer_photos_per_s']['1_threads']:.1f} on 1")


if __name__ == "__main__":
    main()
