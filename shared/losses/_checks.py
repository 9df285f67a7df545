"""Input validation shared by the losses: one clear line saying what was expected and what came."""
from __future__ import annotations

import functools
from typing import Callable, ParamSpec, TypeVar

import torch

from shared.errors import CvsuiteError


P = ParamSpec("P")
R = TypeVar("R")


class LossInputError(CvsuiteError, ValueError):
    """A loss got a tensor of the wrong shape, dtype or value range (also a ``ValueError``)."""


class WhiteningError(CvsuiteError, RuntimeError):
    """W-MSE could not whiten a sub-batch (its covariance is not positive definite)."""


def check_float(name: str, loss: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise LossInputError(f"{loss}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise LossInputError(f"{loss}: {name} must be a floating-point tensor, got dtype {t.dtype}")


def check_2d(name: str, loss: str, t: torch.Tensor, rows: int | None = None, dim: int | None = None) -> None:
    """``t`` must be a float tensor of shape (rows, dim); ``None`` leaves that size free."""
    check_float(name, loss, t)
    want = f"({'N' if rows is None else rows}, {'D' if dim is None else dim})"
    if t.dim() != 2:
        raise LossInputError(f"{loss}: {name} must have shape {want}, got {tuple(t.shape)}")
    if (rows is not None and t.shape[0] != rows) or (dim is not None and t.shape[1] != dim):
        raise LossInputError(f"{loss}: {name} must have shape {want}, got {tuple(t.shape)}")


def check_pair(loss: str, z0: torch.Tensor, z1: torch.Tensor) -> None:
    """Two views of the same batch: equal (B, D) shapes, same dtype, at least 2 rows."""
    check_2d("z0", loss, z0)
    check_2d("z1", loss, z1)
    if z0.shape != z1.shape:
        raise LossInputError(
            f"{loss}: z0 and z1 must have the same shape (B, D), got {tuple(z0.shape)} and {tuple(z1.shape)}")
    if z0.dtype != z1.dtype:
        raise LossInputError(f"{loss}: z0 and z1 must have the same dtype, got {z0.dtype} and {z1.dtype}")
    if z0.shape[0] < 1:
        raise LossInputError(f"{loss}: the batch is empty (shape {tuple(z0.shape)})")


def check_positive(loss: str, name: str, value: float) -> None:
    if not value > 0:
        raise LossInputError(f"{loss}: {name} must be > 0, got {value}")


def check_labels(loss: str, name: str, t: torch.Tensor, n: int) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8,
                                                          torch.uint8):
        got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
        raise LossInputError(f"{loss}: {name} must be an integer tensor of shape ({n},), got {got}")
    if t.dim() != 1 or t.shape[0] != n:
        raise LossInputError(f"{loss}: {name} must have shape ({n},), got {tuple(t.shape)}")


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """Half-precision inputs are computed in float32 (exp/log and Cholesky need the range)."""
    return torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else t.dtype


def full_precision(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with autocast off (CUDA and CPU): losses need fp32 for exp/log/Cholesky.

    Half-precision inputs coming from an autocast region are upcast by :func:`compute_dtype`.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
            return fn(*args, **kwargs)

    return wrapper
