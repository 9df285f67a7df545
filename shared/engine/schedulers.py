"""Learning-rate schedules, as multipliers of the base LR (for ``torch.optim.lr_scheduler.LambdaLR``)."""
from __future__ import annotations

import math
from typing import Callable

from ..errors import UsageError


def lr_multiplier(name: str, max_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_steps``, then ``cosine`` decay to ``min_ratio`` or ``constant``."""
    if name not in ("cosine", "constant"):
        raise UsageError(f"unknown scheduler {name!r}; choose cosine or constant")

    def multiplier(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if name == "constant":
            return 1.0
        span = max(1, max_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return multiplier
