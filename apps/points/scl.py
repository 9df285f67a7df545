"""Self-contrastive sampling (SCL): patches, their self-similarity, positives and banded hard negatives.

Patches are the ``patch_size`` nearest neighbours of ``num_anchors`` farthest-point-sampled anchors.
Self-similarity between the patches of one cloud comes from a fixed *geometric descriptor* (see
:func:`patch_descriptors`) rather than from an EMA encoder: it is meaningful from the first step (an
EMA encoder starts random, so early positives would be noise), it cannot drift or collapse with the
network it supervises, and it costs a few small tensor ops per cloud.

For anchor ``i``:
* positive = the most similar other patch whose anchor lies outside ``i``'s own patch radius (so it
  is a *non-local* self-similar patch, e.g. another chair leg, not an overlapping neighbour);
* negatives = ``num_negatives`` patches drawn uniformly from the candidates whose similarity rank
  quantile (0 = least similar, 1 = most similar among the candidates) lies in the band
  ``[w_l, w_u]``. The band moves from ``[band_start]`` to ``[band_end]`` linearly over training,
  e.g. [0, 1] (any patch) -> [0.5, 0.9] (hard, but excluding the top 10 %, the likeliest false
  negatives). ``negatives="random"`` (ablation) ignores the band.
"""
from __future__ import annotations

import torch

from shared.pointnets import farthest_point_sample, knn


def extract_patches(xyz: torch.Tensor, num_anchors: int, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor indices (B, M), patch point indices (B, M, P)) of clouds ``xyz`` (B, N, 3)."""
    anchors = farthest_point_sample(xyz, num_anchors)
    centres = torch.gather(xyz, 1, anchors.unsqueeze(2).expand(-1, -1, 3))
    patches = knn(xyz, min(patch_size, xyz.shape[1]), query=centres)
    return anchors, patches


def _gather_points(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """values (B, N, C), idx (B, M, P) -> (B, M, P, C)."""
    b, m, p = idx.shape
    flat = torch.gather(values, 1, idx.reshape(b, m * p, 1).expand(-1, -1, values.shape[2]))
    return flat.view(b, m, p, values.shape[2])


@torch.no_grad()
def patch_descriptors(xyz: torch.Tensor, normals: torch.Tensor, anchors: torch.Tensor, patches: torch.Tensor,
                      bins: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Translation-invariant descriptors (B, M, F) of each patch, and each patch's radius (B, M).

    Features: normalised PCA eigenvalues of the centred patch (line / plane / blob), the anchor
    normal's absolute components (orientation in the aligned frame), a histogram of point distances
    to the anchor and a histogram of |n . n_anchor| (curvature).
    """
    pts = _gather_points(xyz, patches)
    nrm = _gather_points(normals, patches)
    centre = torch.gather(xyz, 1, anchors.unsqueeze(2).expand(-1, -1, 3)).unsqueeze(2)
    n_anchor = torch.gather(normals, 1, anchors.unsqueeze(2).expand(-1, -1, 3))
    rel = pts - centre
    dist = rel.norm(dim=3)
    radius = dist.max(dim=2).values
    centred = pts - pts.mean(dim=2, keepdim=True)
    cov = centred.transpose(2, 3) @ centred / pts.shape[2]
    eig = torch.linalg.eigvalsh(cov).clamp_min(0)
    eig = eig / eig.sum(dim=2, keepdim=True).clamp_min(1e-12)
    scale = radius.median(dim=1, keepdim=True).values.clamp_min(1e-6).unsqueeze(2)
    d_bin = (dist / scale * bins / 1.5).long().clamp(max=bins - 1)
    d_hist = torch.zeros(*dist.shape[:2], bins, device=xyz.device).scatter_add_(2, d_bin, torch.ones_like(dist))
    cos = (nrm * n_anchor.unsqueeze(2)).sum(3).abs()
    c_bin = (cos * 4).long().clamp(max=3)
    c_hist = torch.zeros(*dist.shape[:2], 4, device=xyz.device).scatter_add_(2, c_bin, torch.ones_like(cos))
    desc = torch.cat([eig, n_anchor.abs(), d_hist / pts.shape[2], c_hist / pts.shape[2],
                      (radius / scale.squeeze(2)).unsqueeze(2)], dim=2)
    return desc, radius


@torch.no_grad()
def self_similarity(desc: torch.Tensor) -> torch.Tensor:
    """(B, M, M) cosine similarity of descriptors standardised per cloud (each feature z-scored over patches)."""
    z = (desc - desc.mean(dim=1, keepdim=True)) / desc.std(dim=1, keepdim=True).clamp_min(1e-6)
    z = torch.nn.functional.normalize(z, dim=2)
    return z @ z.transpose(1, 2)


def band_at(progress: float, band_start: tuple[float, float], band_end: tuple[float, float]) -> tuple[float, float]:
    """Linear interpolation of the negative band [w_l, w_u] at training progress in [0, 1]."""
    t = min(max(progress, 0.0), 1.0)
    return (band_start[0] + t * (band_end[0] - band_start[0]), band_start[1] + t * (band_end[1] - band_start[1]))


@torch.no_grad()
def sample_pairs(sim: torch.Tensor, anchor_xyz: torch.Tensor, radius: torch.Tensor, num_negatives: int,
                 band: tuple[float, float], negatives: str = "hard",
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive index (B, M) and negative indices (B, M, K) into each cloud's patches.

    ``sim`` (B, M, M) self-similarity; ``anchor_xyz`` (B, M, 3); ``radius`` (B, M) patch radii.
    ``negatives`` = hard (from the rank band) or random (any patch but the anchor and its positive).
    """
    b, m, _ = sim.shape
    device = sim.device
    eye = torch.eye(m, dtype=torch.bool, device=device).unsqueeze(0)
    far = torch.cdist(anchor_xyz, anchor_xyz) > radius.unsqueeze(2)
    allowed = far & ~eye
    allowed = torch.where(allowed.any(dim=2, keepdim=True), allowed, ~eye)  # tiny clouds: any other patch
    positive = sim.masked_fill(~allowed, float("-inf")).argmax(dim=2)
    candidate = ~eye & ~torch.nn.functional.one_hot(positive, m).bool()
    if negatives == "random":
        pool = candidate
    elif negatives == "hard":
        # rank quantile of each candidate among the anchor's candidates: 0 = least similar, 1 = most
        masked = sim.masked_fill(~candidate, float("-inf"))
        order = masked.argsort(dim=2)
        ranks = torch.empty_like(order).scatter_(2, order, torch.arange(m, device=device).expand(b, m, m))
        n_cand = candidate.sum(dim=2, keepdim=True)
        quantile = (ranks - (m - n_cand)).float() / (n_cand - 1).clamp_min(1).float()
        lo, hi = band
        pool = candidate & (quantile >= lo - 1e-6) & (quantile <= hi + 1e-6)
        pool = torch.where(pool.any(dim=2, keepdim=True), pool, candidate)
    else:
        raise ValueError(f"negatives must be hard or random, got {negatives!r}")
    weights = pool.float().view(b * m, m)
    weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
    neg = torch.multinomial(weights, num_negatives, replacement=True, generator=generator).view(b, m, num_negatives)
    return positive, neg
