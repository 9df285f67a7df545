"""Inference on users' clouds and meshes: part labels in input order, unsupervised parts, outputs.

A cloud with more than ``n_points`` points is split into random disjoint chunks of ``n_points``
(the last one topped up with random points); the network runs on up to ``max_chunks`` chunks and
every point left over takes the label of its nearest labelled point (chunked kNN, k = 1). Labels are
written in the input's point order. A mesh is surface-sampled (``n_points`` points).
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from shared.errors import CvsuiteError, UsageError
from shared.guard import atomic_output, write_atomic

from .data import CATEGORIES, CATEGORY_INDEX, NUM_CATEGORIES, PART_NAMES, LoadedCloud, category_parts, shape_features

if TYPE_CHECKING:
    from .parts import PartsConfig

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


def nearest_index(source: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index into ``source`` (S, 3) of each ``query`` row's nearest point: a scipy KD-tree
    (O((S + Q) log S); brute force was 23 of 42 s on a 100k-point cloud)."""
    from scipy.spatial import cKDTree

    return cKDTree(np.asarray(source, np.float64)).query(np.asarray(query, np.float64), k=1, workers=1)[1]


def propagate(points: np.ndarray, covered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Values for every point: its own where ``covered``, else its nearest covered point's (KD-tree)."""
    out_shape = (len(points),) + values.shape[1:]
    out = np.empty(out_shape, values.dtype)
    out[covered] = values[covered]
    missing = np.flatnonzero(~covered)
    if len(missing):
        src = np.flatnonzero(covered)
        out[missing] = values[src[nearest_index(points[src], points[missing])]]
    return out


@torch.no_grad()
def run_chunks(fn: Callable[[torch.Tensor], np.ndarray], points: np.ndarray, normals: np.ndarray,
               n_points: int, max_chunks: int, seed: int = 0, fill: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn`` ((1, 6, n) -> (n, ...) per-point outputs) chunk-wise to a cloud already in the
    model frame (:func:`apps.points.data.model_frame`).

    Returns (values for every point in input order, covered mask); with ``fill`` the points outside
    the chunks take their nearest covered point's values, else they stay zero.
    """
    values: np.ndarray | None = None
    covered = np.zeros(len(points), bool)
    for idx in chunk_indices(len(points), n_points, max_chunks, seed):
        x = torch.from_numpy(shape_features(points[idx], normals[idx])).unsqueeze(0)
        result = fn(x)
        if values is None:
            values = np.zeros((len(points),) + result.shape[1:], result.dtype)
        values[idx] = result
        covered[idx] = True
    assert values is not None
    return (propagate(points, covered, values) if fill else values), covered


@dataclass
class Segmentation:
    """Part labels (global ShapeNetPart ids, input order), the category used and its probability.

    ``probability_source``: ``classifier`` (the segmenter's category head, mean softmax over the
    chunks), ``given`` (``--category``) or ``confidence`` (segmenters without a category head: softmax
    over the tried categories of the mean per-point log max-probability of each one's labelling — a
    relative score, not a calibrated probability).
    """

    labels: np.ndarray
    category: int
    probability: float
    probability_source: str
    probabilities: dict[int, float]


def _part_log_probs(net: torch.nn.Module, x: torch.Tensor, feats: torch.Tensor | None, cat: int) -> torch.Tensor:
    """(50, n) restricted part log-probabilities for category ``cat`` (reusing encoder ``feats`` if any)."""
    logits = net.decode(feats, torch.tensor([cat])) if feats is not None else net(x, torch.tensor([cat]))
    return torch.log_softmax(logits, dim=1)[0]


def _category_softmax(net: torch.nn.Module, glob: torch.Tensor, categories: list[int]) -> torch.Tensor:
    """The category head's softmax over ``categories`` only (the others get probability 0)."""
    mask = torch.full((NUM_CATEGORIES,), float("-inf"))
    mask[categories] = 0
    return torch.softmax(net.classify(glob)[0] + mask, 0)


@torch.no_grad()
def segment(net: torch.nn.Module, cloud: LoadedCloud, categories: list[int], n_points: int,
            max_chunks: int, category: int | None = None, up: str = "y", seed: int = 0) -> Segmentation:
    """Part labels of every point of ``cloud`` (model frame with ``up`` as the up axis).

    The category: ``category`` when given; else the segmenter's category head (restricted to the
    trained ``categories``, mean softmax over the chunks); segmenters without a head try every
    trained category and keep the most confident labelling. The encoder runs once per chunk; only
    the chosen category's labels are propagated to the points outside the chunks.
    """
    net.eval()
    pts, nrm = cloud.model_input(up)
    split = hasattr(net, "encode") and hasattr(net, "decode")
    head = split and getattr(net, "classifier", None) is not None
    chunks = []
    for idx in chunk_indices(len(pts), n_points, max_chunks, seed):
        x = torch.from_numpy(shape_features(pts[idx], nrm[idx])).unsqueeze(0)
        feats, glob = net.encode(x) if split else (None, None)
        chunks.append((idx, x, feats, glob))
    if category is not None:
        cat, probs, source = category, {category: 1.0}, "given"
    elif head:
        mean = sum(_category_softmax(net, glob, categories) for _, _, _, glob in chunks) / len(chunks)
        probs = {c: float(mean[c]) for c in categories}
        cat, source = max(probs, key=probs.get), "classifier"
    else:
        n_run = sum(len(idx) for idx, _, _, _ in chunks)
        scores = np.array([sum(float(_part_log_probs(net, x, f, c).max(0).values.sum()) for _, x, f, _ in chunks) / n_run
                           for c in categories])
        weights = np.exp(scores - scores.max())
        probs = {c: float(w) for c, w in zip(categories, weights / weights.sum())}
        cat, source = categories[int(np.argmax(scores))], "confidence"
    labels = np.zeros(len(pts), np.int64)
    covered = np.zeros(len(pts), bool)
    for idx, x, feats, _ in chunks:
        labels[idx] = _part_log_probs(net, x, feats, cat).argmax(0).numpy()
        covered[idx] = True
    return Segmentation(propagate(pts, covered, labels), cat, probs[cat], source, probs)


@torch.no_grad()
def category_by_up_axis(net: torch.nn.Module, cloud: LoadedCloud, categories: list[int], n_points: int,
                        axes: tuple[str, ...], seed: int = 0) -> dict[str, tuple[int, float]]:
    """The category head's best category and its probability when the cloud is read with each up
    axis in ``axes`` (one seeded chunk of ``n_points`` per axis).

    Used to catch a wrong up axis: the shipped segmenter learned y-up shapes, and on a z-up file read
    as y-up it can still be confident about a wrong category. Empty for segmenters without a head.
    """
    if getattr(net, "classifier", None) is None or not hasattr(net, "encode"):
        return {}
    net.eval()
    found: dict[str, tuple[int, float]] = {}
    for axis in axes:
        pts, nrm = cloud.model_input(axis)
        idx = chunk_indices(len(pts), n_points, 1, seed)[0]
        _, glob = net.encode(torch.from_numpy(shape_features(pts[idx], nrm[idx])).unsqueeze(0))
        probs = _category_softmax(net, glob, categories)
        best = int(probs.argmax())
        found[axis] = (best, float(probs[best]))
    return found


def discover_parts(cloud: LoadedCloud, k: int, seed: int = 0, encoder: torch.nn.Module | None = None,
                   n_points: int = 2048, max_chunks: int = 64, cfg: PartsConfig | None = None) -> np.ndarray:
    """Unsupervised parts (labels 0..k-1, largest first) of every point of ``cloud``, the same for any
    pose of the cloud: :func:`apps.points.parts.surface_parts` (spectral features of the surface kNN
    graph, Ward clustering along its edges: every part is connected). With ``encoder``, its per-point
    features on the cloud's canonical (PCA) pose are added (``cfg.encoder_weight``, 1 when not set)."""
    from .data import model_frame
    from .parts import PartsConfig, surface_parts

    cfg = cfg or PartsConfig(encoder_weight=1.0 if encoder is not None else 0.0)
    encoder_features = None
    if encoder is not None:
        encoder.eval()

        def encoder_features(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
            pts, nrm = model_frame(points.astype(np.float32), normals.astype(np.float32), "y")
            return run_chunks(lambda x: encoder(x)[0][0].t().numpy(), pts, nrm, n_points, max_chunks, seed)[0]

    return surface_parts(cloud.points, cloud.normals, k, cfg, encoder_features, seed)


def parse_category(name: str | None) -> int | None:
    if name is None:
        return None
    for cat_name, synset, _ in CATEGORIES:
        if name.lower() in (cat_name.lower(), synset):
            return CATEGORY_INDEX[cat_name]
    raise UsageError(f"unknown category {name!r}; choose one of: {', '.join(c[0] for c in CATEGORIES)}")


# ---- outputs -------------------------------------------------------------------------------------

def part_names(labels: np.ndarray, category: int | None) -> dict[int, str]:
    """{label: readable name}: ShapeNetPart part names for a category's global ids, else ``part K``."""
    if category is not None:
        return {p: PART_NAMES[p] for p in category_parts(category)}
    return {int(v): f"part {int(v)}" for v in np.unique(labels)}


def label_colours(labels: np.ndarray, palette_order: list[int] | None = None) -> np.ndarray:
    """A fixed, distinct RGB colour in [0, 1] per label (tab10 cycle); with ``palette_order`` the
    i-th listed label gets the i-th colour (a category's parts get colours 0, 1, 2, ...)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    order = palette_order if palette_order is not None else list(range(int(labels.max()) + 1))
    slot = np.zeros(max(max(order), int(labels.max())) + 1, np.int64)
    slot[order] = np.arange(len(order))
    return np.asarray([cmap(i % 10)[:3] for i in range(int(slot.max()) + 1)])[slot[labels]]


def write_labels(path: Path, labels: np.ndarray, header: list[str] | None = None) -> None:
    """One label per line in input order, after ``#`` header lines (``np.loadtxt`` skips them)."""
    lines = [f"# {h}\n" for h in (header or [])]
    write_atomic(path, "".join(lines) + "".join(f"{int(v)}\n" for v in labels))


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray) -> None:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64))
    with atomic_output(path) as tmp:
        if not o3d.io.write_point_cloud(str(tmp), cloud, write_ascii=False):
            raise CvsuiteError(f"{path}: open3d could not write the PLY file")


def write_mesh_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> None:
    """The input mesh (vertices in file order, triangulated faces) with per-vertex part colours."""
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices.astype(np.float64)),
                                     o3d.utility.Vector3iVector(faces.astype(np.int32)))
    mesh.vertex_colors = o3d.utility.Vector3dVector(colours.astype(np.float64))
    with atomic_output(path) as tmp:
        if not o3d.io.write_triangle_mesh(str(tmp), mesh, write_ascii=False):
            raise CvsuiteError(f"{path}: open3d could not write the mesh PLY file")


def vertex_labels(cloud: LoadedCloud, labels: np.ndarray) -> np.ndarray:
    """Labels of a mesh's vertices (file order): each takes its nearest sampled point's label."""
    assert cloud.vertices is not None
    return labels[nearest_index(cloud.points, cloud.vertices)]


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


def view_axes(azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(screen right, screen up, towards the camera) unit vectors of a camera orbiting the y (up) axis."""
    az, el = np.radians(azimuth), np.radians(elevation)
    toward = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    right = np.array([np.cos(az), 0.0, -np.sin(az)])
    return right, np.cross(toward, right), toward


def visible_pixels(points: np.ndarray, labels: np.ndarray, azimuth: float, elevation: float,
                   grid: int = 64) -> dict[int, int]:
    """{label: pixels where it is the front-most point} of an orthographic z-buffer view."""
    right, upv, toward = view_axes(azimuth, elevation)
    uv = np.stack([points @ right, points @ upv], 1)
    depth = points @ toward
    lo, span = uv.min(0), max(float(np.ptp(uv, axis=0).max()), 1e-9)
    cell = np.minimum(((uv - lo) / span * grid).astype(np.int64), grid - 1)
    key = cell[:, 0] * grid + cell[:, 1]
    order = np.lexsort((-depth, key))               # per pixel, the nearest point first
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    found, counts = np.unique(labels[first], return_counts=True)
    return dict(zip(found.tolist(), counts.tolist()))


def best_view(points: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(azimuth, elevation) among 8 x 3 candidate views that shows the most of every part: maximises
    the sum over labels of sqrt(visible pixels), so a view that hides a part scores low."""
    best, best_score = (-60.0, 20.0), -1.0
    for elevation in (15.0, 35.0, -20.0):
        for azimuth in np.arange(-157.5, 180.0, 45.0):
            score = sum(np.sqrt(c) for c in visible_pixels(points, labels, azimuth, elevation).values())
            if score > best_score + 1e-9:
                best, best_score = (float(azimuth), elevation), score
    return best


def render_png(path: Path, points: np.ndarray, colours: np.ndarray, title: str = "", backend: str = "auto",
               labels: np.ndarray | None = None, legend: dict[int, str] | None = None) -> str:
    """Render the coloured cloud (model frame, y up) from the view that shows the parts best, filling
    the frame, with a legend of ``legend`` {label: name}: open3d offscreen when it works headless
    (``backend=auto``), else matplotlib (an orthographic depth-sorted projection)."""
    labels = np.zeros(len(points), np.int64) if labels is None else labels
    show = np.random.default_rng(0).choice(len(points), min(len(points), 30000), replace=False)
    azimuth, elevation = best_view(points[show], labels[show])
    right, upv, toward = view_axes(azimuth, elevation)
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
        centre = cloud.get_axis_aligned_bounding_box().get_center()
        radius = float(np.linalg.norm(points - centre, axis=1).max())
        renderer.setup_camera(40.0, centre, centre + toward * radius * 3.2, upv)
        with atomic_output(path) as tmp:
            o3d.io.write_image(str(tmp), renderer.render_to_image())
        return "open3d"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    p, c = points[show], colours[show]
    uv = np.stack([p @ right, p @ upv], 1)
    order = np.argsort(p @ toward)                    # far first: near points are drawn on top
    fig = plt.figure(figsize=(5.5, 5.5), dpi=120)
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.93 if title else 1.0))
    size = float(np.clip(6e4 / len(p), 0.6, 40.0))
    ax.scatter(uv[order, 0], uv[order, 1], c=c[order], s=size, linewidths=0)
    ax.set_aspect("equal")
    lo, hi = uv.min(0), uv.max(0)
    pad = 0.03 * float((hi - lo).max())
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_axis_off()
    if legend:
        present = set(np.unique(labels).tolist())
        handles = [Patch(color=colours[np.flatnonzero(labels == k)[0]], label=f"{k} {name}")
                   for k, name in legend.items() if k in present]
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.8)
    if title:
        fig.suptitle(f"{title}  (view az {azimuth:.0f}, el {elevation:.0f})", fontsize=8, y=0.985)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return "matplotlib"
