"""Functions run inside 2 gloo processes by ``test_ddp.py`` (module level so spawn can import them)."""
from __future__ import annotations

import torch

from shared.losses import AdCoBank, HCLLoss, MoCoQueue, NTXentLoss, WMSELoss


def local_rows(full: torch.Tensor, rank: int, world: int, views: int = 1) -> torch.Tensor:
    """This rank's share of a (views*N, D) view-stacked batch: its rows of every view."""
    per_view = full.shape[0] // views
    b = per_view // world
    return torch.cat([full[v * per_view + rank * b: v * per_view + (rank + 1) * b] for v in range(views)])


def gathered_losses(rank: int, world: int, x0: torch.Tensor, x1: torch.Tensor, xw: torch.Tensor,
                    weight: torch.Tensor) -> dict:
    """Each loss with gather_distributed=True on this rank's slice through a shared linear layer."""
    out = {}
    specs = {
        "ntxent": (NTXentLoss(0.2, gather_distributed=True), 2),
        "hcl": (HCLLoss(0.5, tau_plus=0.1, beta=1.0, gather_distributed=True), 2),
    }
    for name, (loss_fn, _) in specs.items():
        w = weight.clone().requires_grad_(True)
        a = local_rows(x0, rank, world).clone().requires_grad_(True)
        b = local_rows(x1, rank, world).clone().requires_grad_(True)
        loss = loss_fn(a @ w, b @ w)
        loss.backward()
        out[name] = {"loss": loss.detach(), "w_grad": w.grad, "x0_grad": a.grad, "x1_grad": b.grad}
    for name, w_size in (("wmse_full", xw.shape[0] // 3), ("wmse_sub", 8)):
        torch.manual_seed(1234 + 7 * rank)  # rank 1 draws differently: rank 0's permutation is broadcast
        w = weight.clone().requires_grad_(True)
        xl = local_rows(xw, rank, world, views=3).clone().requires_grad_(True)
        loss = WMSELoss(num_views=3, w_size=w_size, w_iter=2, gather_distributed=True)(xl @ w)
        loss.backward()
        out[name] = {"loss": loss.detach(), "w_grad": w.grad, "x_grad": xl.grad}
    # AdCo: bank gradients are averaged, so both ranks hold the same bank after the step.
    torch.manual_seed(0)
    bank = AdCoBank(dim=weight.shape[1], size=12, temperature=0.05, lr=1.0)
    bank.init_from_keys(local_rows(x1, rank, world) @ weight)
    bank.ascent_step(local_rows(x0, rank, world) @ weight, local_rows(x1, rank, world) @ weight)
    out["adco_bank"] = bank.bank.clone()
    # MoCo queue: keys of both ranks are enqueued on every rank.
    torch.manual_seed(0)
    queue = MoCoQueue(dim=weight.shape[1], size=64)
    queue.enqueue(local_rows(x0, rank, world) @ weight)
    out["queue"] = queue.queue.clone()
    return out
