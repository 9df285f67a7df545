"""Resumable, rank-aware sampling with per-sample deterministic augmentation.

Each sample ``i`` of epoch ``e`` is produced with the python/numpy/torch RNGs seeded from
``(seed, e, i)``. Augmentations are therefore the same whatever the number of workers, the
number of ranks, or whether the run was resumed half-way through an epoch: the basis of the
engine's bit-exact resume.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from ..errors import CvsuiteError
from .seed import sample_seed, seeded_rngs


class SeededDataset(Dataset):
    """Wraps a map-style dataset; indexed by ``(epoch, index)`` keys from :class:`ResumableBatchSampler`."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with seeded_rngs(sample_seed(self.seed, epoch, index)):
            return self.dataset[index]


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's batches of ``(epoch, index)`` keys, starting at any batch of any epoch.

    The epoch's permutation depends only on ``(seed, epoch)``; rank ``r`` of ``w`` takes every
    ``w``-th sample, and incomplete global batches are dropped so all ranks take equal steps.
    """

    def __init__(self, length: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if batch_size < 1 or world_size < 1:
            raise CvsuiteError(f"batch size must be positive, got {batch_size} (x {world_size} processes)")
        if length < batch_size * world_size:
            raise CvsuiteError(
                f"dataset has {length} samples, fewer than one global batch ({batch_size} x {world_size} processes)")
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.steps_per_epoch = length // (batch_size * world_size)
        self.epoch, self.start_batch = 0, 0

    def set_position(self, epoch: int, start_batch: int) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _order(self) -> Sequence[int]:
        if not self.shuffle:
            return range(self.length)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.length, generator=generator).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = self._order()
        used = self.steps_per_epoch * self.batch_size * self.world_size
        mine = list(order[:used])[self.rank::self.world_size]
        for b in range(self.start_batch, self.steps_per_epoch):
            yield [(self.epoch, i) for i in mine[b * self.batch_size:(b + 1) * self.batch_size]]

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_batch


def move_to(batch: Any, device: torch.device) -> Any:
    """Move tensors nested in dicts/lists/tuples to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [move_to(v, device) for v in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    return batch
