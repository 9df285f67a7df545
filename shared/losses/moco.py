"""MoCo queue: a FIFO of past (momentum-encoder) keys used as negatives."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.engine.distributed import gather_no_grad

from ._checks import LossInputError, check_2d


class MoCoQueue(nn.Module):
    """A ring buffer of ``size`` L2-normalised keys of dimension ``dim`` (a buffer, so checkpointed).

    Example::

        queue = MoCoQueue(dim=128, size=4096)
        loss = InfoNCE(0.07)(q, k, queue.negatives())
        ...  # after the optimizer step
        queue.enqueue(k)          # all-gathers keys across ranks first
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        if dim < 1 or size < 1:
            raise LossInputError(f"MoCoQueue: dim and size must be >= 1, got dim={dim}, size={size}")
        self.dim, self.size = int(dim), int(size)
        self.register_buffer("queue", F.normalize(torch.randn(self.size, self.dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def negatives(self) -> torch.Tensor:
        """The queued keys (K, D), detached."""
        return self.queue.detach()

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest entries with ``keys`` (B, D) gathered from all ranks (normalised here)."""
        check_2d("keys", "MoCoQueue.enqueue", keys, dim=self.dim)
        keys = F.normalize(gather_no_grad(keys.detach()).to(self.queue.dtype), dim=1)
        if keys.shape[0] >= self.size:
            self.queue.copy_(keys[-self.size:])
            self.ptr.zero_()
            return
        start = int(self.ptr)
        idx = (torch.arange(keys.shape[0], device=self.queue.device) + start) % self.size
        self.queue[idx] = keys
        self.ptr.fill_((start + keys.shape[0]) % self.size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, size={self.size}"
