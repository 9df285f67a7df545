"""Unsupervised parts (``infer --parts K``) that follow the surface and do not depend on the pose.

Pipeline on one cloud (a mesh is surface-sampled first):

1. **Surface graph** (:func:`surface_graph`): symmetric kNN graph of the points plus the edges of a
   Euclidean minimum spanning tree, so the graph is connected even when the kNN graph is not (separate
   pieces are then joined by their closest pair of points only). Edge weight: a Gaussian of the edge
   length (σ = the median kNN distance) times a crease factor ``exp(-(1 - |n_i·n_j|) / crease)`` that
   weakens edges across sharp normal changes (|·|: unoriented normals).
2. **Features**, all invariant to rotation of the cloud (they depend only on distances and normal
   angles): the first eigenvectors of the graph's normalised Laplacian (a spectral embedding: points
   joined by thin necks — legs, handles, antennae — end up far apart) and multi-scale local shape
   descriptors (linearity, planarity, scattering of the kNN covariance), averaged over the graph by a
   few random-walk steps (:func:`smooth_on_graph`). Optionally the SCL
   encoder's per-point features computed on a *canonical* pose (PCA axes with third-moment signs,
   :func:`canonical_rotation`) — an option (``infer --parts K --weights encoder``): it did not improve
   the validation meshes (``evaluation/bench_points_parts.py``), so it is off by default.
3. **Clustering** (:func:`connected_ward`): Ward agglomerative clustering restricted to the surface
   graph's edges, so every part is a connected piece of the graph.

Clouds larger than ``max_points`` are clustered on a seeded random subset (chosen by index, so the
same for a rotated copy) and the other points take their nearest clustered point's part.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .data import normalize_cloud


@dataclass
class PartsConfig:
    """Settings of :func:`surface_parts` (the defaults were chosen on the validation meshes)."""

    neighbours: int = 20          # kNN of the surface graph
    crease: float = 0.1           # crease factor scale (0 = off: a pure distance graph)
    spectral_per_part: int = 1    # Laplacian eigenvectors per requested part (K of them for K parts)
    descriptor_weight: float = 1.5  # weight of the local shape descriptors next to the spectral block
    smoothing_steps: int = 10     # random-walk averaging steps of the descriptors over the surface graph
    encoder_weight: float = 0.0   # weight of the canonical-pose encoder features (needs an encoder)
    max_points: int = 4096        # points clustered directly; the rest take their nearest one's part


def knn_table(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each point's ``k`` nearest other points (scipy KD-tree)."""
    from scipy.spatial import cKDTree

    k = min(k, len(points) - 1)
    dist, idx = cKDTree(points).query(points, k=k + 1, workers=1)
    return dist[:, 1:], idx[:, 1:]


def surface_graph(points: np.ndarray, normals: np.ndarray, k: int = 10, crease: float = 0.0) -> sp.csr_matrix:
    """Symmetric weighted adjacency (n, n): kNN edges + a Euclidean minimum spanning tree (connected)."""
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    n = len(points)
    dist, idx = knn_table(points, k)
    rows = np.repeat(np.arange(n), idx.shape[1])
    lengths = sp.csr_matrix((dist.ravel() + 1e-12, (rows, idx.ravel())), shape=(n, n))
    lengths = lengths.maximum(lengths.T)
    n_comp, comp = connected_components(lengths, directed=False)
    if n_comp > 1:  # join the pieces by the MST of their closest point pairs
        from scipy.spatial import cKDTree

        extra_r, extra_c, extra_d = [], [], []
        members = [np.flatnonzero(comp == c) for c in range(n_comp)]
        trees = [cKDTree(points[m]) for m in members]
        pair = np.full((n_comp, n_comp), np.inf)
        ends: dict[tuple[int, int], tuple[int, int]] = {}
        for a in range(n_comp):
            for b in range(a + 1, n_comp):
                d, j = trees[b].query(points[members[a]], k=1)
                i = int(np.argmin(d))
                pair[a, b] = pair[b, a] = d[i]
                ends[(a, b)] = (int(members[a][i]), int(members[b][j[i]]))
        tree = minimum_spanning_tree(sp.csr_matrix(np.where(np.isfinite(pair), pair + 1e-12, 0))).tocoo()
        for a, b in zip(tree.row, tree.col):
            i, j = ends[(min(a, b), max(a, b))]
            extra_r += [i, j]
            extra_c += [j, i]
            extra_d += [pair[a, b] + 1e-12] * 2
        lengths = lengths.maximum(sp.csr_matrix((extra_d, (extra_r, extra_c)), shape=(n, n)))
    lengths = lengths.tocoo()
    sigma = float(np.median(dist[:, -1])) + 1e-12
    weight = np.exp(-(lengths.data ** 2) / (2 * sigma ** 2))
    if crease > 0:
        cos = np.abs(np.einsum("ij,ij->i", normals[lengths.row], normals[lengths.col]))
        weight = weight * np.exp(-(1.0 - cos) / crease)
    weight = np.maximum(weight, 1e-8)  # keep every edge (connectivity) even when its weight underflows
    return sp.csr_matrix((weight, (lengths.row, lengths.col)), shape=(n, n))


def spectral_features(graph: sp.csr_matrix, dims: int, seed: int = 0) -> np.ndarray:
    """(n, dims) eigenvectors of the normalised graph Laplacian after the trivial one (sklearn's
    ``spectral_embedding``), rows scaled to unit length."""
    from sklearn.manifold import spectral_embedding

    dims = max(1, min(dims, graph.shape[0] - 2))
    emb = spectral_embedding(graph, n_components=dims, drop_first=True, random_state=seed, eigen_solver="arpack")
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def local_descriptors(points: np.ndarray, scales: tuple[int, ...] = (16, 48)) -> np.ndarray:
    """(n, 3 · len(scales)) linearity, planarity and scattering of each point's kNN covariance at each
    neighbourhood size, z-scored per column (rotation invariant)."""
    out = []
    for k in scales:
        _, idx = knn_table(points, k)
        nb = points[idx] - points[idx].mean(1, keepdims=True)
        cov = np.einsum("nki,nkj->nij", nb, nb) / nb.shape[1]
        lam = np.clip(np.linalg.eigvalsh(cov)[:, ::-1], 0, None) + 1e-12        # descending
        out += [(lam[:, 0] - lam[:, 1]) / lam[:, 0], (lam[:, 1] - lam[:, 2]) / lam[:, 0], lam[:, 2] / lam[:, 0]]
    feats = np.stack(out, 1)
    return (feats - feats.mean(0)) / np.maximum(feats.std(0), 1e-9)


def smooth_on_graph(features: np.ndarray, graph: sp.csr_matrix, steps: int) -> np.ndarray:
    """``steps`` rounds of random-walk averaging ``D⁻¹ W x`` over the weighted graph: each point's
    features become a weighted mean of its surface neighbourhood's, which removes the point-to-point
    noise of the descriptors (on raw descriptors Ward split one smooth part into interleaved halves)
    without mixing across weak (crease, neck) edges as much as across strong ones."""
    degree = np.asarray(graph.sum(1)).ravel()
    walk = sp.diags(1.0 / np.maximum(degree, 1e-300)) @ graph
    for _ in range(max(0, steps)):
        features = walk @ features
    return features


def canonical_rotation(points: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking the centred cloud to its PCA axes (descending variance), each axis signed so
    the third moment along it is positive, right-handed: ``points @ R`` is the same for any rotated copy
    (up to near-equal variances or near-zero third moments)."""
    centred = points - points.mean(0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    axes = vecs[:, ::-1].copy()
    for a in range(2):
        if np.sum((centred @ axes[:, a]) ** 3) < 0:
            axes[:, a] = -axes[:, a]
    axes[:, 2] = np.cross(axes[:, 0], axes[:, 1])
    return axes


def connected_ward(features: np.ndarray, graph: sp.csr_matrix, k: int) -> np.ndarray:
    """Ward agglomerative clustering into ``k`` clusters merging only clusters joined by a graph edge:
    every cluster is a connected subgraph (the graph must be connected). Labels 0..k-1."""
    from sklearn.cluster import AgglomerativeClustering

    k = max(1, min(k, len(features)))
    connectivity = (graph + graph.T).tocsr()
    connectivity.data[:] = 1.0
    labels = AgglomerativeClustering(n_clusters=k, connectivity=connectivity, linkage="ward").fit_predict(features)
    return relabel_by_size(labels)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0, 1, ... by decreasing cluster size (ties: by first occurrence)."""
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = values[np.lexsort((first, -counts))]
    remap = np.empty(int(values.max()) + 1, np.int64)
    remap[order] = np.arange(len(order))
    return remap[labels]


def surface_parts(points: np.ndarray, normals: np.ndarray, k: int, cfg: PartsConfig | None = None,
                  encoder_features=None, seed: int = 0) -> np.ndarray:
    """Part label (0..k-1, largest part first) of every point: see the module docstring.

    ``encoder_features``: optional callable (points (m, 3) in a canonical pose, normals (m, 3)) ->
    (m, C) per-point features, used when ``cfg.encoder_weight > 0``.
    """
    from .infer import propagate

    cfg = cfg or PartsConfig()
    points = np.asarray(points, np.float64)
    normals = np.asarray(normals, np.float64)
    n = len(points)
    chosen = np.arange(n) if n <= cfg.max_points else np.sort(
        np.random.default_rng(seed).choice(n, cfg.max_points, replace=False))
    pts = normalize_cloud(np.asarray(points[chosen], np.float64), np.float64)[0]
    nrm = normals[chosen] / np.maximum(np.linalg.norm(normals[chosen], axis=1, keepdims=True), 1e-12)
    if len(pts) <= k:
        labels = np.arange(len(pts))
    else:
        graph = surface_graph(pts, nrm, cfg.neighbours, cfg.crease)
        blocks = [spectral_features(graph, cfg.spectral_per_part * k, seed)]
        if cfg.descriptor_weight > 0:
            desc = smooth_on_graph(local_descriptors(pts), graph, cfg.smoothing_steps)
            blocks.append(cfg.descriptor_weight * desc / max(float(np.sqrt((desc ** 2).sum(1).mean())), 1e-12))
        if cfg.encoder_weight > 0 and encoder_features is not None:
            rot = canonical_rotation(pts)
            feats = np.asarray(encoder_features(pts @ rot, nrm @ rot), np.float64)
            feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
            blocks.append(cfg.encoder_weight * feats)
        labels = connected_ward(np.concatenate(blocks, 1), graph, k)
    covered = np.zeros(n, bool)
    covered[chosen] = True
    full = np.zeros(n, np.int64)
    full[chosen] = labels
    return propagate(points, covered, full) if n > len(chosen) else full
