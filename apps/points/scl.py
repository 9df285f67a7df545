"""Self-contrastive sampling (SCL): patches, their self-similarity, positives and banded hard negatives.

Two implementations live here. The official one (pkudba/SCL, the default; see the second half of
this file): a Siamese patch network gives the self-similarity, the hard negatives come from an
absolute cosine band, the positive is the dilated patch. The first half is the earlier *descriptor*
variant, kept as the named ablation ``similarity=descriptor``:

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
from torch import nn

from shared.pointnets import EdgeConv, farthest_point_sample, knn


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


# ---- SCL as the official code (pkudba/SCL) -------------------------------------------------------
# Self-similarity comes from a Siamese patch network trained first (``mode=siamese``): a patch and
# the same patch of a randomly rotated copy of the cloud are a positive pair, a patch and another
# anchor's patch a negative pair (binary classifier on the concatenated patch features). Pretraining
# then takes, per cloud, the cosine between the anchors' Siamese patch features and samples hard
# negatives from those whose cosine lies strictly inside an absolute band [w_l, w_u] that tightens
# over training; the positive is the *dilated* patch around the same anchor.

def dilated_patches(xyz: torch.Tensor, anchors: torch.Tensor, patch_size: int, dilation: int = 2) -> torch.Tensor:
    """(B, M, P) every ``dilation``-th of the ``dilation * patch_size`` nearest points of each anchor
    (official: the 320-NN graph keeping every second neighbour, for 160-point patches)."""
    centres = torch.gather(xyz, 1, anchors.unsqueeze(2).expand(-1, -1, 3))
    k = min(patch_size * dilation, xyz.shape[1])
    return knn(xyz, k, query=centres)[:, :, ::dilation]


def random_rotation(generator: torch.Generator | None = None, degrees: float = 90.0) -> torch.Tensor:
    """(3, 3) rotation about one random coordinate axis by a uniform angle in [-degrees, degrees]
    (the official Siamese positive: the same cloud, points and normals, so rotated)."""
    angle = (torch.rand((), generator=generator) * 2 - 1) * degrees * torch.pi / 180
    axis = int(torch.randint(0, 3, (), generator=generator))
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.eye(3)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot


class SiamesePatchNet(nn.Module):
    """The Siamese patch network: an EdgeConv with a two-layer MLP (official ``MultiEdgeConvolution``
    6 -> 64 -> 64, k 20), a 1x1 conv to ``out_dim`` (32, the official ``Tail``), patch feature = a
    linear map of the mean point feature over the patch (a GCN-style aggregation), and a pair
    classifier -> {different, same}.

    Deviation: the official pair classifier is a linear layer on [feature_a, feature_b], which is
    W1 a + W2 b and so cannot compare a with b (it can only tell whether b looks rotated); ours is
    linear on [a * b, |a - b|], which can."""

    def __init__(self, k: int = 20, width: int = 64, out_dim: int = 32) -> None:
        super().__init__()
        self.k = k
        self.edge = EdgeConv(6, width, k)
        self.edge.mlp = nn.Sequential(nn.Conv2d(12, width, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
                                      nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2))
        self.tail = nn.Sequential(nn.Conv1d(width, out_dim, 1, bias=False), nn.BatchNorm1d(out_dim), nn.LeakyReLU(0.2))
        self.aggregate = nn.Linear(out_dim, out_dim)
        self.pair = nn.Linear(2 * out_dim, 2)

    def point_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 6, N) xyz + normals -> (B, out_dim, N); the graph is built on xyz."""
        idx = knn(x[:, :3].transpose(1, 2).contiguous().detach(), min(self.k, x.shape[2]))
        return self.tail(self.edge(x, idx))

    def patch_features(self, x: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """(B, M, out_dim) features of the patches (B, M, P) of clouds ``x``."""
        feats = self.point_features(x).transpose(1, 2)                          # (B, N, D)
        return self.aggregate(_gather_points(feats, patches).mean(dim=2))

    def pair_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(..., 2) logits of {different, same} for feature pairs (a, b)."""
        return self.pair(torch.cat([a * b, (a - b).abs()], dim=-1))


@torch.no_grad()
def siamese_similarity(net: SiamesePatchNet, x: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """(B, M, M) cosine between the anchors' Siamese patch features (eval mode, no gradient)."""
    was_training = net.training
    net.eval()
    f = torch.nn.functional.normalize(net.patch_features(x, patches), dim=2)
    net.train(was_training)
    return f @ f.transpose(1, 2)


def official_band(progress: float, total_epochs: int = 256) -> tuple[float, float]:
    """The official threshold schedule at training ``progress`` in [0, 1], on the official 256-epoch
    clock: epochs < 8: (0.3, 1); 8-27: (0.3 + 0.02 (e - 7), 1 - 0.02 (e - 7)); >= 28: (0.5, 0.75).
    From epoch 25 to 27 this gives w_l >= w_u: an EMPTY band (see :func:`sample_band_negatives`)."""
    epoch = int(min(max(progress, 0.0), 1.0) * total_epochs)
    if epoch < 8:
        return 0.3, 1.0
    if epoch < 28:
        return 0.3 + 0.02 * (epoch - 7), 1.0 - 0.02 * (epoch - 7)
    return 0.5, 0.75


@torch.no_grad()
def sample_band_negatives(sim: torch.Tensor, band: tuple[float, float], num_negatives: int,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative anchor indices (B, M, K) whose cosine to the anchor lies strictly inside ``band``
    (the anchor itself is never one), and a (B, M) bool "band had no candidate" mask.

    Guard (the official code then takes anchor 0, which can be the anchor itself): when the band
    holds no other anchor — always the case for an empty band w_l >= w_u — the negatives are drawn
    from the ``num_negatives`` other anchors whose cosine lies nearest to the band (distance to
    the interval [min, max] of its two ends), so the loss always has real negatives.
    """
    b, m, _ = sim.shape
    lo, hi = band
    eye = torch.eye(m, dtype=torch.bool, device=sim.device).unsqueeze(0)
    inside = (sim > lo) & (sim < hi) & ~eye
    empty = ~inside.any(dim=2)
    a, z = min(lo, hi), max(lo, hi)
    gap = (a - sim).clamp_min(0) + (sim - z).clamp_min(0)
    gap = gap.masked_fill(eye, float("inf"))
    nearest = gap.topk(min(num_negatives, max(m - 1, 1)), dim=2, largest=False).indices
    fallback = torch.zeros_like(inside).scatter_(2, nearest, True) & ~eye
    pool = torch.where(empty.unsqueeze(2), fallback, inside)
    weights = pool.float().view(b * m, m)
    weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, (~eye).float().expand(b, m, m).reshape(b * m, m))
    neg = torch.multinomial(weights, num_negatives, replacement=True, generator=generator).view(b, m, num_negatives)
    return neg, empty
