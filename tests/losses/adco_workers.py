"""AdCo run inside 2 gloo processes by ``test_adco_official.py`` (module level so spawn can import it)."""
from __future__ import annotations

import torch

from shared.losses import AdCoBank, AdCoLoss


def adco_two_ranks(rank: int, world: int, q: torch.Tensor, k: torch.Tensor, bank0: torch.Tensor) -> dict:
    """This rank's half of the batch: encoder loss + its query gradient, then two bank ascent steps."""
    b = q.shape[0] // world
    q_loc = q[rank * b:(rank + 1) * b].clone().requires_grad_(True)
    k_loc = k[rank * b:(rank + 1) * b]
    bank = AdCoBank(dim=q.shape[1], size=bank0.shape[1], temperature=0.05, lr=0.7, momentum=0.9, weight_decay=0.05)
    bank.bank.copy_(bank0)
    loss = AdCoLoss(0.2)(q_loc, k_loc, bank)
    loss.backward()
    for _ in range(2):
        bank.ascent_step(q_loc.detach(), k_loc)
    return {"loss": loss.detach(), "q_grad": q_loc.grad, "bank": bank.bank.clone(), "velocity": bank.velocity.clone()}
