"""Replay buffer (frame sharing, uint8 round trip, valid indices at episode boundaries, n-step, PER) and
the crop augmentations, each against an explicit reference."""
from __future__ import annotations

import numpy as np
import pytest

from apps.rl.envs import FrameStack
from apps.rl.replay import FrameReplay, SumTree, center_crop, random_crop, random_shift


def _frame(value: int, shape=(3, 6, 6)) -> np.ndarray:
    return np.full(shape, value % 256, dtype=np.uint8)


def _fill(buf: FrameReplay, episode_lengths: list[int], terminal_last: bool = False) -> list[dict]:
    """Play episodes of given lengths; frame value = a global counter. Returns reference transitions."""
    counter = 0
    reference = []
    for ep, length in enumerate(episode_lengths):
        stack = FrameStack(buf.stack, pad=buf.pad)
        frame = _frame(counter, buf.frame_shape)
        obs = stack.reset(frame)
        buf.start_episode(frame)
        counter += 1
        for t in range(length):
            nxt = _frame(counter, buf.frame_shape)
            counter += 1
            next_obs = stack.push(nxt)
            last = t == length - 1
            reward = float(counter)
            buf.add(np.array([t], dtype=np.float32), reward, terminal=last and terminal_last,
                    truncated=last and not terminal_last, next_frame=nxt)
            reference.append({"obs": obs, "next_obs": next_obs, "reward": reward, "episode": ep, "t": t,
                              "last": last, "terminal": last and terminal_last})
            obs = next_obs
    return reference


def test_frames_are_stored_once_and_stacks_round_trip_uint8() -> None:
    buf = FrameReplay(capacity=64, frame_shape=(3, 6, 6), stack=3, action_shape=(1,))
    reference = _fill(buf, [5, 7])
    assert buf.frames.dtype == np.uint8 and buf.frames.shape == (64, 3, 6, 6)  # one frame per slot
    assert buf.written == 5 + 7 + 2  # T + 1 frames per episode
    assert len(buf) == 12
    # every stored transition's stacks equal what the FrameStack wrapper produced while playing
    absolute = np.array([i for i in range(buf.written) if buf.has_transition[i]])
    obs = buf.stacks(absolute)
    nxt = buf.stacks(absolute + 1)
    assert obs.dtype == np.uint8
    for i, ref in enumerate(reference):
        np.testing.assert_array_equal(obs[i], ref["obs"])
        np.testing.assert_array_equal(nxt[i], ref["next_obs"])
    # memory: ≤ 1 byte per stored pixel plus small per-slot bookkeeping
    pixels = buf.capacity * 3 * 6 * 6
    assert buf.frames.nbytes == pixels


def test_zero_padding_for_atari_stacks() -> None:
    buf = FrameReplay(capacity=32, frame_shape=(1, 4, 4), stack=4, action_shape=(1,), pad="zero")
    counter = 1
    buf.start_episode(np.full((1, 4, 4), counter, np.uint8))
    for _ in range(3):
        counter += 1
        buf.add([0], 0.0, False, False, np.full((1, 4, 4), counter, np.uint8))
    first = buf.stacks(np.array([0]))[0]
    assert [int(first[c, 0, 0]) for c in range(4)] == [0, 0, 0, 1]
    third = buf.stacks(np.array([2]))[0]
    assert [int(third[c, 0, 0]) for c in range(4)] == [0, 1, 2, 3]


def test_sampling_never_crosses_episode_boundaries_or_overwritten_frames() -> None:
    buf = FrameReplay(capacity=20, frame_shape=(1, 2, 2), stack=3, action_shape=(1,), seed=3)
    # several episodes wrap the ring; frame value encodes (episode, t) so stacks can be checked
    for ep in range(6):
        buf.start_episode(np.full((1, 2, 2), ep * 10, np.uint8))
        for t in range(1, 5):
            buf.add([t], 1.0, False, t == 4, np.full((1, 2, 2), ep * 10 + t, np.uint8))
    for _ in range(20):
        batch = buf.sample(8)
        for i, a in enumerate(batch["index"]):
            assert buf.has_transition[a % buf.capacity]
            assert a >= buf.written - buf.capacity
            values = batch["obs"][i][:, 0, 0].astype(int)
            nxt = batch["next_obs"][i][:, 0, 0].astype(int)
            # all frames of one stack from one episode, consecutive (after the repeated first frame)
            assert len({v // 10 for v in values}) == 1 and len({v // 10 for v in nxt}) == 1
            assert values[0] // 10 == nxt[0] // 10
            assert np.all(np.diff(values) >= 0) and np.all(np.diff(values) <= 1)
            assert nxt[-1] == values[-1] + 1


def test_n_step_targets_match_explicit_loop() -> None:
    gamma, n = 0.9, 3
    buf = FrameReplay(capacity=100, frame_shape=(1, 2, 2), stack=2, action_shape=(1,), n_step=n, discount=gamma)
    reference = _fill(buf, [5, 2, 6], terminal_last=True)
    rewards = np.array([r["reward"] for r in reference])
    absolute = np.array([i for i in range(buf.written) if buf.has_transition[i]])
    returns, factor, next_index = buf.n_step_targets(absolute)
    for i, ref in enumerate(reference):
        total, k, j, terminal = 0.0, 0, i, False
        while k < n:
            total += gamma ** k * rewards[j]
            k += 1
            if reference[j]["last"]:
                terminal = reference[j]["terminal"]
                break
            j += 1
        boot = 0.0 if terminal else gamma ** k
        assert returns[i] == pytest.approx(total, rel=1e-6)
        assert factor[i] == pytest.approx(boot, rel=1e-6)
        assert next_index[i] == absolute[i] + k
    # only transitions whose n-step window is settled are drawn
    assert buf._valid(absolute).all()


def test_prioritised_sampling_is_proportional_and_weights_normalised() -> None:
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 2.0, 3.0, 4.0]))
    assert tree.total == pytest.approx(10.0)
    draws = tree.find(np.linspace(0, 10, 100_000, endpoint=False))
    counts = np.bincount(draws, minlength=5) / len(draws)
    np.testing.assert_allclose(counts, [0.1, 0.0, 0.2, 0.3, 0.4], atol=1e-3)
    buf = FrameReplay(capacity=50, frame_shape=(1, 2, 2), stack=2, action_shape=(1,), prioritized=True, seed=0)
    _fill(buf, [10, 10])
    buf.update_priorities(np.array([0, 1]), np.array([100.0, 1e-3]))
    batch = buf.sample(16, beta=0.5)
    assert batch["weight"].max() == pytest.approx(1.0)
    assert (batch["index"] == 0).sum() > (batch["index"] == 1).sum()


def test_state_round_trip_samples_identically() -> None:
    a = FrameReplay(capacity=30, frame_shape=(1, 3, 3), stack=3, action_shape=(1,), prioritized=True, seed=5)
    _fill(a, [8, 9])
    b = FrameReplay(capacity=30, frame_shape=(1, 3, 3), stack=3, action_shape=(1,), prioritized=True, seed=99)
    b.load_state_dict(a.state_dict())
    x, y = a.sample(6), b.sample(6)
    for key in ("index", "obs", "next_obs", "reward", "discount", "weight"):
        np.testing.assert_array_equal(x[key], y[key])


def test_capacity_smaller_than_batch_is_refused() -> None:
    from shared.errors import UsageError

    buf = FrameReplay(capacity=4, frame_shape=(1, 2, 2), stack=1, action_shape=(1,))
    _fill(buf, [3])
    with pytest.raises(UsageError, match="smaller than the batch"):
        buf.sample(8)


def test_random_crop_matches_slicing_and_official_offset_range() -> None:
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (64, 9, 12, 12), dtype=np.uint8)
    out = random_crop(obs, 8, np.random.default_rng(1))
    ref_rng = np.random.default_rng(1)
    top, left = ref_rng.integers(0, 4, 64), ref_rng.integers(0, 4, 64)  # randint(0, crop_max): excludes 4
    for i in range(64):
        np.testing.assert_array_equal(out[i], obs[i, :, top[i]:top[i] + 8, left[i]:left[i] + 8])
    assert out.dtype == np.uint8 and out.shape == (64, 9, 8, 8)
    # the same offsets for every channel of one sample (the stack is cropped as one image)
    seen = {(int(t), int(l)) for t, l in zip(top, left)}
    assert max(t for t, _ in seen) == 3 and min(t for t, _ in seen) == 0


def test_center_crop_offsets() -> None:
    obs = np.arange(2 * 3 * 100 * 100, dtype=np.int64).reshape(2, 3, 100, 100)
    out = center_crop(obs, 84)
    np.testing.assert_array_equal(out, obs[:, :, 8:92, 8:92])
    odd = np.arange(7 * 7).reshape(1, 7, 7)
    np.testing.assert_array_equal(center_crop(odd, 4), odd[:, 1:5, 1:5])


def test_random_shift_is_crop_pad_crop() -> None:
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (16, 4, 84, 84), dtype=np.uint8)
    out = random_shift(obs, 4, np.random.default_rng(7))
    ref = np.random.default_rng(7)
    t1, l1 = ref.integers(0, 5, 16), ref.integers(0, 5, 16)  # kornia: offsets 0..4 inclusive
    t2, l2 = ref.integers(0, 5, 16), ref.integers(0, 5, 16)
    for i in range(16):
        inner = obs[i, :, t1[i]:t1[i] + 80, l1[i]:l1[i] + 80]
        padded = np.pad(inner, ((0, 0), (4, 4), (4, 4)), mode="edge")
        np.testing.assert_array_equal(out[i], padded[:, t2[i]:t2[i] + 84, l2[i]:l2[i] + 84])
