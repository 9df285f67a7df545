"""Points benchmark: few-label part segmentation (scratch vs SCL vs two ablations), unsupervised parts,
DGCNN speed, chunked kNN vs cdist().topk(), and the peak RSS of ``infer`` on a 100k-point cloud.

Sized to run in <= 15 min on a loaded 2-core CPU: the seed sweep uses 256-point clouds and a narrow
DGCNN (k 16, width 16, global 64), 60 pretraining and 40 fine-tuning steps of batch 8, on ONE torch
thread (on a machine whose cores are shared with other jobs, 2 threads spin-wait and ran ~20x
slower). The DGCNN speed case is measured on 2 threads as specified, and on 1 for comparison. Every method
gets the same data, steps and seeds; the label subset of a seed is the same for every method.
Settings were fixed before the run (no tuning on the test split). One JSON line per case, then a
markdown table; everything is also written to ``evaluation/results/bench_points.json``.

    PYTHONPATH=. .venv/bin/python evaluation/bench_points.py [--seeds 0 1 2] [--no-speed] [--quick]

Resumable with ``--rows FILE``: each finished seed is appended to FILE and skipped on the next run (one
seed per call: ``--seeds 0 --rows R``, then ``--seeds 1 --rows R`` ...); the table is rebuilt from
every seed in FILE. The recorded run: ``--rows evaluation/results/bench_points_rows.jsonl --no-speed``.
``--speed-only`` runs the speed / kNN / RSS cases alone and writes them to ``--speed-out``
(``evaluation/results/bench_points_speed.json``).
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

import shared  # noqa: E402,F401  (compat fixes before open3d)
from apps.points.data import read_shapenetpart, shape_features  # noqa: E402
from apps.points.evaluate import evaluate_segmenter, matched_miou  # noqa: E402
from apps.points.model import EncoderConfig, load_model  # noqa: E402
from apps.points.synth import make_shape, write_dataset  # noqa: E402
from apps.points.train import PointsConfig, train  # noqa: E402
from shared.engine import TrainConfig  # noqa: E402
from shared.pointnets import build_dgcnn, knn  # noqa: E402

METHODS = {  # name -> pretraining overrides (None = from scratch)
    "scratch": None,
    # official SCL: Siamese self-similarity, absolute band on the official schedule, dilated positive
    "scl (hard negatives)": {"contrast": "self", "negatives": "hard", "similarity": "siamese",
                             "positive": "dilated"},
    "ablation: random negatives": {"contrast": "self", "negatives": "random", "similarity": "siamese",
                                   "positive": "dilated"},
    "ablation: instance contrast": {"contrast": "instance"},
}
SIAMESE_STEPS = 60   # mode=siamese steps per seed (batch 8, 24 anchors, 20-point patches as the pretraining)
EVENTS: list[dict] = []  # Siamese / pretraining records of the running seed (saved with its rows)
ENCODER = EncoderConfig(k=16, width=16, global_dim=64)


def _cfg(work: Path, name: str, seed: int, steps: int, **fields) -> PointsConfig:
    cfg = PointsConfig(points=256, encoder=ENCODER, num_anchors=24, patch_size=20, num_negatives=16,
                       train=TrainConfig(out_dir=str(work / name), max_steps=steps, batch_size=8, lr=2e-3,
                                         weight_decay=1e-4, warmup_steps=5, log_every=20, ckpt_every=10_000,
                                         seed=seed, progress=False, tensorboard=False))
    for key, value in fields.items():
        setattr(cfg, key, value)
    return cfg


def train_siamese(work: Path, data: dict, seed: int) -> str:
    """SCL step 1 for a seed: the Siamese patch net whose cosine picks the hard negatives."""
    started = time.perf_counter()
    summary = train(_cfg(work, f"siamese_s{seed}", seed, SIAMESE_STEPS, mode="siamese"),
                    data["train"])
    EVENTS.append({"case": "siamese", "seed": seed, "pair_acc": summary["metrics"].get("pair_acc"),
                   "seconds": round(time.perf_counter() - started, 1)})
    print(json.dumps(EVENTS[-1]), flush=True)
    return summary["weights_file"]


def seed_sweep(work: Path, data: dict, seeds: list[int], fractions: list[float], pre_steps: int, ft_steps: int) -> tuple[list[dict], dict]:
    rows, encoders = [], {}
    for seed in seeds:
        siamese = train_siamese(work, data, seed)
        for method, pre in METHODS.items():
            init = ""
            if pre is not None:
                if pre.get("similarity") == "siamese":
                    pre = dict(pre, siamese_weights=siamese)
                tag = f"pre_{method.split()[0]}_{pre.get('negatives', 'x')}_{pre['contrast']}_s{seed}"
                started = time.perf_counter()
                summary = train(_cfg(work, tag, seed, pre_steps, mode="pretrain", **pre), data["train"])
                init = summary["weights_file"]
                encoders[(method, seed)] = init
                EVENTS.append({"case": "pretrain", "method": method, "seed": seed,
                               "seconds": round(time.perf_counter() - started, 1)})
                print(json.dumps(EVENTS[-1]), flush=True)
            for frac in fractions:
                tag = f"ft_{len(rows)}"
                summary = train(_cfg(work, tag, seed, ft_steps, mode="finetune", init=init, label_fraction=frac,
                                     label_seed=seed), data["train"])
                net, _, _ = load_model(summary["weights_file"], want="segmenter")
                result = evaluate_segmenter(net, data["test"])
                encoders[("segmenter", method, seed, frac)] = summary["weights_file"]
                row = {"case": "finetune", "method": method, "seed": seed, "label_fraction": frac,
                       "labelled_shapes": summary["labelled_shapes"],
                       "instance_miou": round(result["instance_miou"], 4), "class_miou": round(result["class_miou"], 4)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows, encoders


def feature_kmeans(encoder: torch.nn.Module, shape, seed: int) -> np.ndarray:
    """k-means (K = the shape's number of gt parts, 4 inits) on L2-normalised per-point encoder features:
    a probe of how well an encoder's features separate parts (the earlier ``--parts``)."""
    from sklearn.cluster import KMeans

    with torch.no_grad():
        feats, _ = encoder(torch.from_numpy(shape_features(shape.points, shape.normals)).unsqueeze(0))
    feats = torch.nn.functional.normalize(feats[0].t(), dim=1).numpy()
    return KMeans(len(np.unique(shape.parts)), n_init=4, random_state=seed).fit_predict(feats)


def parts_bench(data: dict, encoders: dict, seeds: list[int]) -> dict:
    """k-means on each encoder's per-point features vs k-means on xyz; K = the shape's number of gt parts."""
    from sklearn.cluster import KMeans

    from apps.points.model import PointEncoder

    shapes = data["test"]
    out: dict = {}
    out["kmeans on xyz"] = [np.mean([matched_miou(KMeans(len(np.unique(s.parts)), n_init=4, random_state=seed)
                                                  .fit_predict(s.points), s.parts) for s in shapes]) for seed in seeds]
    control = []
    for seed in seeds:
        torch.manual_seed(seed)
        encoder = PointEncoder(ENCODER).eval()
        control.append(np.mean([matched_miou(feature_kmeans(encoder, s, seed), s.parts) for s in shapes]))
    out["k-means on random-init encoder features (control)"] = control
    for method in ("scl (hard negatives)", "ablation: random negatives", "ablation: instance contrast"):
        scores = []
        for seed in seeds:
            encoder, _, _ = load_model(encoders[(method, seed)], want="encoder")
            scores.append(np.mean([matched_miou(feature_kmeans(encoder.eval(), s, seed), s.parts) for s in shapes]))
        out[f"k-means on {method} features"] = scores
    for name, scores in out.items():
        print(json.dumps({"case": "parts", "method": name, "seeds": seeds,
                          "matched_miou": [round(float(v), 4) for v in scores]}), flush=True)
    return out


def _median_time(fn, repeats: int, warmup: bool = True) -> float:
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed_bench(repeats: int) -> list[dict]:
    rows = []
    cases = [("paper size (k 20, width 64, global 1024)", (20, 64, 1024), 2),
             ("paper size (k 20, width 64, global 1024)", (20, 64, 1024), 1),
             ("bench size (k 16, width 16, global 64)", (16, 16, 64), 2)]
    for label, (k, width, glob), threads in cases:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        net = build_dgcnn(6, k, width, glob)
        x = torch.randn(16, 6, 2048)

        def step() -> None:
            net.zero_grad(set_to_none=True)
            feats, g = net(x)
            (feats.mean() + g.mean()).backward()

        paper = width == 64  # tens of seconds per batch here: no warm-up call, at most 2 repeats
        t = _median_time(step, min(repeats, 2) if paper else repeats, warmup=not paper)
        row = {"case": "dgcnn fwd+bwd", "model": label, "batch": 16, "points": 2048, "threads": threads,
               "seconds_per_batch": round(t, 3), "clouds_per_s": round(16 / t, 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    pts = torch.randn(16, 2048, 3, generator=gen)
    ours, plain = [], []
    for _ in range(max(repeats, 5)):  # alternate so load hits both alike
        started = time.perf_counter()
        a = knn(pts, 20)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        b = torch.cdist(pts, pts).topk(20, largest=False).indices
        plain.append(time.perf_counter() - started)
    row = {"case": "knn (16 x 2048 pts, k 20)", "ours_chunked_ms": round(1000 * statistics.median(ours), 1),
           "cdist_topk_ms": round(1000 * statistics.median(plain), 1),
           "ratio_ours_over_cdist": round(statistics.median(ours) / statistics.median(plain), 2),
           "identical": bool(torch.equal(a, b)), "ours_peak_distance_floats": 16 * max(1, (1 << 24) // (16 * 2048)) * 2048,
           "cdist_peak_distance_floats": 16 * 2048 * 2048}
    print(json.dumps(row), flush=True)
    rows.append(row)
    return rows


def rss_bench(work: Path, weights: str) -> dict:
    """Peak RSS of ``cvsuite points infer`` on a 100k-point cloud, in a fresh child process."""
    rng = np.random.default_rng(5)
    pts, nrm, _ = make_shape("Chair", rng, 100_000)
    src = work / "big_chair.xyz"
    np.savetxt(src, np.concatenate([pts, nrm], 1), fmt="%.5f")
    cmd = [sys.executable, "-m", "shared.cli", "points", "infer", str(src), "--out", str(work / "big_out"),
           "--points", "2048", "--max-chunks", "8", "--render", "matplotlib", "--force", "--weights", weights]
    started = time.perf_counter()
    child = (f"import resource, subprocess, sys; r = subprocess.run({cmd!r}, cwd={str(ROOT)!r}, "
             f"env={{'PYTHONPATH': {str(ROOT)!r}, 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'}}); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    res = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    code, rss_kb = res.stdout.split()[-2:]
    labels = np.loadtxt(work / "big_out" / "big_chair_labels.txt", dtype=int) if code == "0" else np.zeros(0)
    row = {"case": "infer 100k-point cloud", "exit": int(code), "peak_rss_gb": round(int(rss_kb) / 2**20, 3),
           "seconds": round(time.perf_counter() - started, 1), "labels": int(len(labels)), "goal_gb": 4.0}
    print(json.dumps(row), flush=True)
    return row


def _ms(values: list[float]) -> str:
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"


def markdown(rows: list[dict], parts: dict, fractions: list[float]) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"seeds {seeds}; mean ± std over seeds (mIoU in %)", "",
             "| pretraining | " + " | ".join(f"{100 * f:g} % labels: inst. / class mIoU" for f in fractions) + " |",
             "|---|" + "---|" * len(fractions)]
    for method in METHODS:
        cells = []
        for frac in fractions:
            sel = [r for r in rows if r["method"] == method and r["label_fraction"] == frac]
            cells.append(f"{_ms([r['instance_miou'] for r in sel])} / {_ms([r['class_miou'] for r in sel])}" if sel else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "| unsupervised parts (held-out test shapes) | Hungarian-matched mIoU |", "|---|---|"]
    lines += [f"| {name} | {_ms(list(v))} |" for name, v in parts.items()]
    return "\n".join(lines)


def speed_markdown(speed: list[dict], rss: dict) -> str:
    lines = ["| speed / memory | value |", "|---|---|"]
    for r in speed:
        if r["case"] == "dgcnn fwd+bwd":
            lines.append(f"| DGCNN fwd+bwd, {r['model']}, batch 16 x 2048 pts, {r['threads']} thread(s) | "
                         f"{r['clouds_per_s']} clouds/s ({r['seconds_per_batch']} s/batch) |")
        else:
            lines.append(f"| {r['case']}: ours (chunked) vs cdist().topk() | {r['ours_chunked_ms']} ms vs "
                         f"{r['cdist_topk_ms']} ms ({r['ratio_ours_over_cdist']}x), identical: {r['identical']} |")
    lines.append(f"| infer, 100k-point cloud (8 chunks of 2048 + NN propagation) | peak RSS {rss['peak_rss_gb']} GB "
                 f"(goal < 4 GB), {rss['seconds']} s |")
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def report(rows_file: Path, out: Path, fractions: list[float]) -> str:
    """The table over every seed recorded in ``rows_file`` (one JSON object per line)."""
    records = read_rows(rows_file)
    rows = [r for r in records if r["case"] == "finetune"]
    parts: dict[str, list[float]] = {}
    for r in sorted((r for r in records if r["case"] == "parts"), key=lambda r: r["seed"]):
        parts.setdefault(r["method"], []).append(r["matched_miou"])
    table = markdown(rows, parts, fractions)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"finetune": rows, "parts": parts, "seeds": sorted({r["seed"] for r in rows}),
                               "runs": [r for r in records if r["case"] in ("run", "siamese", "pretrain")],
                               "markdown": table}, indent=2) + "\n")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--shapes", type=int, default=400)
    parser.add_argument("--pre-steps", type=int, default=60)
    parser.add_argument("--ft-steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-speed", action="store_true", help="skip the DGCNN speed, kNN and infer-RSS cases")
    parser.add_argument("--speed-only", action="store_true",
                        help="only the DGCNN speed, kNN and infer-RSS cases (no seed sweep); written to --speed-out")
    parser.add_argument("--speed-out", default=str(ROOT / "evaluation" / "results" / "bench_points_speed.json"))
    parser.add_argument("--rss-weights", help="segmenter for the RSS run (default: the shipped one)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, few steps")
    parser.add_argument("--rows", help="JSON lines of finished seeds: a seed already there is skipped, each new "
                        "one appended (resumable; the recorded run: evaluation/results/bench_points_rows.jsonl); "
                        "default: a fresh temporary file (measure every seed)")
    parser.add_argument("--out", default=str(ROOT / "evaluation" / "results" / "bench_points.json"))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.pre_steps, args.ft_steps, args.repeats, args.shapes = [0], 3, 3, 1, 100
    scratch_rows = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) if not args.rows else None
    rows_file = Path(args.rows or scratch_rows.name)
    done = {r["seed"] for r in read_rows(rows_file) if r["case"] == "run"}
    todo = [] if args.speed_only else [seed for seed in args.seeds if seed not in done]
    torch.set_num_threads(1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_points_") as tmp:
        work = Path(tmp)
        write_dataset(work / "data", "h5", args.shapes, seed=7, n_points=256)
        data = {s: read_shapenetpart(work / "data", s) for s in ("train", "test")}
        for seed in todo:   # one seed at a time, appended when complete: an interrupted run loses one seed
            seed_started = time.perf_counter()
            rows, encoders = seed_sweep(work, data, [seed], args.fractions, args.pre_steps, args.ft_steps)
            parts = parts_bench(data, encoders, [seed])
            records = EVENTS + rows + [{"case": "parts", "method": name, "seed": seed, "matched_miou": float(v[0])}
                              for name, v in parts.items()]
            records.append({"case": "run", "seed": seed, "minutes": round((time.perf_counter() - seed_started) / 60, 2),
                            "train_shapes": len(data["train"]), "test_shapes": len(data["test"]),
                            "pre_steps": args.pre_steps, "ft_steps": args.ft_steps, "siamese_steps": SIAMESE_STEPS})
            EVENTS.clear()
            if not args.quick:
                rows_file.parent.mkdir(parents=True, exist_ok=True)
                with rows_file.open("a") as fh:
                    fh.writelines(json.dumps(r) + "\n" for r in records)
        if not args.no_speed:
            speed = speed_bench(args.repeats)
            rss = rss_bench(work, args.rss_weights or str(ROOT / "weights" / "points_segmenter_synth.safetensors"))
            print(speed_markdown(speed, rss))
            Path(args.speed_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.speed_out).write_text(json.dumps(
                {"speed": speed, "rss": rss, "torch_threads_note": "2-thread cases set torch.set_num_threads(2)",
                 "markdown": speed_markdown(speed, rss)}, indent=2) + "\n")
    if not args.quick and not args.speed_only:
        print(report(rows_file, Path(args.out), args.fractions))
    if scratch_rows is not None:
        rows_file.unlink(missing_ok=True)
    print(f"\ntotal {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
