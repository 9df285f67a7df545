"""Speed and memory of ``cvsuite points infer`` on a 100k-point cloud, and KD-tree vs brute-force
nearest-neighbour label propagation (the peer it replaced) in the same process.

* propagation: 16,384 labelled points (8 chunks of 2048) -> 83,616 others; scipy cKDTree vs the
  chunked brute-force kNN of ``shared.pointnets.knn``; warm-up, then the median of 3, alternating;
  the two must give identical labels.
* end to end: a fresh ``python -m shared.cli points infer`` process (shipped segmenter, 1 torch
  thread, default --points 2048 / --max-chunks 8, matplotlib PNG) on a 100k-point ``.xyz`` (a
  synthetic chair, no normals in the file: open3d estimates them); wall time and the child's peak RSS.

    PYTHONPATH=. .venv/bin/python evaluation/bench_points_infer.py
"""
from __future__ import annotations

import json
import os
import resource
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
from apps.points.infer import nearest_index  # noqa: E402
from apps.points.synth import make_shape  # noqa: E402
from shared.pointnets import knn  # noqa: E402


def brute_nearest(source: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The previous propagation: chunked brute-force kNN (k = 1)."""
    return knn(torch.from_numpy(source), 1, query=torch.from_numpy(query))[:, 0].numpy()


def propagation_case(n_total: int = 100_000, n_covered: int = 16_384) -> dict:
    pts, _, _ = make_shape("Chair", np.random.default_rng(0), n_total)
    covered = np.zeros(n_total, bool)
    covered[np.random.default_rng(1).choice(n_total, n_covered, replace=False)] = True
    src, qry = pts[covered], pts[~covered]
    nearest_index(src, qry), brute_nearest(src, qry)  # warm-up
    times: dict[str, list[float]] = {"kdtree": [], "brute": []}
    for _ in range(3):
        for name, fn in (("kdtree", nearest_index), ("brute", brute_nearest)):
            start = time.perf_counter()
            idx = fn(src, qry)
            times[name].append(time.perf_counter() - start)
            if name == "kdtree":
                tree_idx = idx
            else:
                brute_idx = idx
    # ties (equal distances) may pick different points; compare distances, not indices
    d_tree = ((qry - src[tree_idx]) ** 2).sum(1)
    d_brute = ((qry - src[brute_idx]) ** 2).sum(1)
    return {"case": "propagation 16,384 -> 83,616 points", "kdtree_s": statistics.median(times["kdtree"]),
            "brute_s": statistics.median(times["brute"]),
            "speedup": statistics.median(times["brute"]) / statistics.median(times["kdtree"]),
            "same_nearest_distance": bool(np.allclose(d_tree, d_brute, atol=1e-6)),
            "same_index_fraction": float((tree_idx == brute_idx).mean())}


def infer_case(work: Path, n_total: int = 100_000) -> dict:
    pts, _, _ = make_shape("Chair", np.random.default_rng(2), n_total)
    cloud = work / "chair100k.xyz"
    np.savetxt(cloud, pts, fmt="%.6f")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "shared.cli", "points", "infer", str(cloud), "--out", str(work / "out"),
                          "--render", "matplotlib"], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    labels = np.loadtxt(work / "out" / "chair100k_labels.txt", dtype=int)
    return {"case": "infer 100k-point .xyz, fresh process, 1 thread", "wall_s": wall, "peak_rss_gb": peak_kb / 1e6,
            "labels": int(len(labels)), "stdout": res.stdout.strip()[-300:]}


def main() -> None:
    torch.set_num_threads(1)
    rows = [propagation_case()]
    print(json.dumps(rows[-1]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(infer_case(Path(tmp)))
    print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "evaluation" / "results" / "bench_points_infer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
