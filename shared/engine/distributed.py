"""Distributed helpers: torchrun initialisation, rank queries and gathers that keep gradients.

``torchrun --nproc_per_node=N -m shared.cli <app> train ...`` sets RANK/WORLD_SIZE/LOCAL_RANK;
:func:`init_distributed` picks gloo on CPU and nccl on CUDA. Everything here is a no-op on one
process, so the same code runs with and without torchrun.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group torchrun describes in the environment (once); return this rank's info."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        if device_type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo(get_rank(), get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def raise_on_all_ranks(error: BaseException | None) -> None:
    """Raise rank 0's error (or nothing) on EVERY rank.

    For checks only rank 0 makes (e.g. claiming output files): without this, rank 0 would stop
    with its one-line error while the other ranks wait forever in their first collective.
    """
    if not is_dist() or get_world_size() == 1:
        if error is not None:
            raise error
        return
    from ..errors import CvsuiteError, UsageError

    payload: list[object] = [None]
    if get_rank() == 0 and error is not None:
        payload = [(str(error), int(getattr(error, "exit_code", 1)))]
    dist.broadcast_object_list(payload, src=0)
    if payload[0] is None:
        return
    if error is not None:
        raise error
    message, code = payload[0]  # type: ignore[misc]
    raise (UsageError if code == 2 else CvsuiteError)(message)


def barrier() -> None:
    if is_dist():
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the incoming gradients over ranks and returns this rank's slice.

    With this rule a loss that each rank computes on its local anchors against gathered
    candidates (or on the whole gathered batch) gets, after DDP's gradient averaging, exactly the
    gradient of the single-process loss on the concatenated batch.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        world = dist.get_world_size()
        ctx.rank, ctx.batch = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.batch:(ctx.rank + 1) * ctx.batch]


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (same shape on every rank) from all ranks along dim 0, differentiably."""
    if not is_dist() or get_world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


@torch.no_grad()
def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0 (no gradient; e.g. MoCo keys to enqueue)."""
    if not is_dist() or get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (a copy; for logging or bank updates)."""
    if not is_dist():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()


def local_slice(batch_size: int) -> slice:
    """This rank's rows in a tensor gathered with :func:`gather_with_grad` (same batch per rank)."""
    rank = get_rank()
    return slice(rank * batch_size, (rank + 1) * batch_size)
