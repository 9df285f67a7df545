"""MoCo queue, momentum helpers, BYOL, SupCon, CURL, InstanceToTrack and AdCo against explicit formulas."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from shared.losses import (AdCoBank, AdCoLoss, BYOLLoss, CURLLoss, InstanceToTrackLoss, MoCoQueue, SupConLoss,
                           cosine_momentum, make_momentum_copy, momentum_update)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------- MoCo queue / momentum
def test_moco_queue_fifo_and_checkpoint(tmp_path) -> None:
    queue = MoCoQueue(dim=3, size=5)
    keys = torch.arange(1, 13, dtype=torch.float32).view(4, 3)
    queue.enqueue(keys[:3])
    queue.enqueue(keys[3:])   # 4th key goes to slot 3
    queue.enqueue(keys[:2])   # wraps: slots 4 and 0
    expected_rows = [keys[1], keys[1], keys[2], keys[3], keys[0]]
    torch.testing.assert_close(queue.negatives(), _unit(torch.stack(expected_rows)))
    assert int(queue.ptr) == 1
    path = tmp_path / "queue.pt"
    torch.save(queue.state_dict(), path)
    other = MoCoQueue(dim=3, size=5)
    other.load_state_dict(torch.load(path, weights_only=True))
    torch.testing.assert_close(other.negatives(), queue.negatives())
    assert int(other.ptr) == 1
    with pytest.raises(ValueError, match=r"keys must have shape \(N, 3\)"):
        queue.enqueue(torch.randn(2, 4))


def test_momentum_helpers() -> None:
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = make_momentum_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    online.train()
    online(torch.randn(8, 3))  # moves BN running stats
    momentum_update(target, online, m=0.9)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    torch.testing.assert_close(target[1].running_mean, online[1].running_mean)
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="m must be"):
        momentum_update(target, online, m=1.5)


# ---------------------------------------------------------------- BYOL
def test_byol_formula_and_symmetrisation() -> None:
    gen = torch.Generator().manual_seed(0)
    p0, z1, p1, z0 = (torch.randn(6, 4, generator=gen, dtype=torch.float64) for _ in range(4))
    cos = lambda a, b: (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))  # noqa: E731
    one = (2 - 2 * cos(p0, z1)).mean()
    two = (2 - 2 * cos(p1, z0)).mean()
    torch.testing.assert_close(BYOLLoss()(p0, z1), one)
    torch.testing.assert_close(BYOLLoss()(p0, z1, p1, z0), (one + two) / 2)
    with pytest.raises(ValueError, match="both p1 and z0"):
        BYOLLoss()(p0, z1, p1)
    with pytest.raises(ValueError, match=r"z1 must have shape \(6, 4\)"):
        BYOLLoss()(p0, torch.randn(5, 4, dtype=torch.float64))
    # targets are detached by default
    p = torch.randn(3, 2, requires_grad=True)
    z = torch.randn(3, 2, requires_grad=True)
    BYOLLoss()(p, z).backward()
    assert p.grad is not None and z.grad is None


# ---------------------------------------------------------------- SupCon
def supcon_loop(feats: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    b, v, _ = feats.shape
    flat = [(_unit(feats[i, k]), int(labels[i])) for k in range(v) for i in range(b)]
    losses = []
    for a, (fa, la) in enumerate(flat):
        denom = sum(torch.exp(fa @ fj / t) for j, (fj, _) in enumerate(flat) if j != a)
        pos = [torch.log(torch.exp(fa @ fp / t) / denom) for p, (fp, lp) in enumerate(flat) if p != a and lp == la]
        if pos:
            losses.append(-sum(pos) / len(pos))
    return torch.stack(losses).mean()


def test_supcon_matches_loop() -> None:
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(6, 2, 4, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    torch.testing.assert_close(SupConLoss(0.2)(feats, labels), supcon_loop(feats, labels, 0.2))
    # single view: sample 3 (label 2) has no positive and is left out
    single = feats[:, 0]
    torch.testing.assert_close(SupConLoss(0.2)(single, labels), supcon_loop(single[:, None], labels, 0.2))
    x = torch.randn(3, 4, requires_grad=True)
    zero = SupConLoss()(x, torch.tensor([0, 1, 2]))
    assert zero.item() == 0.0 and zero.grad_fn is not None
    with pytest.raises(ValueError, match=r"labels must have shape \(6,\)"):
        SupConLoss()(feats, labels[:5])


# ---------------------------------------------------------------- CURL
def test_curl_matches_formula_and_trains_w() -> None:
    gen = torch.Generator().manual_seed(2)
    curl = CURLLoss(dim=5)
    q, k = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    loss = curl(q, k)
    w = curl.W.detach()
    expected = 0.0
    for i in range(4):
        row = torch.stack([q[i] @ w @ k[j] for j in range(4)])
        row = row - row.max()
        expected += -(row[i] - torch.log(torch.exp(row).sum())) / 4
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert curl.W.grad is not None and curl.W.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"k must have shape \(4, 5\)"):
        curl(q, torch.randn(3, 5))


# ---------------------------------------------------------------- InstanceToTrack
def test_instance_to_track_rows_and_pseudo_labels() -> None:
    gen = torch.Generator().manual_seed(3)
    det = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    tracks = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    gt = torch.tensor([0, -1, 2, -1, 1])
    pseudo = torch.tensor([1, 2, -1, -1, 0])  # row 0 and 4 keep their ground truth
    t = 0.1

    def row_loss(i: int, target: int) -> torch.Tensor:
        logits = torch.stack([_unit(det[i]) @ _unit(tracks[j]) / t for j in range(3)])
        return -(logits[target] - torch.log(torch.exp(logits).sum()))

    loss_fn = InstanceToTrackLoss(temperature=t)
    labelled = (row_loss(0, 0) + row_loss(2, 2) + row_loss(4, 1)) / 3
    torch.testing.assert_close(loss_fn(det, tracks, gt), labelled)
    with_pseudo = (row_loss(0, 0) + row_loss(1, 2) + row_loss(2, 2) + row_loss(4, 1)) / 4
    torch.testing.assert_close(loss_fn(det, tracks, gt, pseudo), with_pseudo)
    none = loss_fn(det, tracks, torch.full((5,), -1))
    assert none.item() == 0.0 and none.grad_fn is not None
    none.backward()
    with pytest.raises(ValueError, match=r"track ids must be -1 .* \[0, 3\)"):
        loss_fn(det, tracks, torch.tensor([0, 3, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"det_track must have shape \(5,\)"):
        loss_fn(det, tracks, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"track_emb must have shape \(N, 4\)"):
        loss_fn(det, torch.randn(3, 5, dtype=torch.float64), gt)


# ---------------------------------------------------------------- AdCo
def test_adco_loss_formula() -> None:
    gen = torch.Generator().manual_seed(4)
    bank = AdCoBank(dim=4, size=6)
    q, k = torch.randn(3, 4, generator=gen), torch.randn(3, 4, generator=gen)
    w_hat = _unit(bank.bank.T)  # (K, D) unit rows
    t = 0.12
    paper, with_keys = 0.0, 0.0
    for i in range(3):
        qi = _unit(q[i])
        pos = qi @ _unit(k[i]) / t
        negs = w_hat @ qi / t
        batch = torch.stack([qi @ _unit(k[j]) / t for j in range(3) if j != i])
        paper += -(pos - torch.logsumexp(torch.cat([pos[None], negs]), 0)) / 3
        with_keys += -(pos - torch.logsumexp(torch.cat([pos[None], batch, negs]), 0)) / 3
    torch.testing.assert_close(AdCoLoss(t, include_batch_keys=False)(q, k, bank), paper)
    torch.testing.assert_close(AdCoLoss(t)(q, k, bank), with_keys)
    torch.testing.assert_close(bank.logits(q), _unit(q) @ w_hat.T)


def test_adco_ascent_increases_loss_and_matches_official_gradient() -> None:
    gen = torch.Generator().manual_seed(5)
    bank = AdCoBank(dim=8, size=16, temperature=0.05, lr=0.5, momentum=0.9, weight_decay=0.0)
    keys = torch.randn(20, 8, generator=gen)
    assert bank.init_from_keys(keys) == 16
    torch.testing.assert_close(bank.bank, _unit(keys[:16]).T)
    q, k = torch.randn(10, 8, generator=gen), torch.randn(10, 8, generator=gen)
    # official closed form: softmax over [q·k_j for every key j, q·Ŵ], restricted to the bank columns;
    # g_k = (1/N) Σ_i p_ik q_i − mean_i(p_ik l_ik) ŵ_k, / (‖w_k‖ τ_m)
    qn, kn, w = _unit(q), _unit(k), bank.bank.clone()
    w_hat = w / w.norm(dim=0, keepdim=True)
    l_neg = qn @ w_hat
    probs = torch.softmax(torch.cat([qn @ kn.T, l_neg], 1) / 0.05, 1)[:, 10:]
    g = (qn.T @ probs) / 10 - (probs * l_neg).mean(0) * w_hat
    g = g / (w.norm(dim=0) * 0.05)
    before = bank.bank_loss(bank.bank, q, k).item()
    bank.ascent_step(q, k)
    torch.testing.assert_close(bank.bank, w + 0.5 * g, rtol=1e-4, atol=1e-6)  # first step: v = -grad
    after = bank.bank_loss(bank.bank, q, k).item()
    assert after > before
    for _ in range(3):
        bank.ascent_step(q, k)
    assert bank.bank_loss(bank.bank, q, k).item() > after


def test_adco_bank_is_not_a_parameter_and_round_trips(tmp_path) -> None:
    bank = AdCoBank(dim=4, size=8)
    assert list(bank.parameters()) == []  # the encoder's optimizer must never descend on it
    bank.ascent_step(torch.randn(5, 4), torch.randn(5, 4))
    path = tmp_path / "bank.pt"
    torch.save(bank.state_dict(), path)
    other = AdCoBank(dim=4, size=8)
    other.load_state_dict(torch.load(path, weights_only=True))
    for name in ("bank", "velocity", "filled"):
        torch.testing.assert_close(getattr(other, name), getattr(bank, name))
    assert other.velocity.abs().sum() > 0
    with pytest.raises(ValueError, match=r"q must have shape \(N, 4\)"):
        AdCoLoss()(torch.randn(3, 5), torch.randn(3, 5), bank)
    with pytest.raises(ValueError, match="AdCoBank"):
        AdCoLoss()(torch.randn(3, 4), torch.randn(3, 4), "bank")


def test_adco_encoder_loss_does_not_touch_bank() -> None:
    bank = AdCoBank(dim=4, size=8)
    q = torch.randn(3, 4, requires_grad=True)
    loss = AdCoLoss()(q, torch.randn(3, 4), bank)
    loss.backward()
    assert q.grad is not None and math.isfinite(loss.item())
    assert bank.bank.grad is None


# ---------------------------------------------------------------- autocast
def test_losses_run_in_float32_under_autocast() -> None:
    from shared.losses import HCLLoss, InfoNCE, NTXentLoss, WMSELoss
    gen = torch.Generator().manual_seed(6)
    z0, z1 = torch.randn(32, 8, generator=gen), torch.randn(32, 8, generator=gen)
    cases = [
        (NTXentLoss(0.2), (z0, z1)),
        (HCLLoss(0.1), (z0, z1)),
        (InfoNCE(0.1), (z0, z1, torch.randn(10, 8, generator=gen))),
        (WMSELoss(num_views=2, w_size=32), (torch.cat([z0, z1]),)),  # one sub-batch: no permutation
        (SupConLoss(0.1), (z0, torch.arange(32) % 4)),
    ]
    for loss_fn, args in cases:
        plain = loss_fn(*args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = loss_fn(*args)
        assert mixed.dtype == torch.float32, type(loss_fn).__name__
        torch.testing.assert_close(mixed, plain, rtol=1e-6, atol=1e-6)
