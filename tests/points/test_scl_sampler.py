"""The self-contrastive sampler: non-local most-similar positives, negatives from the tightening band."""
from __future__ import annotations

import torch

from apps.points.scl import band_at, extract_patches, patch_descriptors, sample_pairs, self_similarity


def _setup(m=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(2, m, 5, generator=gen)
    sim = torch.nn.functional.normalize(a, dim=2) @ torch.nn.functional.normalize(a, dim=2).transpose(1, 2)
    anchor_xyz = torch.rand(2, m, 3, generator=gen)
    radius = torch.full((2, m), 0.15)
    return sim, anchor_xyz, radius


def test_positive_is_most_similar_non_local_patch():
    sim, xyz, radius = _setup()
    pos, _ = sample_pairs(sim, xyz, radius, 8, (0.0, 1.0), generator=torch.Generator().manual_seed(0))
    dist = torch.cdist(xyz, xyz)
    for b in range(2):
        for i in range(sim.shape[1]):
            allowed = [j for j in range(sim.shape[1]) if j != i and dist[b, i, j] > radius[b, i]]
            expected = max(allowed, key=lambda j: sim[b, i, j].item())
            assert pos[b, i].item() == expected


def test_hard_negatives_lie_in_the_band_and_exclude_anchor_and_positive():
    sim, xyz, radius = _setup()
    m = sim.shape[1]
    band = (0.5, 0.9)
    pos, neg = sample_pairs(sim, xyz, radius, 32, band, "hard", torch.Generator().manual_seed(1))
    for b in range(2):
        for i in range(m):
            cands = [j for j in range(m) if j not in (i, pos[b, i].item())]
            ranked = sorted(cands, key=lambda j: sim[b, i, j].item())  # least similar first
            quantile = {j: r / (len(cands) - 1) for r, j in enumerate(ranked)}
            for j in neg[b, i].tolist():
                assert j in quantile and band[0] - 1e-6 <= quantile[j] <= band[1] + 1e-6


def test_band_tightens_and_random_ablation_ignores_it():
    assert band_at(0.0, (0.0, 1.0), (0.5, 0.9)) == (0.0, 1.0)
    assert band_at(1.0, (0.0, 1.0), (0.5, 0.9)) == (0.5, 0.9)
    lo, hi = band_at(0.5, (0.0, 1.0), (0.5, 0.9))
    assert abs(lo - 0.25) < 1e-12 and abs(hi - 0.95) < 1e-12
    sim, xyz, radius = _setup(m=40)
    gen = torch.Generator().manual_seed(2)
    _, hard = sample_pairs(sim, xyz, radius, 200, (0.5, 0.9), "hard", gen)
    _, rand = sample_pairs(sim, xyz, radius, 200, (0.5, 0.9), "random", gen)
    mean_sim = lambda idx: torch.gather(sim, 2, idx).mean().item()  # noqa: E731
    assert mean_sim(hard) > mean_sim(rand) + 0.1  # hard negatives are more similar to the anchor
    assert (rand != torch.arange(40).view(1, 40, 1)).all()


def test_repeated_parts_are_self_similar():
    """Two identical legs far apart: a patch on one leg finds its twin on the other as positive."""
    torch.manual_seed(0)
    leg = torch.rand(64, 3) * torch.tensor([0.1, 1.0, 0.1])
    plane = torch.rand(128, 3) * torch.tensor([3.0, 0.0, 1.0]) + torch.tensor([-1.0, 1.2, 0.0])
    xyz = torch.cat([leg, leg + torch.tensor([2.0, 0, 0]), plane]).unsqueeze(0)
    normals = torch.zeros_like(xyz)
    normals[0, :128, 0] = 1.0
    normals[0, 128:, 1] = 1.0
    anchors, patches = extract_patches(xyz, 12, 16)
    desc, radius = patch_descriptors(xyz, normals, anchors, patches)
    sim = self_similarity(desc)
    anchor_xyz = torch.gather(xyz, 1, anchors.unsqueeze(2).expand(-1, -1, 3))
    pos, _ = sample_pairs(sim, anchor_xyz, radius, 4, (0.0, 1.0))
    on_leg = anchors[0] < 128
    assert on_leg.sum() >= 2
    assert (pos[0][on_leg] < 128).all()  # leg patches pair with leg patches, not with the table top
