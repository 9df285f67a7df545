"""Inference on users' clouds and meshes: part labels in input order, unsupervised parts, outputs.

A cloud with more than ``n_points`` points is split into random disjoint chunks of ``n_points``
(the last one topped up with random points); the network runs on up to ``max_chunks`` chunks and
every point left over takes the label of its nearest labelled point (chunked kNN, k = 1). Labels are
written in the input's point order. A mesh is surface-sampled (``n_points`` points).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shared.errors import CvsuiteError, UsageError
from shared.guard import atomic_output, write_atomic

from .data import CATEGORIES, CATEGORY_INDEX, LoadedCloud, normalize_cloud, shape_features

_RENDER_BACKEND: str | None = None


def chunk_indices(n_total: int, n_points: int, max_chunks: int, seed: int = 0) -> list[np.ndarray]:
    """Random disjoint chunks of ``n_points`` covering the cloud (at most ``max_chunks`` of them)."""
    if n_total <= n_points:
        return [np.arange(n_total)]
    order = np.random.default_rng(seed).permutation(n_total)
    chunks = [order[i:i + n_points] for i in range(0, n_total, n_points)][:max_chunks]
    if len(chunks[-1]) < n_points:
        fill = np.random.default_rng(seed + 1).choice(n_total, n_points - len(chunks[-1]), replace=False)
        chunks[-1] = np.concatenate([chunks[-1], fill])
    return chunks


def propagate(points: np.ndarray, covered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values for every point: its own where ``covered``, else its nearest covered point's (a KD-tree:
    O(n log n), so a cloud of millions of points takes seconds, not the hours of a brute-force kNN)."""
    out_shape = (len(points),) + values.shape[1:]
    out = np.empty(out_shape, values.dtype)
    out[covered] = values[covered]
    missing = np.flatnonzero(~covered)
    if len(missing):
        src = np.flatnonzero(covered)
        from scipy.spatial import cKDTree

        _, nearest = cKDTree(points[src]).query(points[missing], k=1)
        out[missing] = values[src[nearest]]
    return out


@torch.no_grad()
def run_chunks(fn: Callable[[torch.Tensor], np.ndarray], points: np.ndarray, normals: np.ndarray,
               n_points: int, max_chunks: int, seed: int = 0, fill: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn`` ((1, 6, n) -> (n, ...) per-point outputs) chunk-wise.

    Returns (values for every point in input order, covered mask); with ``fill`` the points outside
    the chunks take their nearest covered point's values, else they stay zero.
    """
    pts, _, _ = normalize_cloud(points)
    values: np.ndarray | None = None
    covered = np.zeros(len(pts), bool)
    for idx in chunk_indices(len(pts), n_points, max_chunks, seed):
        x = torch.from_numpy(shape_features(pts[idx], normals[idx])).unsqueeze(0)
        result = fn(x)
        if values is None:
            values = np.zeros((len(pts),) + result.shape[1:], result.dtype)
        values[idx] = result
        covered[idx] = True
    assert values is not None
    return (propagate(pts, covered, values) if fill else values), covered


def segment(net: torch.nn.Module, cloud: LoadedCloud, categories: list[int], n_points: int,
            max_chunks: int, category: int | None = None) -> tuple[np.ndarray, int]:
    """Part labels (global ShapeNetPart ids) of every point and the category used.

    Without ``category`` every trained category is tried on the same chunks and the one whose
    restricted prediction is most confident (mean max softmax probability) wins; only the winner's
    labels are propagated to the points outside the chunks.
    """
    net.eval()
    candidates = [category] if category is not None else categories
    best: tuple[float, np.ndarray, np.ndarray, int] | None = None
    for cat in candidates:
        def fn(x: torch.Tensor, cat: int = cat) -> np.ndarray:
            prob = torch.softmax(net(x, torch.tensor([cat])), dim=1)[0]
            return np.stack([prob.argmax(0).numpy().astype(np.float32), prob.max(0).values.numpy()], 1)

        out, covered = run_chunks(fn, cloud.points, cloud.normals, n_points, max_chunks, fill=False)
        score = float(out[covered, 1].mean())
        if best is None or score > best[0]:
            best = (score, out[:, 0].astype(np.int64), covered, cat)
    assert best is not None
    _, labels, covered, cat = best
    pts, _, _ = normalize_cloud(cloud.points)
    return propagate(pts, covered, labels), cat


def discover_parts(encoder: torch.nn.Module, cloud: LoadedCloud, k: int, n_points: int, max_chunks: int,
                   seed: int = 0) -> np.ndarray:
    """Unsupervised parts: k-means (k clusters) on L2-normalised self-supervised per-point features."""
    from sklearn.cluster import KMeans

    encoder.eval()

    def fn(x: torch.Tensor) -> np.ndarray:
        feats, _ = encoder(x)
        return torch.nn.functional.normalize(feats[0].t(), dim=1).numpy()

    feats, covered = run_chunks(fn, cloud.points, cloud.normals, n_points, max_chunks, seed, fill=False)
    own = np.flatnonzero(covered)
    k = min(k, len(own))
    sample = np.random.default_rng(seed).choice(own, min(len(own), 20000), replace=False)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(feats[sample])
    clusters = np.zeros(len(feats), np.int64)
    clusters[own] = km.predict(feats[own])
    pts, _, _ = normalize_cloud(cloud.points)
    return propagate(pts, covered, clusters)


def parse_category(name: str | None) -> int | None:
    if name is None:
        return None
    for cat_name, synset, _ in CATEGORIES:
        if name.lower() in (cat_name.lower(), synset):
            return CATEGORY_INDEX[cat_name]
    raise UsageError(f"unknown category {name!r}; choose one of: {', '.join(c[0] for c in CATEGORIES)}")


# ---- outputs -------------------------------------------------------------------------------------

def label_colours(labels: np.ndarray) -> np.ndarray:
    """A fixed, distinct RGB colour in [0, 1] per label value (tab10 cycle)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return np.asarray([cmap(int(v) % 10)[:3] for v in range(int(labels.max()) + 1)])[labels]


def write_labels(path: Path, labels: np.ndarray) -> None:
    write_atomic(path, "".join(f"{int(v)}\n" for v in labels))


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64))
    with atomic_output(path) as tmp:
        if not o3d.io.write_point_cloud(str(tmp), cloud, write_ascii=False):
            raise CvsuiteError(f"{path}: open3d could not write the PLY file")


def open3d_offscreen_works() -> bool:
    """Probe (in a child process, once) whether open3d's offscreen renderer starts headless here."""
    global _RENDER_BACKEND
    if _RENDER_BACKEND is None:
        code = ("import shared, open3d as o3d; r = o3d.visualization.rendering.OffscreenRenderer(32, 32); "
                "print('OK')")
        try:
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                                 cwd=str(Path(__file__).resolve().parents[2]))
            _RENDER_BACKEND = "open3d" if "OK" in res.stdout else "matplotlib"
        except (OSError, subprocess.TimeoutExpired):
            _RENDER_BACKEND = "matplotlib"
    return _RENDER_BACKEND == "open3d"


def render_png(path: Path, points: np.ndarray, colours: np.ndarray, title: str = "", backend: str = "auto") -> str:
    """Render the coloured cloud: open3d offscreen when it works headless (``backend=auto``), else matplotlib."""
    if backend == "open3d" or (backend == "auto" and open3d_offscreen_works()):
        import open3d as o3d

        try:
            renderer = o3d.visualization.rendering.OffscreenRenderer(640, 640)
        except RuntimeError as exc:
            raise CvsuiteError(f"open3d's offscreen renderer does not start here ({exc}); use --render matplotlib") from None
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
        cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64))
        material = o3d.visualization.rendering.MaterialRecord()
        material.shader, material.point_size = "defaultUnlit", 4.0
        renderer.scene.add_geometry("cloud", cloud, material)
        renderer.setup_camera(60.0, cloud.get_axis_aligned_bounding_box(), cloud.get_axis_aligned_bounding_box().get_center())
        with atomic_output(path) as tmp:
            o3d.io.write_image(str(tmp), renderer.render_to_image())
        return "open3d"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    show = np.random.default_rng(0).choice(len(points), min(len(points), 20000), replace=False)
    fig = plt.figure(figsize=(5, 5), dpi=110)
    ax = fig.add_subplot(projection="3d")
    p = points[show]
    # ShapeNet is y-up: plot (x, z, y) so the shape stands upright
    ax.scatter(p[:, 0], p[:, 2], p[:, 1], c=colours[show], s=2, depthshade=False)
    ax.view_init(elev=20, azim=-60)
    lo, hi = p.min(0), p.max(0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[2] - half, centre[2] + half)
    ax.set_zlim(centre[1] - half, centre[1] + half)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return "matplotlib"
