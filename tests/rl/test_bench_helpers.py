"""The Atari comparison helpers of ``evaluation/rl_atari_compare.py``: the over-seeds summary and the
float16 copy whose sha256 is checked against the manifest."""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from evaluation.rl_atari_compare import fp16_copy_sha256, run_dir, summarise
from shared.weights import save_safetensors


def _run(reported: float, blind: float, validation: float) -> dict:
    return {"reported": {"policy": {"mean_return": reported}, "blind_policy": {"mean_return": blind}},
            "validation": {"mean_return": validation}}


def test_summary_is_mean_and_population_std_over_seeds() -> None:
    per_run = {"curl-der": {2: _run(900.0, 0.0, 10.0), 0: _run(1100.0, 1000.0, 30.0), 1: _run(1300.0, 500.0, 20.0)},
               "der": {0: _run(500.0, 0.0, 5.0)}}
    control = {"random_policy": {"mean_return": 130.0, "std_return": 390.0},
               "constant_actions": {"best_action": 7, "best_mean_return": 990.0, "per_action_mean_return": [0.0] * 18}}
    out = summarise(per_run, {0: 1.0, 1: 3.0}, control)
    curl = out["agents"]["curl-der"]
    assert curl["seeds"] == [0, 1, 2]
    assert curl["reported"]["per_seed"] == [1100.0, 1300.0, 900.0]  # in seed order
    assert curl["reported"]["mean_return"] == 1100.0
    explicit_std = (sum((x - 1100.0) ** 2 for x in (1100.0, 1300.0, 900.0)) / 3) ** 0.5
    assert abs(curl["reported"]["std_over_seeds"] - explicit_std) < 1e-9
    assert curl["blind_policy_reported"]["per_seed"] == [1000.0, 500.0, 0.0]
    assert curl["validation"]["mean_return"] == 20.0
    assert out["agents"]["der"]["reported"]["std_over_seeds"] == 0.0
    assert out["reported_controls"]["best_constant_action_mean_return"] == 990.0
    assert out["validation_random_policy"]["mean_return"] == 2.0


def test_fp16_copy_matches_the_shipping_tool_bytes(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    model = tmp_path / "model.safetensors"
    save_safetensors({"online.b": torch.randn(3, generator=gen), "online.a": torch.randn(2, 4, generator=gen)}, model,
                     metadata={"agent": "curl-der", "env": "atari:road_runner"})
    sha = fp16_copy_sha256(model, tmp_path / "copy.safetensors")
    assert sha == hashlib.sha256((tmp_path / "copy.safetensors").read_bytes()).hexdigest()
    blob = (tmp_path / "copy.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    assert header["__metadata__"] == {"agent": "curl-der", "env": "atari:road_runner", "stored_dtype": "float16"}
    with safe_open(str(model), "pt") as full, safe_open(str(tmp_path / "copy.safetensors"), "pt") as half:
        for key in full.keys():
            assert half.get_tensor(key).dtype == torch.float16
            np.testing.assert_array_equal(half.get_tensor(key).numpy(), full.get_tensor(key).half().numpy())
    assert fp16_copy_sha256(model, tmp_path / "again.safetensors") == sha  # same bytes every time


def test_run_folders_are_the_compare_sections() -> None:
    assert run_dir(Path("o"), "atari:RoadRunner", "der", 1, 10000) == Path("o/rl_compare/atari_RoadRunner_der_s1_10000")


class _StillAgent:
    """Stands in for a trained SAC agent: always the zero action."""

    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        return np.zeros(self.action_dim, dtype=np.float32)

    def train_mode(self, training: bool) -> None:
        pass


def test_zero_action_control_equals_a_still_policy_on_the_same_episodes() -> None:
    from apps.rl.train import evaluate_policy
    from apps.rl.evaluate import zero_action_returns

    kw = {"time_limit": 1.0, "image_size": 32}
    control = zero_action_returns("dmc:cartpole-swingup", 2, 7, **kw)
    still = evaluate_policy(_StillAgent(1), "dmc:cartpole-swingup", 7, 2, kw, 3)
    assert control["returns"] == still["returns"]
    assert all(r > 0 for r in control["returns"])  # cartpole's dense reward: a real episode was played
    assert control["mean_return"] == still["mean_return"]
