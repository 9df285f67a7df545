"""HCL against the raw-exp formula of joshr17/HCL written out here, the debiased loss, and NT-Xent."""
from __future__ import annotations

import math

import pytest
import torch

from shared.losses import HCLLoss, NTXentLoss


def _pair_masks(batch: int) -> torch.Tensor:
    """(2B, 2B) True on the 2B-2 negatives of each row (not itself, not its partner)."""
    mask = torch.ones(2 * batch, 2 * batch, dtype=torch.bool)
    for i in range(batch):
        for a, b in ((i, i), (i, i + batch), (i + batch, i), (i + batch, i + batch)):
            mask[a, b] = False
    return mask


def hcl_raw(z0: torch.Tensor, z1: torch.Tensor, t: float, tau_plus: float, beta: float) -> torch.Tensor:
    """The official estimator with plain exp (fine in float64 at moderate t)."""
    batch = z0.shape[0]
    o0 = z0 / z0.norm(dim=1, keepdim=True)
    o1 = z1 / z1.norm(dim=1, keepdim=True)
    out = torch.cat([o0, o1])
    neg = torch.exp(out @ out.T / t)[_pair_masks(batch)].view(2 * batch, -1)
    pos = torch.exp((o0 * o1).sum(dim=1) / t)
    pos = torch.cat([pos, pos])
    n = 2 * batch - 2
    imp = (beta * neg.log()).exp()
    reweight = (imp * neg).sum(dim=1) / imp.mean(dim=1)
    ng = (-tau_plus * n * pos + reweight) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * math.exp(-1 / t))
    return (-torch.log(pos / (pos + ng))).mean()


def debiased(z0: torch.Tensor, z1: torch.Tensor, t: float, tau_plus: float) -> torch.Tensor:
    """Chuang et al. 2020 debiased contrastive loss, per row in a loop."""
    batch = z0.shape[0]
    out = torch.cat([z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)])
    n = 2 * batch - 2
    total = out.new_zeros(())
    for i in range(2 * batch):
        partner = (i + batch) % (2 * batch)
        pos = torch.exp(out[i] @ out[partner] / t)
        negs = [torch.exp(out[i] @ out[j] / t) for j in range(2 * batch) if j not in (i, partner)]
        ng = (sum(negs) - n * tau_plus * pos) / (1 - tau_plus)
        ng = torch.clamp(ng, min=n * math.exp(-1 / t))
        total = total - torch.log(pos / (pos + ng))
    return total / (2 * batch)


def _inputs(seed: int, batch: int = 6, dim: int = 5, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, dim, generator=gen, dtype=dtype).requires_grad_(True),
            torch.randn(batch, dim, generator=gen, dtype=dtype).requires_grad_(True))


def test_beta0_tau0_equals_ntxent() -> None:
    z0, z1 = _inputs(0)
    for t in (0.5, 0.1):
        hcl = HCLLoss(temperature=t, tau_plus=0.0, beta=0.0)(z0, z1)
        ntx = NTXentLoss(temperature=t)(z0, z1)
        torch.testing.assert_close(hcl, ntx, rtol=1e-12, atol=1e-12)
        for a, b in zip(torch.autograd.grad(hcl, (z0, z1)), torch.autograd.grad(ntx, (z0, z1))):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("tau_plus", [0.05, 0.1, 0.3])
def test_beta0_is_debiased_loss(tau_plus: float) -> None:
    z0, z1 = _inputs(1)
    ours = HCLLoss(temperature=0.5, tau_plus=tau_plus, beta=0.0)(z0, z1)
    torch.testing.assert_close(ours, debiased(z0, z1, 0.5, tau_plus), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta,tau_plus", [(1.0, 0.1), (0.5, 0.0), (2.0, 0.2)])
def test_matches_raw_exp_formula(beta: float, tau_plus: float) -> None:
    z0, z1 = _inputs(2)
    ours = HCLLoss(temperature=0.5, tau_plus=tau_plus, beta=beta)(z0, z1)
    ref = hcl_raw(z0, z1, 0.5, tau_plus, beta)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, (z0, z1)), torch.autograd.grad(ref, (z0, z1))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_clamp_branch_matches_raw_formula() -> None:
    # Half the pairs nearly aligned: with tau_plus=0.3 some rows get Ng > clamp, some 0 < Ng < clamp,
    # some Ng < 0 (checked below), so every branch of the log-space estimator is exercised.
    gen = torch.Generator().manual_seed(3)
    z0 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    z1 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    z1[:3] = z0[:3] + 0.05 * z1[:3]
    t, tau_plus = 0.5, 0.3
    out = torch.cat([z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)])
    neg = torch.exp(out @ out.T / t)[_pair_masks(6)].view(12, -1)
    pos = torch.exp((out[:6] * out[6:]).sum(dim=1) / t).repeat(2)
    ng = (-tau_plus * 10 * pos + (neg * neg).sum(dim=1) / neg.mean(dim=1)) / (1 - tau_plus)
    floor = 10 * math.exp(-1 / t)
    assert (ng > floor).any() and ((ng > 0) & (ng < floor)).any() and (ng < 0).any()
    z0.requires_grad_(True)
    z1.requires_grad_(True)
    ours = HCLLoss(temperature=t, tau_plus=tau_plus, beta=1.0)(z0, z1)
    ref = hcl_raw(z0, z1, t, tau_plus, 1.0)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, (z0, z1)), torch.autograd.grad(ref, (z0, z1))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_gradcheck() -> None:
    z0, z1 = _inputs(4, batch=4, dim=3)
    for tau_plus, beta in ((0.1, 1.0), (0.0, 0.5)):
        assert torch.autograd.gradcheck(lambda a, b: HCLLoss(0.5, tau_plus, beta)(a, b), (z0, z1))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_small_temperature_finite(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(5)
    z0 = torch.randn(32, 16, generator=gen).to(dtype).requires_grad_(True)
    z1 = (z0.detach().float() + 0.1 * torch.randn(32, 16, generator=gen)).to(dtype).requires_grad_(True)
    loss = HCLLoss(temperature=0.1, tau_plus=0.1, beta=1.0)(z0, z1)
    assert torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(z0.grad.float()).all() and torch.isfinite(z1.grad.float()).all()
    # and the raw formula really would overflow in that dtype: exp((1+β)/t) = e^20 > fp16 max
    assert not torch.isfinite(torch.exp(torch.tensor(20.0, dtype=torch.float16)))
    ref = hcl_raw(z0.detach().double(), z1.detach().double(), 0.1, 0.1, 1.0)
    assert abs(loss.item() - ref.item()) < 0.05 * abs(ref.item()) + 0.05


def test_float32_tiny_temperature_no_overflow() -> None:
    # t=0.01: exp(2/t) overflows float32; the log-space loss stays finite and matches float64.
    z0, z1 = _inputs(6, batch=8, dim=4, dtype=torch.float32)
    ours = HCLLoss(temperature=0.01, tau_plus=0.1, beta=1.0)(z0, z1)
    ours64 = HCLLoss(temperature=0.01, tau_plus=0.1, beta=1.0)(z0.double(), z1.double())
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours.double(), ours64, rtol=1e-4, atol=1e-3)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="tau_plus"):
        HCLLoss(tau_plus=1.0)
    with pytest.raises(ValueError, match="beta"):
        HCLLoss(beta=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        HCLLoss()(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        HCLLoss()(torch.randn(1, 3), torch.randn(1, 3))
