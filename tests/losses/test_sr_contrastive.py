"""SR contrastive losses against explicit per-sample loops."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from shared.losses._checks import LossInputError
from shared.losses.sr_contrastive import BidirectionalContrastiveLoss, ConditionalContrastiveLoss


def nce(q: torch.Tensor, pos: torch.Tensor, negs: list[torch.Tensor], t: float) -> float:
    cos = lambda a, b: float(F.cosine_similarity(a, b, dim=0))  # noqa: E731
    logits = [cos(q, pos) / t] + [cos(q, n) / t for n in negs]
    m = max(logits)
    return -(logits[0] - m - math.log(sum(math.exp(v - m) for v in logits)))


def test_bidirectional_matches_loop():
    torch.manual_seed(0)
    u, h, v = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)
    t = 0.2
    loss = BidirectionalContrastiveLoss(t)(u, h, v)
    n = len(u)
    fwd = sum(nce(u[i], h[i], [h[j] for j in range(n) if j != i] + list(v), t) for i in range(n)) / n
    bwd = sum(nce(h[i], u[i], [u[j] for j in range(n) if j != i] + list(v), t) for i in range(n)) / n
    assert float(loss) == pytest.approx(0.5 * (fwd + bwd), rel=1e-5)


def test_bidirectional_prefers_aligned_pairs_and_has_gradients():
    torch.manual_seed(1)
    h = torch.randn(6, 16)
    v = torch.randn(6, 16)
    aligned = BidirectionalContrastiveLoss(0.1)(h + 0.01 * torch.randn(6, 16), h, v)
    shuffled = BidirectionalContrastiveLoss(0.1)(h[torch.randperm(6)], h, v)
    assert aligned < shuffled
    u = torch.randn(6, 16, requires_grad=True)
    BidirectionalContrastiveLoss(0.1)(u, h, v).backward()
    assert u.grad is not None and torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0


def test_conditional_matches_loop_with_film():
    torch.manual_seed(2)
    n, d, c, k, t = 4, 6, 3, 2, 0.3
    loss_fn = ConditionalContrastiveLoss(d, c, t)
    with torch.no_grad():
        loss_fn.film.weight.normal_()
        loss_fn.film.bias.normal_()
    a, p, negs, cond = torch.randn(n, d), torch.randn(n, d), torch.randn(n, k, d), torch.randn(n, c)
    loss = loss_fn(a, p, negs, cond)
    w, b = loss_fn.film.weight.detach(), loss_fn.film.bias.detach()
    ref = 0.0
    for i in range(n):
        film = w @ cond[i] + b
        gamma, beta = film[:d], film[d:]
        e = lambda x: x * (1 + gamma) + beta  # noqa: E731
        ref += nce(e(a[i]), e(p[i]), [e(negs[i, j]) for j in range(k)] + [e(p[j]) for j in range(n) if j != i], t)
    assert float(loss) == pytest.approx(ref / n, rel=1e-5)


def test_conditional_starts_unconditioned_and_rejects_bad_shapes():
    loss_fn = ConditionalContrastiveLoss(4, 2)
    a, p, negs = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2, 4)
    base = loss_fn(a, p, negs, torch.zeros(3, 2))
    assert float(loss_fn(a, p, negs, torch.randn(3, 2))) == pytest.approx(float(base), rel=1e-6)
    with pytest.raises(LossInputError):
        loss_fn(a, p, torch.randn(3, 4), torch.zeros(3, 2))
    with pytest.raises(LossInputError):
        BidirectionalContrastiveLoss(0.1)(torch.randn(1, 4), torch.randn(1, 4), torch.randn(1, 4))
