"""W-MSE against an explicit per-sub-batch loop, lightly's WMSELoss, and whitening properties."""
from __future__ import annotations

import itertools

import pytest
import torch

from shared.losses import LossInputError, WhiteningError, WMSELoss, whiten_blocks


def wmse_loop(z: torch.Tensor, views: int, w_size: int, perms: list[torch.Tensor], eps: float = 0.0,
              loss_type: str = "norm_mse") -> torch.Tensor:
    """Reference: loop over repeats, sub-batches and views; whiten with an explicit inverse of L."""
    batch, dim = z.shape[0] // views, z.shape[1]
    x = z.view(views, batch, dim)
    total = z.new_zeros(())
    for perm in perms:
        white = torch.empty_like(x)
        for idx in perm.view(-1, w_size):
            for v in range(views):
                block = x[v, idx]
                centred = block - block.mean(dim=0)
                cov = centred.T @ centred / (w_size - 1)
                cov = (1 - eps) * cov + eps * torch.eye(dim, dtype=z.dtype)
                inv_l = torch.linalg.inv(torch.linalg.cholesky(cov))
                white[v, idx] = centred @ inv_l.T
        for i, j in itertools.combinations(range(views), 2):
            if loss_type == "norm_mse":
                a = white[i] / white[i].norm(dim=1, keepdim=True)
                b = white[j] / white[j].norm(dim=1, keepdim=True)
                total = total + (2 - 2 * (a * b).sum(dim=1)).mean()
            else:
                total = total + ((white[i] - white[j]) ** 2).mean()
    return total / (len(perms) * views * (views - 1) // 2)


@pytest.mark.parametrize("views,batch,dim,w_size,w_iter,eps,loss_type", [
    (2, 16, 3, 8, 1, 0.0, "norm_mse"),
    (4, 24, 3, 8, 2, 0.0, "norm_mse"),
    (3, 12, 2, 6, 3, 0.1, "norm_mse"),
    (2, 16, 4, 8, 2, 0.0, "mse"),
    (4, 12, 3, 6, 1, 0.05, "mse"),
])
def test_wmse_matches_loop(views, batch, dim, w_size, w_iter, eps, loss_type) -> None:
    gen = torch.Generator().manual_seed(10)
    z = torch.randn(views * batch, dim, dtype=torch.float64, generator=gen, requires_grad=True)
    # The loss draws its permutations from its generator: replay the same draws for the loop.
    replay = torch.Generator().manual_seed(99)
    perms = [torch.randperm(batch, generator=replay) for _ in range(w_iter)]
    loss = WMSELoss(num_views=views, w_size=w_size, w_iter=w_iter, eps=eps, loss_type=loss_type,
                    generator=torch.Generator().manual_seed(99))
    ours = loss(z)
    ref = wmse_loop(z, views, w_size, perms, eps, loss_type)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)
    g_ours, = torch.autograd.grad(ours, z)
    g_ref, = torch.autograd.grad(ref, z)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-9)


def test_wmse_solve_path_matches_loop(monkeypatch) -> None:
    import shared.losses.wmse as wmse_module
    monkeypatch.setattr(wmse_module, "_USE_INVERSE", False)
    test_wmse_matches_loop(4, 24, 3, 8, 2, 0.1, "norm_mse")
    test_wmse_matches_loop(2, 16, 4, 8, 1, 0.0, "mse")


def test_wmse_permutation_reproducible_under_manual_seed() -> None:
    z = torch.randn(2 * 32, 4)
    loss = WMSELoss(num_views=2, w_size=8)
    torch.manual_seed(5)
    a = loss(z)
    torch.manual_seed(5)
    b = loss(z)
    torch.manual_seed(6)
    c = loss(z)
    assert a.item() == b.item()
    assert a.item() != c.item()  # a different permutation groups different sub-batches


def test_whitened_blocks_have_identity_covariance() -> None:
    gen = torch.Generator().manual_seed(11)
    mix = torch.randn(5, 5, dtype=torch.float64, generator=gen)
    x = torch.randn(6, 40, 5, dtype=torch.float64, generator=gen) @ mix + 3.0  # correlated, off-centre
    white = whiten_blocks(x)  # (M, n, d)
    assert white.shape == (6, 40, 5)
    torch.testing.assert_close(white.mean(dim=1), torch.zeros(6, 5, dtype=torch.float64), atol=1e-12, rtol=0)
    cov = white.transpose(1, 2) @ white / (40 - 1)
    torch.testing.assert_close(cov, torch.eye(5, dtype=torch.float64).expand(6, 5, 5), atol=1e-10, rtol=0)


@pytest.mark.parametrize("block", [64, 1, 2])
def test_blocked_inverse_cholesky_matches_lapack(monkeypatch, block: int) -> None:
    import shared.losses.wmse as wmse_module
    monkeypatch.setattr(wmse_module, "_BLOCK", block)
    gen = torch.Generator().manual_seed(15)
    a = torch.randn(3, 7, 7, dtype=torch.float64, generator=gen)
    cov = a @ a.transpose(1, 2) + 0.1 * torch.eye(7, dtype=torch.float64)
    inv, bad = wmse_module._inverse_cholesky(cov)
    assert not bad.any()
    torch.testing.assert_close(inv, torch.linalg.inv(torch.linalg.cholesky(cov)), rtol=1e-10, atol=1e-10)
    singular = cov.clone()
    singular[1] = a[1, :, :3] @ a[1, :, :3].T  # rank 3: not positive definite
    _, bad = wmse_module._inverse_cholesky(singular)
    assert bad.tolist() == [False, True, False]
    z = torch.randn(2 * 16, 4, dtype=torch.float64, generator=gen)
    z[:, 2] = 0.0  # a dead feature: the error must name eps also on the blocked path
    with pytest.raises(WhiteningError, match="eps"):
        WMSELoss(num_views=2, w_size=8)(z)


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_whiten_paths_agree_with_autograd(eps: float) -> None:
    # inverse-GEMM path, triangular-solve path and plain autograd through cholesky/solve agree
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(3, 8, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    upstream = torch.randn(3, 8, 3, dtype=torch.float64, generator=gen)
    centred = x - x.mean(dim=1, keepdim=True)
    cov = (1 - eps) * centred.transpose(1, 2) @ centred / 7 + eps * torch.eye(3, dtype=torch.float64)
    ref = torch.linalg.solve_triangular(torch.linalg.cholesky(cov), centred.transpose(1, 2), upper=False)
    ref = ref.transpose(1, 2)
    g_ref, = torch.autograd.grad((ref * upstream).sum(), x)
    import shared.losses.wmse as wmse_module
    default_block = wmse_module._BLOCK
    for use_inverse, block in ((True, default_block), (True, 1), (False, default_block)):
        wmse_module._BLOCK = block
        try:
            out = whiten_blocks(x, eps, use_inverse=use_inverse)
        finally:
            wmse_module._BLOCK = default_block
        torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
        g, = torch.autograd.grad((out * upstream).sum(), x)
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-12)
        assert torch.autograd.gradcheck(lambda inp: whiten_blocks(inp, eps, use_inverse=use_inverse), (x,))


def test_wmse_gradcheck() -> None:
    gen = torch.Generator().manual_seed(12)
    z = torch.randn(3 * 8, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    for loss_type, eps in (("norm_mse", 0.0), ("mse", 0.1)):
        def fn(inp: torch.Tensor) -> torch.Tensor:
            return WMSELoss(num_views=3, w_size=4, w_iter=2, eps=eps, loss_type=loss_type,
                            generator=torch.Generator().manual_seed(0))(inp)
        assert torch.autograd.gradcheck(fn, (z,))


@pytest.mark.parametrize("views,batch,dim", [(2, 64, 16), (4, 48, 8)])
def test_wmse_matches_lightly(views: int, batch: int, dim: int) -> None:
    try:
        from lightly.loss import WMSELoss as LightlyWMSE
    except Exception as exc:  # a broken install must fail loudly, not skip
        pytest.fail(f"lightly's WMSELoss cannot be imported: {exc!r}")
    gen = torch.Generator().manual_seed(13)
    z = torch.randn(views * batch, dim, generator=gen, requires_grad=True)
    theirs_fn = LightlyWMSE(embedding_dim=dim, num_samples=views, w_size=batch)
    ours = WMSELoss(num_views=views, w_size=batch)(z)
    theirs = theirs_fn(z)
    assert abs(ours.item() - theirs.item()) < 1e-5
    g_ours, = torch.autograd.grad(ours, z)
    g_theirs, = torch.autograd.grad(theirs, z)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-3, atol=1e-5)


def test_wmse_matches_lightly_with_sub_batches_same_seed() -> None:
    # Both draw torch.randperm(B) from the global generator once per repeat, so equal seeds give
    # equal sub-batches even when w_size < batch.
    from lightly.loss import WMSELoss as LightlyWMSE
    z = torch.randn(2 * 64, 8)
    torch.manual_seed(3)
    ours = WMSELoss(num_views=2, w_size=16, w_iter=2)(z)
    torch.manual_seed(3)
    theirs = LightlyWMSE(embedding_dim=8, num_samples=2, w_size=16, w_iter=2)(z)
    assert abs(ours.item() - theirs.item()) < 1e-5


def test_wmse_errors() -> None:
    with pytest.raises(ValueError, match="not divisible by num_views=2"):
        WMSELoss(num_views=2, w_size=8)(torch.randn(33, 3))
    with pytest.raises(ValueError, match="multiple of w_size=8"):
        WMSELoss(num_views=2, w_size=8)(torch.randn(2 * 12, 3))
    with pytest.raises(ValueError, match="multiple of w_size=8"):
        WMSELoss(num_views=2, w_size=8)(torch.randn(2 * 4, 3))
    with pytest.raises(ValueError, match=r"w_size=8 < 2\*embedding dim"):
        WMSELoss(num_views=2, w_size=8)(torch.randn(2 * 16, 5))
    with pytest.raises(ValueError, match="loss_type"):
        WMSELoss(loss_type="l1")
    with pytest.raises(ValueError, match="shape"):
        WMSELoss()(torch.randn(4, 4, 4))
    with pytest.raises(LossInputError):
        WMSELoss(num_views=1)


def test_wmse_cholesky_failure_names_eps() -> None:
    z = torch.randn(2 * 16, 4)
    z[:, 3] = 0.0  # a constant feature: the covariance is singular
    with pytest.raises(WhiteningError, match="eps"):
        WMSELoss(num_views=2, w_size=8)(z)
    # the shrinkage fixes it
    out = WMSELoss(num_views=2, w_size=8, eps=0.1)(z)
    assert torch.isfinite(out)


def test_wmse_half_inputs_computed_in_float32() -> None:
    z = torch.randn(2 * 32, 4).to(torch.bfloat16).requires_grad_(True)
    out = WMSELoss(num_views=2, w_size=16)(z)
    out.backward()
    assert out.dtype == torch.float32 and torch.isfinite(out) and z.grad is not None
