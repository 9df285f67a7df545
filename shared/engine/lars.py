"""LARS (You et al. 2017) around SGD with momentum, as BYOL / SCRL pretrain with it (torchlars' rule).

Per parameter of a group with ``lars_adaptation`` (default True), before the SGD step:
``local_lr = trust_coef * ||w|| / (||g|| + weight_decay * ||w|| + eps)`` (1 when ``||w||`` or ``||g||``
is 0), ``g <- (g + weight_decay * w) * local_lr``; then ``v <- momentum * v + g``, ``w <- w - lr * v``.
A group with ``lars_adaptation: False`` (BatchNorm and biases, by convention with ``weight_decay``
0) takes plain SGD steps.

Example::

    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    opt = LARS([{"params": decay}, {"params": other, "lars_adaptation": False, "weight_decay": 0.0}],
               lr=0.45, momentum=0.9, weight_decay=1e-6)
"""
from __future__ import annotations

from typing import Any, Iterable

import torch


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling; see the module docstring."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coef: float = 0.001, eps: float = 1e-8) -> None:
        if lr <= 0 or momentum < 0 or weight_decay < 0 or trust_coef <= 0 or eps < 0:
            raise ValueError("LARS: lr and trust_coef must be > 0; momentum, weight_decay, eps >= 0")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coef=trust_coef, eps=eps,
                        lars_adaptation=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            wd, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["lars_adaptation"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(grad)
                    local = group["trust_coef"] * w_norm / (g_norm + wd * w_norm + group["eps"])
                    local = torch.where((w_norm > 0) & (g_norm > 0), local, torch.ones_like(local))
                    grad = (grad + wd * p) * local
                elif wd:
                    grad = grad + wd * p
                state = self.state[p]
                if momentum:
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = grad.detach().clone()
                    else:
                        buf.mul_(momentum).add_(grad)
                    grad = buf
                p.add_(grad, alpha=-group["lr"])
        return loss
