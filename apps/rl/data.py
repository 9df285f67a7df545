"""The data of an RL app is what the agent collects: frames from the environments (``envs.py``),
stored once each in the uint8 replay buffer with its crop augmentations (``replay.py``). Re-exported
here so ``apps/rl`` keeps the suite's module layout."""
from __future__ import annotations

from .envs import AtariEnv, DMCPixelEnv, EnvSpec, FrameStack, make_env, parse_env, rendering_status
from .replay import FrameReplay, SumTree, center_crop, random_crop, random_shift

__all__ = ["AtariEnv", "DMCPixelEnv", "EnvSpec", "FrameReplay", "FrameStack", "SumTree", "center_crop", "make_env",
           "parse_env", "random_crop", "random_shift", "rendering_status"]
