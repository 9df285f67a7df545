"""Environment wrappers: names, action repeat per task, per-episode determinism, frame stacking, fast render."""
from __future__ import annotations

import numpy as np
import pytest

from apps.rl.envs import DMC_ACTION_REPEAT, FrameStack, make_env, parse_env
from shared.errors import UsageError


def test_env_names() -> None:
    assert parse_env("dmc:ball-in-cup-catch").domain == "ball_in_cup"
    assert parse_env("dmc:cartpole-swingup").name == "dmc:cartpole-swingup"
    assert parse_env("atari:MsPacman").domain == "ms_pacman"
    for bad in ("cartpole", "dmc:cartpole-fly", "atari:Nope", "gym:CartPole-v1"):
        with pytest.raises(UsageError):
            parse_env(bad)


def test_dmc_action_repeat_and_episode_determinism() -> None:
    assert DMC_ACTION_REPEAT == {"cartpole": 8, "finger": 2, "walker": 2, "cheetah": 4, "reacher": 4, "ball_in_cup": 4}
    env = make_env("dmc:cartpole-swingup", seed=3, time_limit=0.3)
    assert env.action_repeat == 8 and env.frame_shape == (3, 100, 100)
    rng = np.random.default_rng(0)
    actions = [env.sample_action(rng) for _ in range(4)]

    def play(episode: int) -> list[np.ndarray]:
        frames = [env.reset(episode)]
        for a in actions:
            frame, reward, terminal, truncated = env.step(a)
            frames.append(frame)
            assert not terminal  # DMC episodes end by time limit only (truncation)
            if truncated:
                break
        return frames

    first, again, other = play(5), play(5), play(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    assert len(first) == 5 and truncated_after(env, actions) == 4  # 0.3 s = 30 physics steps = 4 agent steps


def truncated_after(env, actions) -> int:
    env.reset(0)
    for i in range(100):
        *_, truncated = env.step(actions[i % len(actions)])
        if truncated:
            return i + 1
    return -1


def test_fast_render_matches_default_frames() -> None:
    fast = make_env("dmc:cartpole-swingup", seed=0)
    slow = make_env("dmc:cartpole-swingup", seed=0, fast_render=False)
    a, b = fast.reset(2).astype(int), slow.reset(2).astype(int)
    assert np.abs(a - b).mean() < 3.0 and (np.abs(a - b) > 0).mean() < 0.2  # anti-aliased edges only


def test_atari_episode_determinism_and_life_loss() -> None:
    env = make_env("atari:Breakout", seed=1)
    assert env.frame_shape == (1, 84, 84) and env.num_actions == 4

    def play(episode: int) -> tuple[list[np.ndarray], bool]:
        frames, rng, terminal = [env.reset(episode)], np.random.default_rng(0), False
        for _ in range(300):
            frame, _, terminal, truncated = env.step(env.sample_action(rng))
            frames.append(frame)
            if terminal or truncated:
                break
        return frames, terminal

    first, lost = play(4)
    env._life_lost = False  # a lost life continues the game at the next reset; start a new game instead
    again, _ = play(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert lost  # a random Breakout player loses a life within 300 steps: a training terminal
    env._life_lost = False


def test_frame_stack_padding() -> None:
    repeat, zero = FrameStack(3, "repeat"), FrameStack(3, "zero")
    f = np.full((1, 2, 2), 7, np.uint8)
    assert repeat.reset(f)[:, 0, 0].tolist() == [7, 7, 7]
    assert zero.reset(f)[:, 0, 0].tolist() == [0, 0, 7]
    assert zero.push(np.full((1, 2, 2), 9, np.uint8))[:, 0, 0].tolist() == [0, 7, 9]
