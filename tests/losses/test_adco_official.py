"""AdCo's bank update against a written-out transcription of the official memory update (several
steps, momentum and weight decay > 0), keys gathered over 2 gloo ranks, the ring-buffer warm-up; and
NT-Xent's small-temperature backward against a float64 reference."""
from __future__ import annotations

import pytest
import torch

from shared.losses import AdCoBank, AdCoLoss, NTXentLoss

from .test_ntxent_infonce import ntxent_loop


def official_memory_update(w: torch.Tensor, v: torch.Tensor, q: torch.Tensor, k: torch.Tensor, tau: float,
                           lr: float, momentum: float, wd: float, include_batch_keys: bool = True):
    """The official AdCo memory-bank step, line by line (queries/keys unit-normalised by the model):

    logits = cat([l_pos, l_neg]) / mem_t, l_pos = q·k for every key of the batch (or only the own one)
    p_qd = softmax(logits)[:, n_keys:]
    g = q^T p_qd / N − mean(p_qd * l_neg, 0) * d_norm;  g = −g / ‖d‖ / mem_t
    v = m v + g + mem_wd W;  W = W − lr v
    """
    q = q / q.norm(dim=1, keepdim=True)
    k = k / k.norm(dim=1, keepdim=True)
    d_norm = w / w.norm(dim=0, keepdim=True)
    l_neg = q @ d_norm
    l_pos = q @ k.T if include_batch_keys else (q * k).sum(1, keepdim=True)
    logits = torch.cat([l_pos, l_neg], dim=1) / tau
    p_qd = torch.softmax(logits, dim=1)[:, l_pos.shape[1]:]
    g = q.T @ p_qd / q.shape[0] - (p_qd * l_neg).mean(0) * d_norm
    g = -g / w.norm(dim=0) / tau
    v = momentum * v + g + wd * w
    return w - lr * v, v


@pytest.mark.parametrize("include_batch_keys", [True, False])
def test_bank_steps_match_official_update_with_momentum_and_decay(include_batch_keys: bool) -> None:
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(12, 6, dtype=torch.float64, generator=gen)
    k = q + 0.3 * torch.randn(12, 6, dtype=torch.float64, generator=gen)  # hard positives
    bank = AdCoBank(dim=6, size=10, temperature=0.1, lr=0.8, momentum=0.9, weight_decay=0.2).double()
    w, v = bank.bank.clone(), torch.zeros_like(bank.bank)
    for step in range(4):  # beyond the first step: momentum and weight decay both act
        qs, ks = q.roll(step, 0), k.roll(step, 0)
        bank.ascent_step(qs, ks, include_batch_keys=include_batch_keys)
        w, v = official_memory_update(w, v, qs, ks, 0.1, 0.8, 0.9, 0.2, include_batch_keys)
        torch.testing.assert_close(bank.velocity, v, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(bank.bank, w, rtol=1e-9, atol=1e-12)


def test_bank_softmax_includes_every_batch_key() -> None:
    """When other keys of the batch are close to a query (two clusters: hard in-batch negatives) they
    take softmax mass from the bank, so the bank gradient differs from the own-key-only one."""
    gen = torch.Generator().manual_seed(8)
    centres = torch.randn(2, 8, dtype=torch.float64, generator=gen)
    q = centres[torch.arange(16) % 2] + 0.2 * torch.randn(16, 8, dtype=torch.float64, generator=gen)
    k = q + 0.2 * torch.randn(16, 8, dtype=torch.float64, generator=gen)
    a = AdCoBank(dim=8, size=32, temperature=0.05, lr=1.0, weight_decay=0.0).double()
    b = AdCoBank(dim=8, size=32, temperature=0.05, lr=1.0, weight_decay=0.0).double()
    b.bank.copy_(a.bank)
    a.ascent_step(q, k)
    b.ascent_step(q, k, include_batch_keys=False)
    assert (a.velocity - b.velocity).norm() > 0.1 * b.velocity.norm()


def test_init_from_keys_wraps_when_full() -> None:
    gen = torch.Generator().manual_seed(9)
    bank = AdCoBank(dim=4, size=8)
    chunks = [torch.randn(n, 4, generator=gen) for n in (6, 4, 3)]
    unit = [c / c.norm(dim=1, keepdim=True) for c in chunks]
    assert bank.init_from_keys(chunks[0]) == 6
    assert bank.init_from_keys(chunks[1]) == 8       # columns 6, 7, then 0, 1
    assert bank.init_from_keys(chunks[2]) == 8       # wraps on: columns 2, 3, 4 (not 0, 1, 2)
    expected = torch.empty(4, 8)
    expected[:, [6, 7, 0, 1]] = unit[1].T
    expected[:, [2, 3, 4]] = unit[2].T
    expected[:, 5] = unit[0][5]
    torch.testing.assert_close(bank.bank, expected)
    state = bank.state_dict()
    del state["ptr"]  # a checkpoint from before the write pointer existed still loads
    other = AdCoBank(dim=4, size=8)
    other.load_state_dict(state)
    assert int(other.ptr) == 0 and int(other.filled) == 8


def test_encoder_and_bank_under_two_ranks_equal_official_on_whole_batch() -> None:
    from shared.testing import run_ddp

    from .adco_workers import adco_two_ranks

    gen = torch.Generator().manual_seed(10)
    q, k = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    bank0 = torch.nn.functional.normalize(torch.randn(5, 7, generator=gen), dim=0)
    results = run_ddp(adco_two_ranks, world_size=2, args=(q, k, bank0))
    # encoder: each rank's query sees every rank's keys -> mean of rank losses = whole-batch loss
    ref_bank = AdCoBank(dim=5, size=7)
    ref_bank.bank.copy_(bank0)
    qf = q.clone().requires_grad_(True)
    full = AdCoLoss(0.2)(qf, k, ref_bank)
    full.backward()
    torch.testing.assert_close(torch.stack([r["loss"] for r in results]).mean(), full.detach())
    torch.testing.assert_close(torch.cat([r["q_grad"] for r in results]) / 2, qf.grad, rtol=1e-4, atol=1e-7)
    # bank: identical on both ranks and equal to the official update on the concatenated batch
    w, v = bank0.double(), torch.zeros(5, 7, dtype=torch.float64)
    for _ in range(2):
        w, v = official_memory_update(w, v, q.double(), k.double(), 0.05, 0.7, 0.9, 0.05)
    torch.testing.assert_close(results[0]["bank"], results[1]["bank"], rtol=0, atol=0)
    torch.testing.assert_close(results[0]["bank"].double(), w, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(results[0]["velocity"].double(), v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.01, 0.02])
def test_ntxent_small_temperature_backward_matches_float64(temperature: float) -> None:
    """t < 0.025 in float32 takes the row-max path; its backward needs P + Pᵀ (P is not symmetric)."""
    gen = torch.Generator().manual_seed(11)
    z0 = torch.randn(6, 4, generator=gen)
    z1 = z0 + 0.5 * torch.randn(6, 4, generator=gen)
    a, b = z0.clone().requires_grad_(True), z1.clone().requires_grad_(True)
    ours = NTXentLoss(temperature)(a, b)
    ours.backward()
    a64, b64 = z0.double().requires_grad_(True), z1.double().requires_grad_(True)
    ntxent_loop(a64, b64, temperature).backward()
    torch.testing.assert_close(a.grad.double(), a64.grad, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(b.grad.double(), b64.grad, rtol=1e-3, atol=1e-4)
