"""Momentum (EMA) target networks: BYOL/MoCo/CURL/SCRL keep a slowly moving copy of the online net."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy of ``module`` (no gradients) to serve as the EMA target.

    Example::

        target = make_momentum_copy(online)
        ...  # after optimizer.step():
        momentum_update(target, online, m=0.99)
    """
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, m: float) -> None:
    """target ← m·target + (1−m)·online for parameters; buffers (e.g. BN statistics) are copied."""
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum_update: m must be in [0, 1], got {m}")
    t_params = list(target.parameters())
    o_params = list(online.parameters())
    if len(t_params) != len(o_params):
        raise ValueError(f"momentum_update: target has {len(t_params)} parameters, online {len(o_params)}; "
                         "the target must be a copy of the online module")
    for tp, op in zip(t_params, o_params):
        if tp.shape != op.shape:
            raise ValueError(f"momentum_update: parameter shapes differ ({tuple(tp.shape)} vs {tuple(op.shape)})")
    if t_params:
        torch._foreach_mul_(t_params, m)
        torch._foreach_add_(t_params, [p.detach() for p in o_params], alpha=1.0 - m)
    for tb, ob in zip(target.buffers(), online.buffers()):
        tb.copy_(ob)


def cosine_momentum(step: int, max_steps: int, base_m: float) -> float:
    """BYOL schedule: m = 1 − (1 − base_m)·(cos(π·step/max_steps) + 1)/2, from base_m up to 1."""
    if max_steps <= 0:
        return base_m
    frac = min(max(step / max_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base_m) * (math.cos(math.pi * frac) + 1.0) / 2.0
