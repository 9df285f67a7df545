"""Test helpers: run a function in N gloo processes on localhost (CPU DDP without torchrun)."""
from __future__ import annotations

import os
import socket
import tempfile
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, fn: Callable[..., Any], args: tuple, result_dir: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        result = fn(rank, world_size, *args)
        torch.save(result, os.path.join(result_dir, f"rank{rank}.pt"))
    finally:
        dist.barrier()
        dist.destroy_process_group()


def run_ddp(fn: Callable[..., Any], world_size: int = 2, args: tuple = ()) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` spawned gloo processes; return their results.

    ``fn`` must be importable (module level) and return tensors / plain containers.
    """
    port = _free_port()
    with tempfile.TemporaryDirectory() as result_dir:
        mp.start_processes(_worker, args=(world_size, port, fn, args, result_dir), nprocs=world_size,
                           join=True, start_method="spawn")
        return [torch.load(os.path.join(result_dir, f"rank{r}.pt"), weights_only=True) for r in range(world_size)]
