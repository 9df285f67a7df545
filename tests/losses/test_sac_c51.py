"""SAC and C51 losses (shared/losses/sac.py, c51.py) against explicit computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared.losses import (c51_loss, c51_project, sac_actor_loss, sac_alpha_loss, sac_critic_loss, sac_target,
                           squashed_gaussian_log_prob)


def test_sac_target_and_losses_match_explicit_loops() -> None:
    g = torch.Generator().manual_seed(0)
    b = 7
    r, q1n, q2n, logp = (torch.randn(b, 1, generator=g) for _ in range(4))
    not_done = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0], [1.0], [1.0]])
    alpha = torch.tensor(0.3)
    target = sac_target(r, 0.99 * not_done, q1n, q2n, logp, alpha)
    for i in range(b):
        v = min(q1n[i, 0].item(), q2n[i, 0].item()) - 0.3 * logp[i, 0].item()
        assert target[i, 0].item() == pytest.approx(r[i, 0].item() + 0.99 * not_done[i, 0].item() * v, rel=1e-5)
    q1, q2 = torch.randn(b, 1, generator=g), torch.randn(b, 1, generator=g)
    expected = sum((q1[i, 0] - target[i, 0]) ** 2 for i in range(b)) / b + sum((q2[i, 0] - target[i, 0]) ** 2 for i in range(b)) / b
    assert sac_critic_loss(q1, q2, target).item() == pytest.approx(expected.item(), rel=1e-5)
    actor = sum(0.3 * logp[i, 0] - min(q1[i, 0], q2[i, 0]) for i in range(b)) / b
    assert sac_actor_loss(q1, q2, logp, alpha).item() == pytest.approx(actor.item(), rel=1e-5)
    log_alpha = torch.tensor(math.log(0.3), requires_grad=True)
    loss = sac_alpha_loss(log_alpha, logp, target_entropy=-2.0)
    assert loss.item() == pytest.approx(float(np.mean([0.3 * (-logp[i, 0].item() + 2.0) for i in range(b)])), rel=1e-5)
    loss.backward()  # gradient reaches log α only through α (log π is held fixed)
    assert log_alpha.grad.item() == pytest.approx(loss.item(), rel=1e-5)


def test_squashed_gaussian_log_prob_matches_torch_distributions() -> None:
    from torch.distributions import Independent, Normal, TransformedDistribution
    from torch.distributions.transforms import TanhTransform

    g = torch.Generator().manual_seed(1)
    mu, log_std = torch.randn(5, 3, generator=g) * 0.5, torch.randn(5, 3, generator=g) * 0.3 - 0.5
    noise = torch.randn(5, 3, generator=g)
    pi = torch.tanh(mu + noise * log_std.exp())
    ours = squashed_gaussian_log_prob(noise, log_std, pi)
    dist = TransformedDistribution(Independent(Normal(mu, log_std.exp()), 1), [TanhTransform()])
    reference = dist.log_prob(pi).unsqueeze(-1)
    # the official code adds 1e-6 inside the log: agreement to that epsilon's effect
    torch.testing.assert_close(ours, reference, atol=2e-3, rtol=1e-3)


def _c51_reference(p: np.ndarray, r: float, disc: float, support: np.ndarray) -> np.ndarray:
    """Textbook per-atom loop (Bellemare et al. 2017, Algorithm 1)."""
    v_min, v_max, n = support[0], support[-1], len(support)
    dz = (v_max - v_min) / (n - 1)
    m = np.zeros(n)
    for j in range(n):
        tz = min(max(r + disc * support[j], v_min), v_max)
        b = (tz - v_min) / dz
        lo, up = int(math.floor(b)), int(math.ceil(b))
        if lo == up:
            m[lo] += p[j]
        else:
            m[lo] += p[j] * (up - b)
            m[up] += p[j] * (b - lo)
    return m


@pytest.mark.parametrize("atoms", [51, 5])
def test_c51_projection_matches_per_atom_loop(atoms: int) -> None:
    g = torch.Generator().manual_seed(atoms)
    support = torch.linspace(-10, 10, atoms, dtype=torch.float64)
    b = 12
    probs = torch.softmax(torch.randn(b, atoms, generator=g, dtype=torch.float64), dim=1)
    returns = torch.randn(b, generator=g, dtype=torch.float64) * 6
    returns[0], returns[1] = 25.0, -25.0  # clamped at both ends
    returns[2] = 0.0  # lands exactly on atoms
    discount = torch.full((b,), 0.99 ** 20, dtype=torch.float64)
    discount[3] = 0.0  # terminal: all mass at the (clamped) return
    discount[4] = 1.0
    m = c51_project(probs, returns, discount, support)
    for i in range(b):
        ref = _c51_reference(probs[i].numpy(), returns[i].item(), discount[i].item(), support.numpy())
        np.testing.assert_allclose(m[i].numpy(), ref, atol=1e-12)
    torch.testing.assert_close(m.sum(1), torch.ones(b, dtype=torch.float64))


def test_c51_loss_is_cross_entropy() -> None:
    g = torch.Generator().manual_seed(2)
    log_p = torch.log_softmax(torch.randn(4, 51, generator=g), dim=1)
    m = torch.softmax(torch.randn(4, 51, generator=g), dim=1)
    expected = torch.tensor([-sum(m[i, j] * log_p[i, j] for j in range(51)) for i in range(4)])
    torch.testing.assert_close(c51_loss(log_p, m), expected, rtol=1e-5, atol=1e-5)
