"""NT-Xent and InfoNCE against explicit per-row loops and lightly's NTXentLoss."""
from __future__ import annotations

import math

import pytest
import torch

from shared.losses import InfoNCE, LossInputError, NTXentLoss


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def ntxent_loop(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Reference: for each of the 2B rows, -log(exp(s_pos/t) / sum_{j != i} exp(s_ij/t))."""
    z = _unit(torch.cat([z0, z1]))
    n = z.shape[0]
    total = z.new_zeros(())
    for i in range(n):
        partner = (i + n // 2) % n
        denom = sum(torch.exp(z[i] @ z[j] / t) for j in range(n) if j != i)
        total = total - torch.log(torch.exp(z[i] @ z[partner] / t) / denom)
    return total / n


@pytest.mark.parametrize("temperature", [0.5, 0.1, 0.02])
def test_ntxent_matches_loop(temperature: float) -> None:
    gen = torch.Generator().manual_seed(1)
    z0 = torch.randn(6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    z1 = torch.randn(6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    ours = NTXentLoss(temperature)(z0, z1)
    ref = ntxent_loop(z0, z1, temperature)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    g_ours = torch.autograd.grad(ours, (z0, z1))
    g_ref = torch.autograd.grad(ref, (z0, z1))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_ntxent_small_temperature_row_max_path() -> None:
    # t=0.01 in float32 takes the row-max path (2/t exceeds exp's float32 range); compare with float64.
    gen = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    ours = NTXentLoss(0.01)(z0, z1)
    ref = ntxent_loop(z0.double(), z1.double(), 0.01)
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-4)


def test_ntxent_gradcheck() -> None:
    gen = torch.Generator().manual_seed(3)
    z0 = torch.randn(4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    z1 = torch.randn(4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: NTXentLoss(0.3)(a, b), (z0, z1))


def test_ntxent_matches_lightly() -> None:
    try:
        from lightly.loss import NTXentLoss as LightlyNTXent
    except Exception as exc:  # a broken install must fail loudly, not skip
        pytest.fail(f"lightly's NTXentLoss cannot be imported: {exc!r}")
    gen = torch.Generator().manual_seed(4)
    z0 = torch.randn(64, 32, generator=gen, requires_grad=True)
    z1 = torch.randn(64, 32, generator=gen, requires_grad=True)
    for t in (0.5, 0.1):
        ours = NTXentLoss(t)(z0, z1)
        theirs = LightlyNTXent(temperature=t)(z0, z1)
        assert abs(ours.item() - theirs.item()) < 1e-5
        g_ours = torch.autograd.grad(ours, (z0, z1))
        g_theirs = torch.autograd.grad(theirs, (z0, z1))
        for a, b in zip(g_ours, g_theirs):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_ntxent_bad_inputs() -> None:
    loss = NTXentLoss()
    with pytest.raises(ValueError, match=r"same shape"):
        loss(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\(B, D\)|shape"):
        loss(torch.randn(4, 3, 2), torch.randn(4, 3, 2))
    with pytest.raises(LossInputError, match="floating-point"):
        loss(torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=0.0)


def infonce_loop(q, k, negs, t):
    """Reference: per query, -log(exp(q.k/t) / (exp(q.k/t) + sum_n exp(q.n/t))), all unit vectors."""
    q, k = _unit(q), _unit(k)
    total = q.new_zeros(())
    for i in range(q.shape[0]):
        neg_i = negs if negs.dim() == 2 else negs[i]
        neg_i = _unit(neg_i)
        pos = torch.exp(q[i] @ k[i] / t)
        total = total - torch.log(pos / (pos + torch.exp(neg_i @ q[i] / t).sum()))
    return total / q.shape[0]


def test_infonce_shared_and_per_query_negatives() -> None:
    gen = torch.Generator().manual_seed(5)
    q, k = torch.randn(5, 4, generator=gen, dtype=torch.float64), torch.randn(5, 4, generator=gen, dtype=torch.float64)
    shared_negs = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    per_query = torch.randn(5, 3, 4, generator=gen, dtype=torch.float64)
    loss = InfoNCE(0.2)
    torch.testing.assert_close(loss(q, k, shared_negs), infonce_loop(q, k, shared_negs, 0.2))
    torch.testing.assert_close(loss(q, k, per_query), infonce_loop(q, k, per_query, 0.2))
    # no negatives: the other rows' positives are the negatives
    in_batch = torch.stack([torch.cat([k[:i], k[i + 1:]]) for i in range(5)])
    torch.testing.assert_close(loss(q, k), infonce_loop(q, k, in_batch, 0.2))


def test_infonce_bad_negatives() -> None:
    with pytest.raises(ValueError, match=r"negatives must have shape"):
        InfoNCE()(torch.randn(4, 3), torch.randn(4, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"positive must have shape \(4, 3\)"):
        InfoNCE()(torch.randn(4, 3), torch.randn(3, 3))


def test_ntxent_two_rows_is_zero() -> None:
    # B=1: the only candidate is the positive, so the loss is exactly log(1) = 0.
    z = torch.randn(1, 3, requires_grad=True)
    out = NTXentLoss(0.5)(z, torch.randn(1, 3))
    assert math.isclose(out.item(), 0.0, abs_tol=1e-6)
