"""Evaluation: mean ± std return over episodes, controls (random policy, image-blind policy) and an
H.264 video of the first episode (imageio-ffmpeg's ffmpeg binary; yuv420p + faststart so browsers play it)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from shared.errors import CvsuiteError

from .envs import FrameStack, make_env, parse_env
from .infer import check_env_matches, env_settings, policy_for, read_policy_file
from .train import evaluate_policy

VIDEO_SCALE = {"dmc": 3, "atari": 4}  # nearest-neighbour upscaling of what the agent sees (100→300, 84→336)


def evaluate_file(weights: str | Path, env_name: str, episodes: int = 10, seed: int = 0, device: str = "cpu",
                  video: str | Path | None = None, fps: int = 30, guard: Any = None,
                  video_max_frames: int | None = None) -> dict[str, Any]:
    """Evaluate a policy file; optionally write the first episode as an MP4 (through ``guard``: atomic),
    its first ``video_max_frames`` frames when given (a short demo of a long Atari game)."""
    tensors, meta = read_policy_file(weights)
    check_env_matches(meta, env_name)
    agent = policy_for(tensors, meta, torch.device(device))
    frames: list[np.ndarray] | None = [] if video else None
    result = evaluate_policy(agent, env_name, seed, episodes, env_settings(meta), int(meta["frame_stack"]),
                             video_frames=frames)
    result.update(agent=meta["agent"], weights=str(weights))
    if video and frames:
        from shared.guard import OutputGuard

        if video_max_frames is not None:
            frames = frames[:video_max_frames]
        with (guard or OutputGuard([weights])).writing(video) as tmp:
            write_video(frames, Path(tmp), VIDEO_SCALE[meta["suite"]], fps)
        result["video"] = str(video)
    return result


def _open_loop_returns(env: Any, episodes: int, action: Callable[[], Any], max_steps: int | None = None) -> list[float]:
    """Returns of evaluation episodes ``0 .. episodes-1`` of ``env`` played by ``action()`` each step, without
    looking at the observations (the policy-independent controls below); ``max_steps`` caps an episode."""
    returns = []
    for episode in range(episodes):
        env.reset(episode)
        total, length, done = 0.0, 0, False
        while not done:
            _, reward, terminal, truncated = env.step(action())
            total += reward
            length += 1
            done = terminal or truncated or (max_steps is not None and length >= max_steps)
        returns.append(total)
    return returns


def _summary(returns: list[float]) -> dict[str, Any]:
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "returns": returns}


def random_policy_returns(env_name: str, episodes: int, seed: int, **env_kw: Any) -> dict[str, Any]:
    """Control: uniformly random actions on the same evaluation episodes."""
    env = make_env(env_name, seed, training=False, **env_kw)
    rng = np.random.default_rng(seed)
    return _summary(_open_loop_returns(env, episodes, lambda: env.sample_action(rng)))


def zero_action_returns(env_name: str, episodes: int, seed: int, **env_kw: Any) -> dict[str, Any]:
    """Control for continuous tasks: the all-zero action held every step (a "stand still" policy) on the
    same evaluation episodes; a policy that learned nothing but to keep still scores the same."""
    env = make_env(env_name, seed, training=False, **env_kw)
    zero = np.zeros(env.action_dim, dtype=np.float32)
    return _summary(_open_loop_returns(env, episodes, lambda: zero))


def constant_action_returns(env_name: str, episodes: int, seed: int, max_steps: int | None = None) -> dict[str, Any]:
    """Control for discrete games: every action of the minimal set held for whole episodes (the same
    episodes as the policy's). A policy that only learned one button scores no more than the best of these."""
    env = make_env(env_name, seed, training=False)
    if env.continuous:
        raise CvsuiteError("constant-action control is for discrete (Atari) environments")
    per_action = [float(np.mean(_open_loop_returns(env, episodes, lambda a=action: a, max_steps)))
                  for action in range(env.num_actions)]
    best = int(np.argmax(per_action))
    return {"per_action_mean_return": per_action, "best_action": best, "best_mean_return": per_action[best]}


def blind_policy_returns(weights: str | Path, env_name: str, episodes: int, seed: int) -> dict[str, Any]:
    """Control: the trained policy fed black frames — a policy that ignores its input scores the same."""
    tensors, meta = read_policy_file(weights)
    agent = policy_for(tensors, meta, torch.device("cpu"))
    agent.train_mode(False)
    env = make_env(env_name, seed, training=False, **env_settings(meta))
    stack = FrameStack(int(meta["frame_stack"]))
    returns = []
    for episode in range(episodes):
        blank = np.zeros_like(env.reset(episode))
        obs = stack.reset(blank)
        total, done = 0.0, False
        while not done:
            _, reward, terminal, truncated = env.step(agent.act(obs, explore=False))
            total += reward
            done = terminal or truncated
        returns.append(total)
    return _summary(returns)


def write_video(frames: list[np.ndarray], path: Path, scale: int, fps: int = 30) -> None:
    """(C, H, W) uint8 frames → H.264 MP4 (:class:`shared.data.video.VideoWriter`), each pixel a
    ``scale``×``scale`` block so 84-pixel observations are watchable."""
    from shared.data.video import VideoWriter

    if not frames:
        raise CvsuiteError("no frames to write")
    with VideoWriter(path, fps=fps) as writer:
        for frame in frames:
            writer.write(_rgb(frame, scale))


def _rgb(frame: np.ndarray, scale: int) -> np.ndarray:
    image = np.asarray(frame).transpose(1, 2, 0)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def suite_of(env_name: str) -> str:
    return parse_env(env_name).suite
