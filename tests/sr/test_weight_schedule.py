"""The linear contrastive-weight schedule: scale 1 at step 0, 0 at train.max_steps; bad values refused."""
from __future__ import annotations

import pytest
import torch

from apps.sr.train import SRConfig, SRTask
from shared.config import apply_overrides
from shared.errors import UsageError

TINY = ["model.scale=2", "model.width=8", "model.invariant=6", "model.enc_blocks=1", "model.body_blocks=1",
        "model.refine_blocks=1", "train.max_steps=4", "loss.warmup_steps=0"]


def scales_seen(schedule: str) -> list[float]:
    task = SRTask(apply_overrides(SRConfig(), TINY + [f"loss.weight_schedule={schedule}"]))
    seen: list[float] = []

    class RecordingObjective(torch.nn.Module):
        def forward(self, out, hr, warmup, contrast_scale):
            seen.append(contrast_scale)
            return {"loss": out["sr"].mean()}

    task.objective = RecordingObjective()
    batch = {"lr": torch.rand(1, 3, 8, 8), "hr": torch.rand(1, 3, 16, 16)}
    for step in range(5):
        task(batch)
        task.on_step_end(step, {})
    return seen


def test_linear_schedule_decays_to_zero_and_constant_stays():
    assert scales_seen("linear") == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    assert scales_seen("constant") == [1.0] * 5


def test_bad_schedule_is_a_usage_error():
    with pytest.raises(UsageError, match="weight_schedule"):
        SRTask(apply_overrides(SRConfig(), TINY + ["loss.weight_schedule=cosine"]))
