"""Gathered losses on 2 gloo ranks equal the single-process loss (and gradients) on the whole batch."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from shared.losses import AdCoBank, HCLLoss, NTXentLoss, WMSELoss

from .ddp_workers import local_rows

WORLD = 2


@pytest.fixture(scope="module")
def ddp_results():
    try:
        from shared.testing import run_ddp
    except ImportError as exc:
        pytest.fail(f"shared.testing.run_ddp is missing: {exc!r}")
    from .ddp_workers import gathered_losses
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 6, generator=gen)
    x1 = x0 + 0.5 * torch.randn(16, 6, generator=gen)
    xw = torch.randn(3 * 32, 6, generator=gen)
    weight = torch.randn(6, 4, generator=gen)
    results = run_ddp(gathered_losses, world_size=WORLD, args=(x0, x1, xw, weight))
    return x0, x1, xw, weight, results


@pytest.mark.parametrize("name", ["ntxent", "hcl"])
def test_local_vs_gathered_equals_single_process(ddp_results, name: str) -> None:
    x0, x1, _, weight, results = ddp_results
    loss_fn = NTXentLoss(0.2) if name == "ntxent" else HCLLoss(0.5, tau_plus=0.1, beta=1.0)
    w = weight.clone().requires_grad_(True)
    a, b = x0.clone().requires_grad_(True), x1.clone().requires_grad_(True)
    full = loss_fn(a @ w, b @ w)
    full.backward()
    per_rank = [r[name] for r in results]
    # each rank averages over its local anchors: the mean over ranks is the full-batch loss
    torch.testing.assert_close(torch.stack([r["loss"] for r in per_rank]).mean(), full.detach())
    # DDP averages parameter gradients over ranks
    torch.testing.assert_close(torch.stack([r["w_grad"] for r in per_rank]).mean(0), w.grad, rtol=1e-4, atol=1e-6)
    # input gradients (summed over ranks by gather_with_grad) / world = the full gradient's slice
    for rank, r in enumerate(per_rank):
        torch.testing.assert_close(r["x0_grad"] / WORLD, local_rows(a.grad, rank, WORLD), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(r["x1_grad"] / WORLD, local_rows(b.grad, rank, WORLD), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["wmse_full", "wmse_sub"])
def test_wmse_gathered_equals_single_process(ddp_results, name: str) -> None:
    _, _, xw, weight, results = ddp_results
    w_size = xw.shape[0] // 3 if name == "wmse_full" else 8
    torch.manual_seed(1234)  # rank 0's seed: its permutation is the one every rank uses
    w = weight.clone().requires_grad_(True)
    x = xw.clone().requires_grad_(True)
    full = WMSELoss(num_views=3, w_size=w_size, w_iter=2)(x @ w)
    full.backward()
    per_rank = [r[name] for r in results]
    for r in per_rank:  # every rank computes the loss of the whole gathered batch
        torch.testing.assert_close(r["loss"], full.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.stack([r["w_grad"] for r in per_rank]).mean(0), w.grad, rtol=1e-4, atol=1e-5)
    for rank, r in enumerate(per_rank):
        torch.testing.assert_close(r["x_grad"] / WORLD, local_rows(x.grad, rank, WORLD, views=3),
                                   rtol=1e-4, atol=1e-6)


def test_adco_banks_identical_and_equal_single_process(ddp_results) -> None:
    x0, x1, _, weight, results = ddp_results
    torch.testing.assert_close(results[0]["adco_bank"], results[1]["adco_bank"], rtol=0, atol=0)
    torch.manual_seed(0)
    bank = AdCoBank(dim=weight.shape[1], size=12, temperature=0.05, lr=1.0)
    # single process: the gathered keys are rank 0's then rank 1's rows, i.e. the whole batch
    bank.init_from_keys(x1 @ weight)
    bank.ascent_step(x0 @ weight, x1 @ weight)
    torch.testing.assert_close(results[0]["adco_bank"], bank.bank, rtol=1e-4, atol=1e-6)


def test_moco_queue_gets_keys_of_all_ranks(ddp_results) -> None:
    x0, _, _, weight, results = ddp_results
    torch.testing.assert_close(results[0]["queue"], results[1]["queue"], rtol=0, atol=0)
    torch.testing.assert_close(results[0]["queue"][:16], F.normalize(x0 @ weight, dim=1), rtol=1e-5, atol=1e-6)
