"""shared.engine.lars.LARS against an explicit loop of the torchlars rule (BYOL/SCRL's optimiser)."""
from __future__ import annotations

import torch

from shared.engine.lars import LARS


def test_lars_matches_explicit_loop():
    torch.manual_seed(0)
    weight, bias = torch.randn(5, 3, requires_grad=True), torch.randn(5, requires_grad=True)
    ref_w, ref_b = weight.detach().clone(), bias.detach().clone()
    lr, momentum, wd, trust, eps = 0.3, 0.9, 1e-2, 1e-3, 1e-8
    opt = LARS([{"params": [weight]}, {"params": [bias], "lars_adaptation": False, "weight_decay": 0.0}],
               lr=lr, momentum=momentum, weight_decay=wd, trust_coef=trust, eps=eps)
    buf_w = buf_b = None
    for step in range(4):
        grads = torch.randn(5, 3), torch.randn(5)
        weight.grad, bias.grad = grads[0].clone(), grads[1].clone()
        opt.step()
        # reference: torchlars compute_adaptive_lr + SGD momentum
        local = trust * ref_w.norm() / (grads[0].norm() + wd * ref_w.norm() + eps)
        g_w = (grads[0] + wd * ref_w) * local
        buf_w = g_w.clone() if buf_w is None else momentum * buf_w + g_w
        ref_w = ref_w - lr * buf_w
        buf_b = grads[1].clone() if buf_b is None else momentum * buf_b + grads[1]
        ref_b = ref_b - lr * buf_b
        torch.testing.assert_close(weight.detach(), ref_w)
        torch.testing.assert_close(bias.detach(), ref_b)


def test_zero_weight_uses_plain_rate():
    weight = torch.zeros(2, 2, requires_grad=True)
    weight.grad = torch.ones(2, 2)
    LARS([weight], lr=0.1, momentum=0.0).step()
    torch.testing.assert_close(weight.detach(), torch.full((2, 2), -0.1))
