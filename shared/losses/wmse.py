"""W-MSE (Ermolov et al., ICML 2021): whiten each sub-batch of embeddings, then pull views together.

The batch holds ``num_views`` views stacked view by view: rows ``[v*B, (v+1)*B)`` are view ``v``.
Each of ``w_iter`` repeats draws a random permutation of the B samples (the same one for every
view), splits it into sub-batches of ``w_size``, and whitens every (sub-batch, view) block:
centre, Σ = XᵀX/(n−1), Σ' = (1−eps)Σ + eps·I, L = chol(Σ'), z = L⁻¹(x − μ). The loss is the mean
over view pairs i<j of ``2 − 2·mean cos(z_i, z_j)`` ("norm_mse") or of the plain MSE ("mse").

Speed: all (repeat, sub-batch, view) blocks are whitened together — one batched covariance
``bmm``, one batched ``cholesky_ex`` and one batched triangular solve — with no Python loop over
sub-batches, and the view-pair sum uses ‖Σ_v n_v‖² − Σ_v ‖n_v‖² = 2 Σ_{i<j} n_i·n_j instead of a
loop over pairs. Rows are never un-permuted: the loss is a mean over rows, so the order is moot.
Whitening, the normalised-MSE and the permutation gather have hand-written backwards (see each
class); they are checked against plain autograd and ``gradcheck`` in tests/losses/test_wmse.py.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from shared.engine.distributed import gather_with_grad, get_world_size

from ._checks import LossInputError, WhiteningError, check_2d, compute_dtype, full_precision

LOSS_TYPES = ("norm_mse", "mse")


def _raise_if_failed(bad: torch.Tensor, eps: float, n: int, d: int) -> None:
    if bool(bad.any()):
        raise WhiteningError(
            f"WMSELoss: Cholesky failed for {int(bad.sum())} of {bad.shape[0]} sub-batch covariance(s) (not "
            f"positive definite; embedding dim {d}, w_size {n}, eps {eps}); set eps > 0 (e.g. eps=1e-4, "
            f"shrinkage (1-eps)*cov + eps*I) or use a larger w_size")


def _cholesky_or_raise(cov: torch.Tensor, eps: float, n: int) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(cov)
    _raise_if_failed(info > 0, eps, n, cov.shape[-1])
    return chol


_BLOCK = 32  # LAPACK's batched potrf/trsm are much slower per flop than GEMM on CPU: recurse in halves


def _inverse_cholesky(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L⁻¹ for L = chol(cov) of a batch (M, d, d), and a per-matrix failure flag (M,).

    Blocked (recursive 2x2) so every LAPACK call is at most ``_BLOCK`` wide and the rest are
    batched GEMMs: L₁₁ = chol(Σ₁₁), L₂₁ = Σ₂₁ L₁₁⁻ᵀ, L₂₂ = chol(Σ₂₂ − L₂₁ L₂₁ᵀ),
    (L⁻¹)₂₁ = −L₂₂⁻¹ L₂₁ L₁₁⁻¹.
    """
    m, d = cov.shape[0], cov.shape[-1]
    if d <= _BLOCK:
        chol, info = torch.linalg.cholesky_ex(cov)
        eye = torch.eye(d, dtype=cov.dtype, device=cov.device).expand(m, d, d).contiguous()
        return torch.linalg.solve_triangular(chol, eye, upper=False), info > 0
    h = d // 2
    inv11, bad11 = _inverse_cholesky(cov[:, :h, :h])
    l21 = torch.bmm(cov[:, h:, :h], inv11.transpose(1, 2))
    schur = torch.baddbmm(cov[:, h:, h:], l21, l21.transpose(1, 2), alpha=-1.0)
    inv22, bad22 = _inverse_cholesky(schur)
    inv = torch.zeros_like(cov)
    inv[:, :h, :h] = inv11
    inv[:, h:, h:] = inv22
    inv[:, h:, :h] = torch.bmm(inv22, torch.bmm(l21, inv11)).neg_()
    return inv, bad11 | bad22


class _CholeskyWhiten(torch.autograd.Function):
    """Z = (X − μ) L⁻ᵀ per block (rows whitened), L Lᵀ = (1−eps)·XcᵀXc/(n−1) + eps·I; own backward.

    Backward (from dΣ = dL Lᵀ + L dLᵀ): with G = ∂ℓ/∂Z (n, d) and M = Gᵀ Z (d, d), let P be the
    lower triangle of M with its diagonal halved and S = P + Pᵀ; then
    ∂ℓ/∂Xc = (G − (1−eps)/(n−1)·Z S) L⁻¹ and ∂ℓ/∂X is that minus its mean over the block's rows:
    three O(n·d²) batched products instead of the ~six autograd chains through cholesky/solve.
    With ``use_inverse`` L⁻¹ is formed once (blocked, :func:`_inverse_cholesky`) and every O(n·d²)
    product is a plain batched GEMM, which CPU BLAS runs much faster than batched triangular solves.
    """

    @staticmethod
    @full_precision
    def forward(ctx, x: torch.Tensor, eps: float, use_inverse: bool) -> torch.Tensor:  # type: ignore[override]
        n, d = x.shape[1], x.shape[2]
        xc = x - x.mean(dim=1, keepdim=True)
        cov = torch.bmm(xc.transpose(1, 2), xc).mul_((1.0 - eps) / (n - 1))
        if eps:
            cov.diagonal(dim1=1, dim2=2).add_(eps)
        if use_inverse:
            factor, bad = _inverse_cholesky(cov)  # L⁻¹
            _raise_if_failed(bad, eps, n, d)
            z = torch.bmm(xc, factor.transpose(1, 2))
        else:
            factor = chol = _cholesky_or_raise(cov, eps, n)
            z = torch.linalg.solve_triangular(chol.transpose(1, 2), xc, upper=True, left=False)
        ctx.save_for_backward(factor, z)
        ctx.scale, ctx.use_inverse = (1.0 - eps) / (n - 1), use_inverse
        return z

    @staticmethod
    @full_precision
    def backward(ctx, grad_z: torch.Tensor):  # type: ignore[override]
        factor, z = ctx.saved_tensors
        p = torch.bmm(grad_z.transpose(1, 2), z).tril_()  # (M, d, d)
        p.diagonal(dim1=1, dim2=2).mul_(0.5)
        sym = p + p.transpose(1, 2)
        h = torch.baddbmm(grad_z, z, sym, alpha=-ctx.scale)
        if ctx.use_inverse:
            grad_x = torch.bmm(h, factor)
        else:
            grad_x = torch.linalg.solve_triangular(factor, h, upper=False, left=False)
        return grad_x - grad_x.mean(dim=1, keepdim=True), None, None


class _NormMSEViews(torch.autograd.Function):
    """mean over rows of Σ_{i<j} cos(z_i, z_j) for z (V, R, d), with a fused backward.

    Σ_{i<j} n_i·n_j = (‖s‖² − V)/2 with s = Σ_v n_v, n_v = z_v/‖z_v‖, and
    ∂/∂z_v = (s − (n_v·s) n_v)/‖z_v‖ per row.
    """

    @staticmethod
    @full_precision
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        views, rows = z.shape[0], z.shape[1]
        norm = z.norm(dim=2, keepdim=True).clamp_min_(1e-12)
        unit = z / norm
        total = unit.sum(dim=0)
        pair = (total.square().sum() - unit.square().sum()) * (0.5 / rows)
        ctx.save_for_backward(unit, norm, total)
        return pair

    @staticmethod
    @full_precision
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        unit, norm, total = ctx.saved_tensors
        rows = unit.shape[1]
        along = (unit * total).sum(dim=2, keepdim=True)
        grad = (total - along * unit).div_(norm)
        return grad.mul_(grad_out / rows)


class _PermuteRows(torch.autograd.Function):
    """x (V, B, d) -> x[:, cat(perms)] for ``perms`` (I, B) permutations, with a scatter-free backward.

    Autograd's backward of fancy indexing is an accumulating index_put (slow on CPU); for
    permutations the gradient is a plain gather with the inverse permutation, summed over repeats.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(perms)
        return torch.index_select(x, 1, perms.reshape(-1))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (perms,) = ctx.saved_tensors
        inverse = torch.argsort(perms, dim=1)
        batch = perms.shape[1]
        out = torch.index_select(grad[:, :batch], 1, inverse[0])
        for i in range(1, perms.shape[0]):
            out.add_(torch.index_select(grad[:, i * batch:(i + 1) * batch], 1, inverse[i]))
        return out, None


_USE_INVERSE = True


def whiten_blocks(x: torch.Tensor, eps: float = 0.0, use_inverse: bool | None = None) -> torch.Tensor:
    """Whiten a batch of blocks ``x`` (M, n, d) -> (M, n, d): every block's rows get identity covariance.

    Each block is centred and multiplied by L⁻ᵀ where L Lᵀ = (1−eps)·cov + eps·I, cov with (n−1).
    Raises :class:`WhiteningError` naming ``eps`` when a covariance is not positive definite.
    ``use_inverse`` picks the GEMM-with-L⁻¹ path (default) or batched triangular solves.
    """
    if x.dim() != 3:
        raise LossInputError(f"whiten_blocks: x must have shape (M, n, d), got {tuple(x.shape)}")
    return _CholeskyWhiten.apply(x, float(eps), _USE_INVERSE if use_inverse is None else use_inverse)


class WMSELoss(nn.Module):
    """Whitening-MSE loss over ``num_views`` views stacked view by view.

    Example::

        loss_fn = WMSELoss(num_views=2, w_size=128)
        z = torch.cat([proj(view0), proj(view1)])     # (2*B, D), B divisible by 128, 128 >= 2*D
        loss = loss_fn(z)

    The permutation uses ``generator`` if given, otherwise torch's global generator, so runs are
    reproducible under ``torch.manual_seed``. With ``gather_distributed=True`` the whole batch is
    all-gathered (with gradients) and rank 0's permutation is broadcast, so every rank computes
    the single-process loss of the concatenated batch.
    """

    def __init__(self, num_views: int = 2, w_size: int = 128, w_iter: int = 1, eps: float = 0.0,
                 loss_type: str = "norm_mse", gather_distributed: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if int(num_views) < 2:
            raise LossInputError(f"WMSELoss: num_views must be >= 2, got {num_views}")
        if int(w_size) < 2:
            raise LossInputError(f"WMSELoss: w_size must be >= 2, got {w_size}")
        if int(w_iter) < 1:
            raise LossInputError(f"WMSELoss: w_iter must be >= 1, got {w_iter}")
        if not 0.0 <= eps < 1.0:
            raise LossInputError(f"WMSELoss: eps must be in [0, 1), got {eps}")
        if loss_type not in LOSS_TYPES:
            raise LossInputError(f"WMSELoss: loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
        self.num_views, self.w_size, self.w_iter = int(num_views), int(w_size), int(w_iter)
        self.eps, self.loss_type = float(eps), loss_type
        self.gather_distributed = gather_distributed
        self.generator = generator

    def _permutations(self, batch: int, device: torch.device, share: bool) -> torch.Tensor:
        perms = torch.stack([torch.randperm(batch, generator=self.generator) for _ in range(self.w_iter)])
        perms = perms.to(device)
        if share:
            dist.broadcast(perms, src=0)
        return perms

    @full_precision
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_2d("z", "WMSELoss", z)
        views, w = self.num_views, self.w_size
        rows, dim = z.shape
        if rows % views:
            raise LossInputError(
                f"WMSELoss: z has {rows} rows, not divisible by num_views={views} (stack the views view by view)")
        x = z.to(compute_dtype(z))
        world = get_world_size() if self.gather_distributed else 1
        if world > 1:
            local = rows // views
            x = gather_with_grad(x).view(world, views, local, dim).transpose(0, 1).reshape(world * rows, dim)
        batch = x.shape[0] // views
        if batch % w or batch < w:
            raise LossInputError(
                f"WMSELoss: the per-view batch {batch} must be a positive multiple of w_size={w}")
        if w < 2 * dim:
            raise LossInputError(
                f"WMSELoss: w_size={w} < 2*embedding dim ({2 * dim}); the sub-batch covariance would be "
                f"near-singular. Use w_size >= {2 * dim} or a smaller embedding")
        perms = self._permutations(batch, x.device, share=world > 1)
        x = x.view(views, batch, dim)
        subs = batch // w
        if subs == 1:
            # One sub-batch: whitening is permutation-invariant, so every repeat gives the same loss.
            blocks = x
        else:
            blocks = _PermuteRows.apply(x, perms).reshape(views * self.w_iter * subs, w, dim)
        zw = whiten_blocks(blocks, self.eps).reshape(views, -1, dim)  # (V, rows, d)
        pairs = views * (views - 1) // 2
        if self.loss_type == "norm_mse":
            return 2.0 - 2.0 * _NormMSEViews.apply(zw) / pairs
        total = zw.sum(dim=0)
        pair_sq = views * zw.square().sum() - total.square().sum()  # Σ_rows Σ_{i<j} ‖z_i − z_j‖²
        return pair_sq / (zw.shape[1] * pairs * dim)

    def extra_repr(self) -> str:
        return (f"num_views={self.num_views}, w_size={self.w_size}, w_iter={self.w_iter}, eps={self.eps}, "
                f"loss_type={self.loss_type!r}, gather_distributed={self.gather_distributed}")
