"""Chunked kNN equals the plain cdist().topk(); FPS; DGCNN is in the shared registry."""
from __future__ import annotations

import torch

from shared.backbones import BACKBONES, build_backbone
from shared.pointnets import farthest_point_sample, knn


def test_chunked_knn_equals_cdist_topk():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 700, 3, generator=gen)
    plain = torch.cdist(x, x).topk(20, largest=False).indices
    for max_elements in (700, 700 * 37, 1 << 24):  # one row per chunk, ragged chunks, one chunk
        chunked = knn(x, 20, max_elements=max_elements)
        assert torch.equal(chunked, plain)
    q = torch.randn(2, 50, 3, generator=gen)
    assert torch.equal(knn(x, 5, query=q, max_elements=1000), torch.cdist(q, x).topk(5, largest=False).indices)
    feats = torch.randn(300, 16, generator=gen)  # feature-space graphs (dynamic EdgeConv), unbatched input
    assert torch.equal(knn(feats, 8, max_elements=4096), torch.cdist(feats, feats).topk(8, largest=False).indices)


def test_farthest_point_sampling_spreads_points():
    x = torch.cat([torch.zeros(50, 3), torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])]).unsqueeze(0)
    idx = farthest_point_sample(x, 4)
    assert idx[0, 0] == 0 and set(idx[0, 1:].tolist()) == {50, 51, 52}


def test_dgcnn_is_registered_and_shapes():
    assert "dgcnn" in BACKBONES
    torch.manual_seed(0)
    net = build_backbone("dgcnn", in_channels=6, k=8, width=8, global_dim=16)
    point_feats, glob = net(torch.randn(2, 6, 40))
    assert point_feats.shape == (2, 3 * 8 + 16, 40) and glob.shape == (2, 16)
    # permutation equivariance of per-point features (eval mode, dynamic graphs)
    net.eval()
    x = torch.randn(1, 6, 40)
    perm = torch.randperm(40)
    a, _ = net(x)
    b, _ = net(x[:, :, perm])
    assert torch.allclose(a[:, :, perm], b, atol=1e-5)
