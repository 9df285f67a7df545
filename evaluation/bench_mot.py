"""Benchmark of apps.mot: tracking quality per embedding, association speed, embedding throughput.

Quality: held-out synthetic sequences (dataset seed 2 by default; the shipped weights were trained
on seed 1) tracked with the public detections; MOTA/IDF1/HOTA/IDSW (motmetrics + TrackEval) for
the motion-only ablation and each embedding. Speed: tracker association in frames/s at 50
detections per frame with precomputed embeddings on one core (median of repeats), and embedding
throughput in crops/s (crop + network, one thread). One JSON line per case; ``--markdown``
also prints the README table.

    python evaluation/bench_mot.py --runs /tmp/mot_runs --markdown
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.mot.data import MOTSequence, list_sequences  # noqa: E402
from apps.mot.evaluate import evaluate_tables  # noqa: E402
from apps.mot.infer import track  # noqa: E402
from apps.mot.model import Embedder, EmbeddingNet, crop_boxes, normalise_crops  # noqa: E402
from apps.mot.synth import generate_dataset  # noqa: E402
from apps.mot.tracker import Tracker, TrackerConfig  # noqa: E402

METHODS = (("motion-only", None), ("i2i (full labels)", "i2i"), ("i2t full labels", "full"),
           ("i2t 10% labels", "partial10"), ("i2t no labels", "none"))


class CachedEmbedder:
    """Wraps an Embedder, caching embeddings per (sequence, frame) so every method pays once."""

    def __init__(self, embedder: Embedder, seq_name: str, cache: dict) -> None:
        self.embedder, self.dim, self.seq_name, self.cache = embedder, embedder.dim, seq_name, cache
        self.frame = 0

    def __call__(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        key = (self.seq_name, self.frame, len(boxes))
        self.frame += 1
        if key not in self.cache:
            self.cache[key] = self.embedder(frame, boxes)
        return self.cache[key]


def quality(data_root: Path, weights: dict[str, Path | None], cfg_overrides: dict) -> list[dict]:
    seqs = [MOTSequence.open(p) for p in list_sequences(data_root)]
    rows = []
    for label, key in METHODS:
        path = weights.get(key) if key else None
        if key and (path is None or not Path(path).is_file()):
            print(f"# skipping {label}: no weights for {key!r}", file=sys.stderr)
            continue
        embedder = Embedder.from_file(path) if path else None
        cache: dict = {}
        pairs = {}
        for seq in seqs:
            cfg = TrackerConfig(appearance=embedder is not None, **cfg_overrides)
            emb = CachedEmbedder(embedder, seq.name, cache) if embedder else None
            res = track(seq, det=seq.det(), embedder=emb, cfg=cfg)
            pairs[seq.name] = (seq.gt(), res, len(seq))
        m = evaluate_tables(pairs)["overall"]
        rows.append({"case": "quality", "method": label, "weights": str(path) if path else None,
                     "MOTA": round(m["MOTA"], 4), "IDF1": round(m["IDF1"], 4), "HOTA": round(m["HOTA"], 4),
                     "AssA": round(m["AssA"], 4), "IDSW": m["IDSW"], "FP": m["FP"], "FN": m["FN"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _walkers(n_frames: int, n_obj: int, rng: np.random.Generator) -> list[np.ndarray]:
    """50 boxes per frame doing random walks on a 1920x1080 canvas (MOT20-like density)."""
    pos = np.c_[rng.uniform(0, 1800, n_obj), rng.uniform(0, 900, n_obj)]
    vel = rng.normal(0, 3, (n_obj, 2))
    size = np.c_[rng.uniform(30, 60, n_obj), rng.uniform(80, 160, n_obj)]
    frames = []
    for _ in range(n_frames):
        vel += rng.normal(0, 0.3, vel.shape)
        pos = np.clip(pos + vel, 0, [1800, 900])
        frames.append(np.c_[pos + rng.normal(0, 1.5, pos.shape), size])
    return frames


def association_speed(repeats: int, n_frames: int = 300, n_det: int = 50, dim: int = 64) -> list[dict]:
    rng = np.random.default_rng(0)
    boxes = _walkers(n_frames, n_det, rng)
    scores = [np.clip(rng.uniform(0.2, 1.0, n_det), 0, 1) for _ in range(n_frames)]
    base = rng.normal(size=(n_det, dim))
    embs = []
    for _ in range(n_frames):
        e = base + rng.normal(0, 0.3, base.shape)
        embs.append((e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32))
    out = []
    results = {}
    for label, appearance in (("motion-only", False), ("motion+appearance", True)):
        times, cpu_times = [], []
        for _ in range(repeats):
            tracker = Tracker(TrackerConfig(appearance=appearance), embed_dim=dim if appearance else 0)
            start, cpu_start = time.perf_counter(), time.process_time()
            for b, s, e in zip(boxes, scores, embs):
                tracker.update(b, s, e if appearance else None)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        fps = n_frames / statistics.median(times)
        results[label] = fps
        out.append({"case": "association_fps", "mode": label, "dets_per_frame": n_det, "frames": n_frames,
                    "repeats": repeats, "fps": round(fps, 1), "fps_per_cpu_second": round(n_frames / statistics.median(cpu_times), 1),
                    "threads": 1, "target_fps": 1000, "load_avg_1min": round(os.getloadavg()[0], 2)})
    out[1]["ratio_vs_motion_only"] = round(results["motion+appearance"] / results["motion-only"], 3)
    for row in out:
        print(json.dumps(row), flush=True)
    return out


def embedding_speed(repeats: int, weights: Path | None) -> dict:
    torch.set_num_threads(1)
    net = EmbeddingNet(width=16, dim=64) if weights is None else Embedder.from_file(weights).net
    embedder = Embedder(net)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes = np.c_[rng.uniform(0, 280, 50), rng.uniform(0, 150, 50), rng.uniform(15, 40, 50), rng.uniform(40, 90, 50)]
    embedder(frame, boxes)
    times, net_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        embedder(frame, boxes)
        times.append(time.perf_counter() - start)
        crops = normalise_crops(crop_boxes(frame, boxes))
        start = time.perf_counter()
        with torch.no_grad():
            net.eval()(crops)
        net_times.append(time.perf_counter() - start)
    row = {"case": "embedding_throughput", "crops_per_s": round(50 / statistics.median(times), 1),
           "network_only_crops_per_s": round(50 / statistics.median(net_times), 1), "batch": 50,
           "crop": "64x32", "threads": 1, "repeats": repeats}
    print(json.dumps(row), flush=True)
    return row


def markdown(quality_rows: list[dict], speed_rows: list[dict], emb_row: dict) -> str:
    lines = ["| method | MOTA | IDF1 | HOTA | AssA | IDSW |", "|---|---|---|---|---|---|"]
    for r in quality_rows:
        lines.append(f"| {r['method']} | {100 * r['MOTA']:.1f} | {100 * r['IDF1']:.1f} | {100 * r['HOTA']:.1f} | "
                     f"{100 * r['AssA']:.1f} | {r['IDSW']} |")
    lines.append("")
    for r in speed_rows:
        lines.append(f"- association, {r['mode']}: {r['fps']:.0f} frames/s wall, {r['fps_per_cpu_second']:.0f} frames per "
                     f"CPU-second at {r['dets_per_frame']} detections/frame (one core, median of {r['repeats']}, "
                     f"load average {r['load_avg_1min']})")
    lines.append(f"- embedding: {emb_row['crops_per_s']:.0f} crops/s incl. cropping "
                 f"({emb_row['network_only_crops_per_s']:.0f} network only), one thread, 64x32 crops")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="held-out sequences (default: generate dataset --seed with --seqs)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--seqs", type=int, default=10)
    parser.add_argument("--runs", default="/tmp/mot_runs",
                        help="directory with full/, partial10/, none/, i2i/ training runs (model.safetensors)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = Path(args.runs)
    weights: dict[str, Path | None] = {k: runs / k / "model.safetensors" for _, k in METHODS if k}
    shipped = Path(__file__).resolve().parents[1] / "weights"
    for key, name in (("full", "mot_embed_full.safetensors"), ("none", "mot_embed_unlabelled.safetensors")):
        if not weights[key].is_file() and (shipped / name).is_file():
            weights[key] = shipped / name
    q: list[dict] = []
    if not args.skip_quality:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(args.data) if args.data else Path(tmp)
            if not args.data:
                generate_dataset(data, args.seqs, args.seed)
            q = quality(data, weights, {})
    s = association_speed(args.repeats)
    e = embedding_speed(max(args.repeats, 5) * 4, weights.get("full") if weights.get("full") and weights["full"].is_file() else None)
    if args.markdown:
        print(markdown(q, s, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
