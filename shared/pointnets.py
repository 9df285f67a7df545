"""Point-cloud backbones and their geometric building blocks: chunked kNN, farthest-point sampling, DGCNN.

``knn(x, k)`` bounds memory by computing the distance matrix in row chunks (``max_elements`` distances
at a time), so a 100k-point cloud never materialises a 100k x 100k matrix; it returns the same
neighbours as ``torch.cdist(x, x).topk(k, largest=False)``.

``DGCNN`` (Wang et al., "Dynamic Graph CNN", EdgeConv) is registered as the backbone ``dgcnn`` in
:data:`shared.backbones.BACKBONES`; it maps ``(B, C, N)`` (xyz + normals: C = 6) to per-point features
``(B, point_dim, N)`` and a global feature ``(B, global_dim)``.

Example::

    from shared.backbones import build_backbone
    net = build_backbone("dgcnn", in_channels=6, k=20, width=64)
    point_feats, global_feat = net(torch.randn(2, 6, 1024))
"""
from __future__ import annotations

import torch
from torch import nn


def knn(x: torch.Tensor, k: int, query: torch.Tensor | None = None, max_elements: int = 1 << 24,
        include_self: bool = True) -> torch.Tensor:
    """Indices ``(B, M, k)`` of the ``k`` nearest rows of ``x`` (B, N, D) for each row of ``query`` (B, M, D).

    ``query`` defaults to ``x``. Squared Euclidean distances are computed for blocks of query rows
    (all batch items together, ``max(1, max_elements // (B * N))`` rows per block), so peak
    extra memory is about ``max_elements`` floats plus the output. Neighbours come sorted nearest first.
    """
    if x.dim() == 2:
        x = x.unsqueeze(0)
        query = None if query is None else query.unsqueeze(0)
        return knn(x, k, query, max_elements, include_self).squeeze(0)
    q = x if query is None else query
    b, n, _ = x.shape
    m = q.shape[1]
    if k > n:
        raise ValueError(f"knn: k={k} exceeds the number of points {n}")
    rows = max(1, max_elements // max(b * n, 1))  # query rows per chunk, all batch items at once
    out = torch.empty(b, m, k, dtype=torch.long, device=x.device)
    x_sq = (x * x).sum(-1).unsqueeze(1)  # (B, 1, N)
    x_t = x.transpose(1, 2)
    offset = 0 if include_self or query is not None else 1
    for start in range(0, m, rows):
        qc = q[:, start:start + rows]
        dist = (qc * qc).sum(-1, keepdim=True) - 2.0 * torch.bmm(qc, x_t) + x_sq
        idx = dist.topk(min(k + offset, n), dim=2, largest=False).indices
        out[:, start:start + rows] = idx[:, :, offset:offset + k] if offset else idx
    return out


def farthest_point_sample(xyz: torch.Tensor, m: int, start: int | torch.Tensor = 0) -> torch.Tensor:
    """Indices ``(B, m)`` of farthest-point-sampled points of ``xyz`` (B, N, 3), starting at index ``start``."""
    b, n, _ = xyz.shape
    m = min(m, n)
    idx = torch.zeros(b, m, dtype=torch.long, device=xyz.device)
    dist = torch.full((b, n), float("inf"), device=xyz.device, dtype=xyz.dtype)
    current = torch.as_tensor(start, device=xyz.device).expand(b).clone().long()
    arange = torch.arange(b, device=xyz.device)
    for i in range(m):
        idx[:, i] = current
        centre = xyz[arange, current].unsqueeze(1)
        dist = torch.minimum(dist, ((xyz - centre) ** 2).sum(-1))
        current = dist.argmax(dim=1)
    return idx


def edge_features(x: torch.Tensor, k: int, idx: torch.Tensor | None = None, max_elements: int = 1 << 24) -> torch.Tensor:
    """EdgeConv input ``(B, 2C, N, k)``: ``[x_j - x_i, x_i]`` over the kNN graph of ``x`` (B, C, N)."""
    b, c, n = x.shape
    pts = x.transpose(1, 2).contiguous()  # (B, N, C)
    if idx is None:
        idx = knn(pts.detach(), min(k, n), max_elements=max_elements)
    kk = idx.shape[-1]
    base = torch.arange(b, device=x.device).view(b, 1, 1) * n
    neighbours = pts.reshape(b * n, c)[(idx + base).reshape(-1)].view(b, n, kk, c)
    centre = pts.unsqueeze(2).expand(b, n, kk, c)
    return torch.cat([neighbours - centre, centre], dim=3).permute(0, 3, 1, 2).contiguous()


class EdgeConv(nn.Module):
    """One EdgeConv layer: shared MLP on edge features, max over the k neighbours."""

    def __init__(self, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Conv2d(2 * in_channels, out_channels, 1, bias=False),
                                 nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(edge_features(x, self.k, idx)).max(dim=-1).values


class DGCNN(nn.Module):
    """DGCNN segmentation-style encoder: 3 EdgeConv layers (dynamic graphs), a 1x1 conv to ``global_dim``
    max-pooled into a global feature, per-point features = concat(local features, global feature).

    The first graph is built on xyz only (the first 3 input channels), later graphs in feature
    space (dynamic), as in the paper. ``width`` scales the layer widths (paper: 64).
    """

    def __init__(self, in_channels: int = 6, k: int = 20, width: int = 64, global_dim: int = 512) -> None:
        super().__init__()
        self.k = k
        self.in_channels = in_channels
        self.conv1 = EdgeConv(in_channels, width, k)
        self.conv2 = EdgeConv(width, width, k)
        self.conv3 = EdgeConv(width, width, k)
        self.fuse = nn.Sequential(nn.Conv1d(3 * width, global_dim, 1, bias=False),
                                  nn.BatchNorm1d(global_dim), nn.LeakyReLU(0.2))
        self.local_dim = 3 * width
        self.global_dim = global_dim
        self.point_dim = 3 * width + global_dim
        self.out_dim = global_dim  # pooled feature size, like the image backbones
        self.arch = {"in_channels": in_channels, "k": k, "width": width, "global_dim": global_dim}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, C, N) -> per-point features (B, point_dim, N), global feature (B, global_dim)."""
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"DGCNN expects (B, {self.in_channels}, N) input, got {tuple(x.shape)}")
        n = x.shape[2]
        idx = knn(x[:, :3].transpose(1, 2).contiguous().detach(), min(self.k, n))
        x1 = self.conv1(x, idx)
        x2 = self.conv2(x1)
        x3 = self.conv3(x2)
        local = torch.cat([x1, x2, x3], dim=1)
        glob = self.fuse(local).max(dim=2).values
        return torch.cat([local, glob.unsqueeze(2).expand(-1, -1, n)], dim=1), glob


def build_dgcnn(in_channels: int = 6, k: int = 20, width: int = 64, global_dim: int = 512) -> DGCNN:
    """Factory registered as ``dgcnn`` in :data:`shared.backbones.BACKBONES`."""
    return DGCNN(in_channels, k, width, global_dim)
