"""Tiny datasets and tasks for engine tests (module level so spawned DDP workers can import them)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from shared.engine import TrainTask


class NoisyRegression(Dataset):
    """Fixed inputs with random augmentation (noise drawn from the global torch RNG in __getitem__)."""

    def __init__(self, n: int = 48, dim: int = 6) -> None:
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, dim, generator=g)
        self.y = self.x @ torch.randn(dim, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i] + 0.1 * torch.randn_like(self.x[i]), self.y[i]


class RegressionTask(TrainTask):
    """MLP with dropout (uses the global RNG in forward) and an EMA copy updated in on_step_end."""

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
        self.register_buffer("ema_weight", torch.zeros(16, dim))

    def forward(self, batch):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        return {"loss": loss, "mean_pred": loss.detach() * 0 + y.mean()}

    def on_step_end(self, step, outputs):
        with torch.no_grad():
            self.ema_weight.mul_(0.9).add_(0.1 * self.net[0].weight)
