"""The track bank's EMA update under 2-process DDP equals the single-process update on the whole batch."""
from __future__ import annotations

import torch

from apps.mot.model import EmbeddingNet
from apps.mot.train import InstanceToTrackTask


def _task() -> InstanceToTrackTask:
    torch.manual_seed(0)
    return InstanceToTrackTask(EmbeddingNet(width=4, dim=8), num_tracks=6, temperature=0.1, momentum=0.5)


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"crop": torch.randn(8, 3, 64, 32, generator=g), "label": torch.tensor([0, 1, 2, -1, 0, 3, 5, 1]),
            "pseudo": torch.tensor([-1, -1, -1, 4, -1, -1, -1, -1])}


def _rank_fn(rank: int, world_size: int) -> torch.Tensor:
    task = _task().eval()  # eval: BatchNorm uses running stats, so halves embed like the whole batch
    half = {k: v[rank * 4:(rank + 1) * 4] for k, v in _batch().items()}
    out = task(half)
    task.on_step_end(0, out)
    return task.bank.clone()


def test_bank_update_matches_single_process():
    from shared.testing import run_ddp

    task = _task().eval()
    out = task(_batch())
    task.on_step_end(0, out)
    banks = run_ddp(_rank_fn, world_size=2)
    for bank in banks:
        torch.testing.assert_close(bank, task.bank, rtol=1e-5, atol=1e-6)
    assert bool(task.bank_seen[[0, 1, 2, 3, 4, 5]].all())
