"""SR contrastive losses against explicit per-sample loops."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from shared.losses._checks import LossInputError
from shared.losses.sr_contrastive import BidirectionalContrastiveLoss, ConditionalContrastiveLoss, others


def nce(q: torch.Tensor, pos: torch.Tensor, negs: list[torch.Tensor], t: float) -> float:
    cos = lambda a, b: float(F.cosine_similarity(a, b, dim=0))  # noqa: E731
    logits = [cos(q, pos) / t] + [cos(q, n) / t for n in negs]
    m = max(logits)
    return -(logits[0] - m - math.log(sum(math.exp(v - m) for v in logits)))


def test_bidirectional_matches_loop():
    torch.manual_seed(0)
    u, h, v = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)
    t = 0.2
    loss = BidirectionalContrastiveLoss(t)(u, h, v)
    n = len(u)
    fwd = sum(nce(u[i], h[i], [h[j] for j in range(n) if j != i] + list(v), t) for i in range(n)) / n
    bwd = sum(nce(h[i], u[i], [u[j] for j in range(n) if j != i] + list(v), t) for i in range(n)) / n
    assert float(loss) == pytest.approx(0.5 * (fwd + bwd), rel=1e-5)


def test_bidirectional_prefers_aligned_pairs_and_has_gradients():
    torch.manual_seed(1)
    h = torch.randn(6, 16)
    v = torch.randn(6, 16)
    aligned = BidirectionalContrastiveLoss(0.1)(h + 0.01 * torch.randn(6, 16), h, v)
    shuffled = BidirectionalContrastiveLoss(0.1)(h[torch.randperm(6)], h, v)
    assert aligned < shuffled
    u = torch.randn(6, 16, requires_grad=True)
    BidirectionalContrastiveLoss(0.1)(u, h, v).backward()
    assert u.grad is not None and torch.isfinite(u.grad).all() and u.grad.abs().sum() > 0


def test_conditional_matches_loop_with_film():
    torch.manual_seed(2)
    n, d, c, k, t = 4, 6, 3, 2, 0.3
    loss_fn = ConditionalContrastiveLoss(d, c, t)
    with torch.no_grad():
        loss_fn.film.weight.normal_()
        loss_fn.film.bias.normal_()
    a, p, negs, cond = torch.randn(n, d), torch.randn(n, d), torch.randn(n, k, d), torch.randn(n, c)
    loss = loss_fn(a, p, negs, cond)
    w, b = loss_fn.film.weight.detach(), loss_fn.film.bias.detach()
    ref = 0.0
    for i in range(n):
        film = w @ cond[i] + b
        gamma, beta = film[:d], film[d:]
        e = lambda x: x * (1 + gamma) + beta  # noqa: E731
        ref += nce(e(a[i]), e(p[i]), [e(negs[i, j]) for j in range(k)] + [e(p[j]) for j in range(n) if j != i], t)
    assert float(loss) == pytest.approx(ref / n, rel=1e-5)


def test_conditional_starts_unconditioned_and_rejects_bad_shapes():
    loss_fn = ConditionalContrastiveLoss(4, 2)
    a, p, negs = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2, 4)
    base = loss_fn(a, p, negs, torch.zeros(3, 2))
    assert float(loss_fn(a, p, negs, torch.randn(3, 2))) == pytest.approx(float(base), rel=1e-6)
    with pytest.raises(LossInputError):
        loss_fn(a, p, torch.randn(3, 4), torch.zeros(3, 2))
    with pytest.raises(LossInputError):
        BidirectionalContrastiveLoss(0.1)(torch.randn(1, 4), torch.randn(1, 4), torch.randn(1, 4))


def test_others_with_offset_skips_the_anchor_row_of_a_gathered_batch():
    x = torch.arange(12.0).view(6, 2)
    out = others(x, offset=3, n=2)  # anchors are rows 3 and 4 of the gathered batch
    assert out.shape == (2, 5, 2)
    assert torch.equal(out[0], x[[0, 1, 2, 4, 5]]) and torch.equal(out[1], x[[0, 1, 2, 3, 5]])


# -- DDP: negatives gathered over 2 gloo ranks equal the single-process loss on the whole batch ----------

def _sr_inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return {name: torch.randn(8, dim, generator=gen) for name, dim in
            (("u", 6), ("h", 6), ("v", 6), ("a", 6), ("p", 6), ("c", 3))} | {
        "negs": torch.randn(8, 2, 6, generator=gen), "w": torch.randn(6, 6, generator=gen),
        "film_w": torch.randn(12, 3, generator=gen), "film_b": torch.randn(12, generator=gen)}


def _losses(x: dict[str, torch.Tensor], rows: slice, gather: bool) -> dict[str, torch.Tensor]:
    """Both losses through a shared linear map ``w`` on ``rows`` of the batch; loss and grads."""
    w = x["w"].clone().requires_grad_(True)
    local = {k: x[k][rows].clone().requires_grad_(True) for k in ("u", "h", "v", "a", "p")}
    bi = BidirectionalContrastiveLoss(0.2, gather_distributed=gather)(local["u"] @ w, local["h"] @ w, local["v"] @ w)
    cond_fn = ConditionalContrastiveLoss(6, 3, 0.3, gather_distributed=gather)
    with torch.no_grad():
        cond_fn.film.weight.copy_(x["film_w"])
        cond_fn.film.bias.copy_(x["film_b"])
    cond = cond_fn(local["a"] @ w, local["p"] @ w, x["negs"][rows] @ w, x["c"][rows])
    (bi + cond).backward()
    return {"bi": bi.detach(), "cond": cond.detach(), "w_grad": w.grad, "film_grad": cond_fn.film.weight.grad,
            **{f"{k}_grad": t.grad for k, t in local.items()}}


def sr_ddp_worker(rank: int, world: int, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = x["u"].shape[0] // world
    return _losses(x, slice(rank * n, (rank + 1) * n), gather=True)


def test_gathered_negatives_equal_single_process_on_two_gloo_ranks():
    from shared.testing import run_ddp

    x = _sr_inputs()
    full = _losses(x, slice(None), gather=False)
    results = run_ddp(sr_ddp_worker, world_size=2, args=(x,))
    n = x["u"].shape[0] // 2
    for name in ("bi", "cond"):  # each rank averages its local anchors: the mean over ranks is the full loss
        torch.testing.assert_close(torch.stack([r[name] for r in results]).mean(), full[name])
    for name in ("w_grad", "film_grad"):  # DDP averages parameter gradients over ranks
        torch.testing.assert_close(torch.stack([r[name] for r in results]).mean(0), full[name], rtol=1e-4, atol=1e-6)
    for rank, r in enumerate(results):  # input grads (summed over ranks by the gather) / world = full slice
        for k in ("u", "h", "v", "a", "p"):
            torch.testing.assert_close(r[f"{k}_grad"] / 2, full[f"{k}_grad"][rank * n:(rank + 1) * n],
                                       rtol=1e-4, atol=1e-6)
    # without the gather the ranks see only local negatives: a different (smaller-batch) loss
    local_only = _losses(x, slice(0, n), gather=False)
    assert not torch.allclose(local_only["bi"], results[0]["bi"])
