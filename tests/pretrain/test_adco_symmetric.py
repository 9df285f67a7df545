"""AdCo's symmetrised bank step in the pretrain app against the official symmetric-mode update.

The official code (maple-research-lab/AdCo, ``training/train.py::update_sym_network``) steps the bank
with g = ½(g₁ + g₂): direction 1 scores the online queries of view 0 against the key-encoder keys of
view 1 only, direction 2 the online queries of view 1 against the keys of view 0 only. A query never
sees the key of its own view (a near-copy of itself, an exact copy at initialisation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from apps.pretrain.train import PretrainConfig, build_task
from shared.config import load_config
from shared.losses import AdCoBank

TINY = ["method=adco", "train.batch_size=12", "model.width=4", "model.proj_hidden=16", "model.proj_dim=8",
        "adco.bank_size=10", "adco.bank_temperature=0.05", "adco.bank_lr=0.7", "adco.bank_momentum=0.9",
        "adco.bank_weight_decay=0.05", "adco.momentum=0.5"]


def official_sym_memory_update(w: torch.Tensor, v: torch.Tensor, q_pred: torch.Tensor, k_pred: torch.Tensor,
                               q_key: torch.Tensor, k_key: torch.Tensor, tau: float, lr: float,
                               momentum: float, wd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``--sym 1`` memory update written out (all features unit-normalised):

    logits₁ = [q_pred·k_keyᵀ, q_pred·d_norm] / mem_t,  logits₂ = [k_pred·q_keyᵀ, k_pred·d_norm] / mem_t
    p = softmax(logits)[:, B:];  gᵢ = xᵀ p / B − mean(p ⊙ l_neg, 0) ⊙ d_norm
    g = −½ g₁ / ‖d‖ / mem_t − ½ g₂ / ‖d‖ / mem_t;  v = m v + g + wd W;  W = W − lr v
    """
    d_norm = w / w.norm(dim=0, keepdim=True)
    grads = []
    for x, keys in ((q_pred, k_key), (k_pred, q_key)):
        l_neg = x @ d_norm
        logits = torch.cat([x @ keys.T, l_neg], dim=1) / tau
        p = torch.softmax(logits, dim=1)[:, keys.shape[0]:]
        grads.append(x.T @ p / x.shape[0] - (p * l_neg).mean(0) * d_norm)
    g = -0.5 * grads[0] / w.norm(dim=0) / tau - 0.5 * grads[1] / w.norm(dim=0) / tau
    v = momentum * v + g + wd * w
    return w - lr * v, v


def test_symmetric_bank_steps_match_official_sym_update() -> None:
    cfg = load_config(PretrainConfig, None, TINY)
    task = build_task(cfg, in_channels=1).train()
    bank: AdCoBank = task.bank
    bank.filled.fill_(bank.size)  # skip the warm-up fill: the bank stays the random unit columns
    w, v = bank.bank.clone().double(), torch.zeros_like(bank.bank).double()
    gen = torch.Generator().manual_seed(3)
    for step in range(3):  # several steps: momentum, weight decay and a moving key encoder all act
        views = torch.rand(12, 2, 1, 16, 16, generator=gen)
        images = views.transpose(0, 1).reshape(-1, 1, 16, 16)
        with torch.no_grad():
            q = F.normalize(task.encoder(images), dim=1).double()
            k = F.normalize(task.key_encoder(images), dim=1).double()
        q0, q1 = q.chunk(2)
        k0, k1 = k.chunk(2)
        outputs = task({"views": views})
        task.on_step_end(step, outputs)
        w, v = official_sym_memory_update(w, v, q0, q1, k0, k1, 0.05, 0.7, 0.9, 0.05)
        torch.testing.assert_close(bank.velocity.double(), v, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(bank.bank.double(), w, rtol=1e-4, atol=1e-6)


def test_ascent_step_pairs_of_one_pair_is_ascent_step() -> None:
    gen = torch.Generator().manual_seed(4)
    q, k = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    a = AdCoBank(dim=5, size=7, temperature=0.1, lr=0.5, weight_decay=0.1)
    b = AdCoBank(dim=5, size=7, temperature=0.1, lr=0.5, weight_decay=0.1)
    b.bank.copy_(a.bank)
    for _ in range(2):
        a.ascent_step(q, k)
        b.ascent_step_pairs([(q, k)])
    torch.testing.assert_close(a.bank, b.bank, rtol=0, atol=0)
    torch.testing.assert_close(a.velocity, b.velocity, rtol=0, atol=0)
