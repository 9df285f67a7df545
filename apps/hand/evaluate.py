"""FreiHAND evaluation, computed exactly as the official ``eval.py`` of lmb-freiburg/freihand.

* ``align_w_scale``: centre ground truth and prediction, divide each by its Frobenius norm,
  ``R, s = scipy.linalg.orthogonal_procrustes(gt_n, pred_n)``, aligned = ``(pred_n @ R.T) * s * |gt| + mean(gt)``.
* A prediction whose mesh is not MANO-topology (vertex count differs) is aligned with the
  keypoint transform (``align_by_trafo``, reproduced as the official code has it) and gets
  ``mesh_* = -1``.
* Keypoint statistics (``EvalUtil``): per keypoint the mean Euclidean error and the PCK curve over
  ``np.linspace(0, 0.05, 100)`` metres; AUC = trapezoid(pck) / trapezoid(1); the reported values
  are means over keypoints; errors are reported in cm, AUC unitless.
* F-score at 5 mm and 15 mm from open3d point-cloud distances (gt->pred and pred->gt), averaged
  over frames (the official code swaps the names precision/recall; F is symmetric).

Scores keep the official names: ``xyz_mean3d, xyz_auc3d, xyz_al_mean3d, xyz_al_auc3d, mesh_mean3d,
mesh_auc3d, mesh_al_mean3d, mesh_al_auc3d, f_score_5, f_al_score_5, f_score_15, f_al_score_15``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import CvsuiteError

from .data import NUM_KP, read_json

F_THRESHOLDS = (0.005, 0.015)
_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")


def align_w_scale(gt: np.ndarray, pred: np.ndarray, return_trafo: bool = False):
    """Similarity (Procrustes with scale) alignment of ``pred`` onto ``gt``, as the official code."""
    from scipy.linalg import orthogonal_procrustes

    t1, t2 = gt.mean(0), pred.mean(0)
    gt_t, pred_t = gt - t1, pred - t2
    s1 = np.linalg.norm(gt_t) + 1e-8
    s2 = np.linalg.norm(pred_t) + 1e-8
    gt_t, pred_t = gt_t / s1, pred_t / s2
    R, s = orthogonal_procrustes(gt_t, pred_t)
    if return_trafo:
        return R, s, s1, t1 - t2
    return (pred_t @ R.T) * s * s1 + t1


def align_by_trafo(mtx: np.ndarray, trafo: tuple) -> np.ndarray:
    """Apply a keypoint transform to another point set (official code: no division by its norm)."""
    t2 = mtx.mean(0)
    R, s, s1, t1 = trafo
    return (mtx - t2) @ R.T * s * s1 + t1 + t2


class KeypointStats:
    """Per-keypoint Euclidean errors accumulated over frames (the official ``EvalUtil``)."""

    def __init__(self, num_kp: int = NUM_KP) -> None:
        self.num_kp = num_kp
        self.errors: list[np.ndarray] = []

    def feed(self, gt: np.ndarray, pred: np.ndarray) -> None:
        self.errors.append(np.sqrt(((gt - pred) ** 2).sum(1)))

    def measures(self, lo: float = 0.0, hi: float = 0.05, steps: int = 100) -> dict[str, Any]:
        """Mean/median error, AUC and PCK curve (means over keypoints), per-keypoint mean errors."""
        thresholds = np.linspace(lo, hi, steps)
        norm = _trapezoid(np.ones_like(thresholds), thresholds)
        data = np.stack(self.errors, 1)                                   # (K, N)
        pck = (data[:, :, None] <= thresholds[None, None]).mean(1)        # (K, T)
        auc = _trapezoid(pck, thresholds, axis=1) / norm
        means = data.mean(1)
        return {"mean": float(means.mean()), "median": float(np.median(data, 1).mean()), "auc": float(auc.mean()),
                "pck": pck.mean(0), "thresholds": thresholds, "per_keypoint": means}


def procrustes_mean(poses: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Generalised Procrustes mean (21, 3) of root-relative poses (N, 21, 3): every pose is aligned by
    similarity (:func:`align_w_scale`) onto the current mean, the aligned poses are averaged and the mean
    rescaled to the poses' mean size; a pose-only average that random hand orientations cannot blur."""
    poses = np.asarray(poses, np.float64)
    centred = poses - poses.mean(1, keepdims=True)
    size = np.mean(np.linalg.norm(centred, axis=(1, 2)))
    mean = centred[0]
    for _ in range(iterations):
        aligned = np.stack([align_w_scale(mean, p) for p in centred])
        new = aligned.mean(0)
        new = (new - new.mean(0)) * size / (np.linalg.norm(new - new.mean(0)) + 1e-12)
        if np.allclose(new, mean, atol=1e-9):
            break
        mean = new
    return mean


def pose_scores(gt_rel: np.ndarray, pred_rel: np.ndarray, gt_uv: np.ndarray | None = None,
                pred_uv: np.ndarray | None = None, pck_px: float = 3.2) -> dict[str, float]:
    """Benchmark scores of N predictions: PA-MPJPE (mm, official similarity alignment per frame), its
    AUC over 0-50 mm, and with 2-D keypoints the mean 2-D error and PCK at ``pck_px`` (input pixels)."""
    pa = KeypointStats()
    for g, p in zip(gt_rel, pred_rel):
        pa.feed(g, align_w_scale(g, p))
    m = pa.measures()
    out = {"pa_mpjpe_mm": 1000 * m["mean"], "pa_auc": m["auc"]}
    if gt_uv is not None and pred_uv is not None:
        err = np.linalg.norm(np.asarray(pred_uv) - np.asarray(gt_uv), axis=-1)
        out.update(err2d_px=float(err.mean()), pck2d=float((err <= pck_px).mean()))
    return out


def shuffled_scores(gt_rel: np.ndarray, pred_rel: np.ndarray, gt_uv: np.ndarray | None = None,
                    pred_uv: np.ndarray | None = None, seed: int = 0, pck_px: float = 3.2) -> dict[str, float]:
    """The shuffled-image control: image i's prediction scored against the ground truth of image
    ``perm[i]`` (a seeded permutation without fixed points). A model that reads the image scores much
    worse here than matched; one that ignores it scores the same."""
    n = len(gt_rel)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    while n > 1 and (perm == np.arange(n)).any():  # a derangement: no image keeps its own label
        fixed = np.nonzero(perm == np.arange(n))[0]
        other = rng.integers(0, n, len(fixed))
        perm[fixed], perm[other] = perm[other], perm[fixed].copy()
    return pose_scores(np.asarray(gt_rel)[perm], pred_rel, None if gt_uv is None else np.asarray(gt_uv)[perm],
                       pred_uv, pck_px)


def fscore(gt: np.ndarray, pred: np.ndarray, threshold: float) -> float:
    """F-score of two point sets at ``threshold`` metres (open3d nearest-point distances)."""
    import open3d as o3d

    gt_pcd, pr_pcd = o3d.geometry.PointCloud(), o3d.geometry.PointCloud()
    gt_pcd.points = o3d.utility.Vector3dVector(np.ascontiguousarray(gt, np.float64))
    pr_pcd.points = o3d.utility.Vector3dVector(np.ascontiguousarray(pred, np.float64))
    d_gt = np.asarray(gt_pcd.compute_point_cloud_distance(pr_pcd))   # each gt point to the prediction
    d_pr = np.asarray(pr_pcd.compute_point_cloud_distance(gt_pcd))   # each predicted point to the gt
    if not len(d_gt) or not len(d_pr):
        return 0.0
    a, b = float((d_pr < threshold).mean()), float((d_gt < threshold).mean())
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def evaluate(xyz_gt: np.ndarray, verts_gt: np.ndarray, xyz_pred: list, verts_pred: list) -> dict[str, Any]:
    """All FreiHAND scores for N frames (official names; errors in cm) + curves for plotting."""
    n = len(xyz_gt)
    kp, kp_al = KeypointStats(), KeypointStats()
    mesh, mesh_al = KeypointStats(len(verts_gt[0])), KeypointStats(len(verts_gt[0]))
    f_raw, f_al = [], []
    shape_is_mano = None
    for i in range(n):
        xyz, verts = np.asarray(xyz_gt[i], np.float64), np.asarray(verts_gt[i], np.float64)
        xp, vp = np.asarray(xyz_pred[i], np.float64), np.asarray(verts_pred[i], np.float64)
        kp.feed(xyz, xp)
        if shape_is_mano is None:
            shape_is_mano = vp.shape[0] == verts.shape[0]
        if shape_is_mano:
            mesh.feed(verts, vp)
        xp_al = align_w_scale(xyz, xp)
        vp_al = align_w_scale(verts, vp) if shape_is_mano else align_by_trafo(vp, align_w_scale(xyz, xp, True))
        kp_al.feed(xyz, xp_al)
        if shape_is_mano:
            mesh_al.feed(verts, vp_al)
        f_raw.append([fscore(verts, vp, t) for t in F_THRESHOLDS])
        f_al.append([fscore(verts, vp_al, t) for t in F_THRESHOLDS])
    m, m_al = kp.measures(), kp_al.measures()
    scores: dict[str, Any] = {"xyz_mean3d": 100 * m["mean"], "xyz_auc3d": m["auc"],
                              "xyz_al_mean3d": 100 * m_al["mean"], "xyz_al_auc3d": m_al["auc"]}
    curves = {"xyz": m, "xyz_al": m_al}
    if shape_is_mano:
        me, me_al = mesh.measures(), mesh_al.measures()
        scores.update(mesh_mean3d=100 * me["mean"], mesh_auc3d=me["auc"],
                      mesh_al_mean3d=100 * me_al["mean"], mesh_al_auc3d=me_al["auc"])
        curves.update(mesh=me, mesh_al=me_al)
    else:
        # the official eval.py sets -1.0 and then writes the means x 100 to scores.txt: -100 placeholders
        scores.update(mesh_mean3d=-100.0, mesh_auc3d=-1.0, mesh_al_mean3d=-100.0, mesh_al_auc3d=-1.0)
    f_raw_m, f_al_m = np.mean(f_raw, 0), np.mean(f_al, 0)
    for j, t in enumerate(F_THRESHOLDS):
        scores[f"f_score_{round(t * 1000)}"] = float(f_raw_m[j])
        scores[f"f_al_score_{round(t * 1000)}"] = float(f_al_m[j])
    scores["xyz_per_keypoint_mean3d"] = (100 * m["per_keypoint"]).tolist()
    scores["xyz_al_per_keypoint_mean3d"] = (100 * m_al["per_keypoint"]).tolist()
    scores["frames"] = n
    scores["shape_is_mano"] = bool(shape_is_mano)
    scores["pck_curves"] = {k: {"thresholds_cm": (100 * v["thresholds"]).tolist(), "pck": v["pck"].tolist()}
                            for k, v in curves.items()}
    return scores


def load_prediction(path: str | Path, n: int) -> tuple[list, list]:
    """The official submission ``[xyz_list, verts_list]``, checked against ``n`` ground-truth frames."""
    data = read_json(path, "prediction file")
    if not isinstance(data, list) or len(data) != 2:
        raise CvsuiteError(f"{path}: expected [xyz_list, verts_list] (a JSON list of two lists)")
    xyz, verts = data
    for name, items in (("xyz_list", xyz), ("verts_list", verts)):
        if not isinstance(items, list) or len(items) != n:
            got = len(items) if isinstance(items, list) else type(items).__name__
            raise CvsuiteError(f"{path}: {name} has {got} entries but the ground truth has {n} frames")
    nv = None
    for i in range(n):
        a = _points(xyz[i], path, f"xyz_list[{i}]")
        if a.shape[0] != NUM_KP:
            raise CvsuiteError(f"{path}: xyz_list[{i}] has shape {a.shape[0]}x3, expected {NUM_KP}x3")
        v = _points(verts[i], path, f"verts_list[{i}]")
        nv = nv or v.shape[0]
        if v.shape[0] != nv or nv == 0:
            raise CvsuiteError(f"{path}: verts_list[{i}] has {v.shape[0]} points, verts_list[0] has {nv}")
    return xyz, verts


def _points(value: Any, path: str | Path, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise CvsuiteError(f"{path}: {what} is not an N x 3 list of numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise CvsuiteError(f"{path}: {what} has shape {'x'.join(map(str, arr.shape))}, expected N x 3")
    if not np.isfinite(arr).all():
        raise CvsuiteError(f"{path}: {what} holds NaN or inf")
    return arr


def load_ground_truth(gt_dir: str | Path, split: str = "evaluation") -> tuple[np.ndarray, np.ndarray]:
    """``{split}_xyz.json`` and ``{split}_verts.json`` of a FreiHAND folder."""
    from .data import FreiHAND

    ds = FreiHAND(gt_dir, split)
    return ds.xyz(), ds.verts()


def plot_pck(scores: dict[str, Any], path: str | Path) -> None:
    """PCK curves (raw and aligned; mesh ones when present) as a PNG.

    Curves that coincide (e.g. raw and aligned when the prediction is already aligned) are drawn once
    with both names, never hidden under each other; each curve has its own line style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"xyz": "keypoints", "xyz_al": "keypoints, aligned", "mesh": "vertices", "mesh_al": "vertices, aligned"}
    auc_key = {"xyz": "xyz_auc3d", "xyz_al": "xyz_al_auc3d", "mesh": "mesh_auc3d", "mesh_al": "mesh_al_auc3d"}
    groups: list[tuple[list[str], dict]] = []
    for key, curve in scores["pck_curves"].items():
        for names, first in groups:
            if np.allclose(first["pck"], curve["pck"], atol=1e-9) and np.allclose(first["thresholds_cm"],
                                                                                 curve["thresholds_cm"]):
                names.append(key)
                break
        else:
            groups.append(([key], curve))
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for (names, curve), style in zip(groups, ("-", "--", "-.", ":")):
        label = " = ".join(f"{labels[k]} (AUC {scores[auc_key[k]]:.3f})" for k in names)
        ax.plot(curve["thresholds_cm"], curve["pck"], style, linewidth=2, label=label)
    ax.set_xlabel("threshold (cm): a point is correct when its 3-D error is below it")
    ax.set_ylabel("PCK: fraction of points correct")
    ax.set_title(f"FreiHAND protocol, {scores.get('frames', '?')} frames; 'aligned' = after Procrustes "
                 f"(scale, rotation, translation)", fontsize=8)
    ax.set_xlim(0, max(max(c["thresholds_cm"]) for _, c in groups))
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    from shared.guard import atomic_output

    with atomic_output(path) as tmp:  # a fresh temp file, renamed over the plot
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)


def format_scores(scores: dict[str, Any]) -> str:
    keys = ["xyz_mean3d", "xyz_auc3d", "xyz_al_mean3d", "xyz_al_auc3d", "mesh_mean3d", "mesh_auc3d",
            "mesh_al_mean3d", "mesh_al_auc3d", "f_score_5", "f_al_score_5", "f_score_15", "f_al_score_15"]
    return "\n".join(f"{k}: {scores[k]:.6f}" for k in keys)


SCORES_TXT_ORDER = ("xyz_mean3d", "xyz_auc3d", "xyz_al_mean3d", "xyz_al_auc3d", "mesh_mean3d", "mesh_auc3d",
                    "mesh_al_mean3d", "mesh_al_auc3d", "f_score_5", "f_al_score_5", "f_score_15", "f_al_score_15")


def write_scores_txt(scores: dict[str, Any], path: str | Path) -> None:
    """``scores.txt`` line for line as the official ``eval.py`` writes it (``name: %f``, means in cm)."""
    from shared.guard import write_atomic

    write_atomic(path, "".join(f"{k}: {scores[k]:f}\n" for k in SCORES_TXT_ORDER))


def write_json(scores: dict[str, Any], path: str | Path) -> None:
    from shared.guard import write_atomic

    write_atomic(path, json.dumps(scores, indent=2) + "\n")
