"""Replay buffer of uint8 frames, each frame stored once and shared by every stack that holds it.

A slot holds one frame (the newest frame of the observation at that time step) and, once the agent
acted, the action, reward and flags of the transition that left it. The observation of slot ``i`` is
the stack of frames ``i-k+1 .. i`` clipped at its episode's first slot (padded by repeating that
frame, or with zeros); the next observation is the stack of slot ``i+1``. An episode of T steps
takes T+1 slots, so memory is ≈ one frame per transition: ≤ 1 byte per stored pixel, where the
official CURL buffer stores obs and next_obs stacks (2k frames per transition).

Sampling draws only slots whose whole stack and whose n-step successors are still in the ring, and
never crosses an episode boundary. Uniform (SAC) or proportional prioritised (PER, data-efficient
Rainbow) sampling; the buffer's own numpy Generator is part of its state, so a resumed run samples
the same batches.

Example::

    buf = FrameReplay(capacity=100_000, frame_shape=(3, 100, 100), stack=3, action_shape=(1,))
    buf.start_episode(frame0)
    buf.add(action, reward, terminal=False, truncated=False, next_frame=frame1)
    batch = buf.sample(128)            # obs (B, 9, 100, 100) uint8, next_obs, action, reward, discount
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from shared.errors import CvsuiteError, UsageError


class SumTree:
    """Array sum tree over ``capacity`` leaves for proportional sampling (vectorised over a batch)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        size = 1
        while size < self.capacity:
            size *= 2
        self.size = size
        self.tree = np.zeros(2 * size, dtype=np.float64)

    def set(self, leaves: np.ndarray, values: np.ndarray) -> None:
        nodes = np.asarray(leaves, dtype=np.int64) + self.size
        self.tree[nodes] = values
        nodes = np.unique(nodes // 2)
        while nodes.size and nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def get(self, leaves: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(leaves, dtype=np.int64) + self.size]

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index whose cumulative range holds each value in [0, total)."""
        nodes = np.ones(len(values), dtype=np.int64)
        values = np.asarray(values, dtype=np.float64).copy()
        while nodes[0] < self.size:
            left = 2 * nodes
            go_right = values >= self.tree[left]
            values = np.where(go_right, values - self.tree[left], values)
            nodes = np.where(go_right, left + 1, left)
        return np.minimum(nodes - self.size, self.capacity - 1)


class FrameReplay:
    """See module docstring. ``n_step``/``discount`` give multi-step returns; ``prioritized`` turns on PER."""

    def __init__(self, capacity: int, frame_shape: tuple[int, ...], stack: int, action_shape: tuple[int, ...],
                 action_dtype: Any = np.float32, pad: str = "repeat", n_step: int = 1, discount: float = 0.99,
                 prioritized: bool = False, priority_exponent: float = 0.5, seed: int = 0) -> None:
        if capacity < 2:
            raise UsageError(f"replay capacity must be ≥ 2, got {capacity}")
        if stack < 1 or n_step < 1:
            raise UsageError("frame stack and n-step must be ≥ 1")
        if pad not in ("repeat", "zero"):
            raise UsageError(f"pad must be repeat or zero, got {pad!r}")
        self.capacity, self.stack, self.n_step, self.discount = int(capacity), int(stack), int(n_step), float(discount)
        self.pad, self.prioritized, self.priority_exponent = pad, bool(prioritized), float(priority_exponent)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.frames = np.zeros((self.capacity, *self.frame_shape), dtype=np.uint8)
        self.actions = np.zeros((self.capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminal = np.zeros(self.capacity, dtype=bool)  # the transition leaving this slot ended in a terminal
        self.last = np.zeros(self.capacity, dtype=bool)  # ... was the episode's last (terminal or truncated)
        self.has_transition = np.zeros(self.capacity, dtype=bool)
        self.episode_start = np.zeros(self.capacity, dtype=np.int64)  # absolute slot of the episode's first frame
        self.written = 0  # absolute count of slots written
        self._current_start = -1
        self.rng = np.random.default_rng(seed)
        self.tree = SumTree(self.capacity) if self.prioritized else None
        self.max_priority = 1.0

    # -- writing ---------------------------------------------------------------------------------
    def _write_frame(self, frame: np.ndarray) -> int:
        frame = np.asarray(frame)
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise CvsuiteError(f"replay: frame of shape {frame.shape} {frame.dtype}, expected {self.frame_shape} uint8")
        slot = self.written % self.capacity
        self.frames[slot] = frame
        self.has_transition[slot] = False
        self.terminal[slot] = self.last[slot] = False
        self.episode_start[slot] = self._current_start
        if self.tree is not None:
            self.tree.set(np.array([slot]), np.array([0.0]))
        self.written += 1
        return slot

    def start_episode(self, frame: np.ndarray) -> None:
        """The first frame of a new episode."""
        self._current_start = self.written
        self._write_frame(frame)

    def add(self, action: Any, reward: float, terminal: bool, truncated: bool, next_frame: np.ndarray) -> None:
        """The transition leaving the newest slot, and the frame it led to."""
        if self._current_start < 0 or self.written == 0:
            raise CvsuiteError("replay: add() before start_episode()")
        slot = (self.written - 1) % self.capacity
        self.actions[slot] = np.asarray(action, dtype=self.actions.dtype).reshape(self.actions.shape[1:])
        self.rewards[slot] = reward
        self.terminal[slot] = bool(terminal)
        self.last[slot] = bool(terminal or truncated)
        self.has_transition[slot] = True
        self._write_frame(next_frame)
        if self.tree is not None:
            self.tree.set(np.array([slot]), np.array([self.max_priority ** self.priority_exponent]))

    def __len__(self) -> int:
        """Stored transitions."""
        return int(self.has_transition.sum())

    # -- reading ---------------------------------------------------------------------------------
    def stacks(self, absolute: np.ndarray) -> np.ndarray:
        """Observation stacks (B, k·C, H, W) uint8 of absolute slot indices."""
        absolute = np.asarray(absolute, dtype=np.int64)
        starts = self.episode_start[absolute % self.capacity]
        offsets = np.arange(-(self.stack - 1), 1)
        wanted = absolute[:, None] + offsets[None, :]  # (B, k)
        before_start = wanted < starts[:, None]
        clipped = np.maximum(wanted, starts[:, None])
        frames = self.frames[clipped % self.capacity]  # (B, k, C, H, W)
        if self.pad == "zero" and before_start.any():
            frames[before_start] = 0
        return frames.reshape(len(absolute), self.stack * self.frame_shape[0], *self.frame_shape[1:])

    def _valid(self, absolute: np.ndarray) -> np.ndarray:
        """Slots whose stack frames are all in the ring and whose n-step successors are settled."""
        slot = absolute % self.capacity
        oldest = self.written - self.capacity
        first = np.maximum(absolute - (self.stack - 1), self.episode_start[slot])
        ok = (absolute >= oldest) & (first >= oldest) & self.has_transition[slot]
        # the n-step window: stop at the episode's last transition, else need slots up to absolute + n
        ended = np.zeros_like(ok)
        for j in range(self.n_step):
            idx = absolute + j
            inside = idx < self.written - 1
            s = idx % self.capacity
            ok &= ended | (inside & self.has_transition[s])
            ended |= inside & self.last[s]
        return ok & (absolute + 1 < self.written)

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(absolute indices, sampling probabilities) of a batch of valid slots."""
        lo = max(0, self.written - self.capacity)
        chosen = np.empty(0, dtype=np.int64)
        probs = np.empty(0, dtype=np.float64)
        for _ in range(1000):
            need = batch_size - len(chosen)
            if need == 0:
                break
            if self.tree is not None:
                total = self.tree.total
                if total <= 0:
                    break
                # stratified over the total mass, as prioritized replay does
                bounds = (np.arange(need) + self.rng.random(need)) * (total / need)
                slots = self.tree.find(bounds)
                absolute = self._absolute(slots)
                p = self.tree.get(slots) / total
            else:
                absolute = self.rng.integers(lo, self.written, size=need)
                p = np.full(need, 1.0)
            keep = self._valid(absolute)
            if self.tree is not None:
                keep &= p > 0
            chosen = np.concatenate([chosen, absolute[keep]])
            probs = np.concatenate([probs, p[keep]])
        if len(chosen) < batch_size:
            raise CvsuiteError(f"replay: could not draw {batch_size} valid transitions from {len(self)} stored")
        return chosen, probs

    def _absolute(self, slots: np.ndarray) -> np.ndarray:
        """Absolute index of ring slots (the most recent write of each)."""
        newest = self.written - 1
        return newest - ((newest - slots) % self.capacity)

    def n_step_targets(self, absolute: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n-step discounted reward, γ^m·(1 − terminal) bootstrap factor, absolute index of the next state)."""
        returns = np.zeros(len(absolute), dtype=np.float64)
        factor = np.ones(len(absolute), dtype=np.float64)
        next_index = absolute.copy()
        running = np.ones(len(absolute), dtype=bool)
        for j in range(self.n_step):
            s = (absolute + j) % self.capacity
            returns += np.where(running, factor * self.rewards[s], 0.0)
            factor = np.where(running, factor * self.discount, factor)
            next_index = np.where(running, absolute + j + 1, next_index)
            factor = np.where(running & self.terminal[s], 0.0, factor)
            running &= ~self.last[s]
        return returns.astype(np.float32), factor.astype(np.float32), next_index

    def sample(self, batch_size: int, beta: float = 0.4) -> dict[str, Any]:
        """A batch: obs/next_obs uint8 stacks, action, n-step reward, bootstrap factor, indices (and PER weights)."""
        if batch_size > self.capacity:
            raise UsageError(f"replay capacity {self.capacity} is smaller than the batch size {batch_size}")
        absolute, probs = self._draw(batch_size)
        returns, factor, next_index = self.n_step_targets(absolute)
        batch: dict[str, Any] = {
            "index": absolute, "obs": self.stacks(absolute), "next_obs": self.stacks(next_index),
            "action": self.actions[absolute % self.capacity], "reward": returns, "discount": factor,
        }
        if self.tree is not None:
            count = min(self.written, self.capacity)
            weights = (count * probs) ** (-beta)
            batch["weight"] = (weights / weights.max()).astype(np.float32)
        return batch

    def update_priorities(self, absolute: np.ndarray, priorities: np.ndarray) -> None:
        if self.tree is None:
            return
        priorities = np.maximum(np.asarray(priorities, dtype=np.float64), 1e-8)
        live = np.asarray(absolute) >= self.written - self.capacity  # overwritten since sampling: skip
        slots = np.asarray(absolute)[live] % self.capacity
        self.tree.set(slots, priorities[live] ** self.priority_exponent)
        self.max_priority = max(self.max_priority, float(priorities.max()))

    # -- state -----------------------------------------------------------------------------------
    def nbytes(self) -> int:
        arrays = [self.frames, self.actions, self.rewards, self.terminal, self.last, self.has_transition,
                  self.episode_start]
        return sum(a.nbytes for a in arrays) + (self.tree.tree.nbytes if self.tree is not None else 0)

    def state_dict(self) -> dict[str, Any]:
        """Tensors only (loads with ``torch.load(weights_only=True)``); only the written part of the ring."""
        used = min(self.written, self.capacity)
        state: dict[str, Any] = {
            "frames": torch.from_numpy(self.frames[:used].copy()),
            "actions": torch.from_numpy(self.actions[:used].copy()),
            "rewards": torch.from_numpy(self.rewards[:used].copy()),
            "terminal": torch.from_numpy(self.terminal[:used].copy()),
            "last": torch.from_numpy(self.last[:used].copy()),
            "has_transition": torch.from_numpy(self.has_transition[:used].copy()),
            "episode_start": torch.from_numpy(self.episode_start[:used].copy()),
            "written": self.written, "current_start": self._current_start, "capacity": self.capacity,
            "rng": _generator_state(self.rng), "max_priority": self.max_priority,
        }
        if self.tree is not None:
            state["priorities"] = torch.from_numpy(self.tree.get(np.arange(used)).copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise CvsuiteError(f"replay: checkpoint capacity {state['capacity']} differs from {self.capacity}")
        used = int(state["frames"].shape[0])
        self.frames[:used] = state["frames"].numpy()
        self.actions[:used] = state["actions"].numpy()
        self.rewards[:used] = state["rewards"].numpy()
        self.terminal[:used] = state["terminal"].numpy()
        self.last[:used] = state["last"].numpy()
        self.has_transition[:used] = state["has_transition"].numpy()
        self.episode_start[:used] = state["episode_start"].numpy()
        self.written, self._current_start = int(state["written"]), int(state["current_start"])
        self.rng = _generator_from_state(state["rng"])
        self.max_priority = float(state["max_priority"])
        if self.tree is not None and "priorities" in state:
            self.tree.set(np.arange(used), state["priorities"].numpy())


def _generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A PCG64 Generator state as ints (weights-only loadable)."""
    st = rng.bit_generator.state
    return {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}


def _generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": "PCG64",
                               "state": {"state": int(state["state"]), "inc": int(state["inc"])},
                               "has_uint32": int(state["has_uint32"]), "uinteger": int(state["uinteger"])}
    return rng


def random_crop(obs: np.ndarray, size: int, rng: np.random.Generator, inclusive: bool = False) -> np.ndarray:
    """Independent random ``size``×``size`` crop per sample of a (B, C, H, W) batch (CURL's augmentation).

    Offsets are drawn in ``[0, H − size)`` as the official ``utils.random_crop`` (``randint(0, crop_max)``),
    or in ``[0, H − size]`` with ``inclusive`` (kornia's RandomCrop, used by the Atari code).
    """
    b, _, h, w = obs.shape
    if h < size or w < size:
        raise CvsuiteError(f"cannot crop {size}×{size} from {h}×{w} frames")
    extra = 1 if inclusive else 0
    top = rng.integers(0, max(h - size + extra, 1), size=b)
    left = rng.integers(0, max(w - size + extra, 1), size=b)
    rows = top[:, None] + np.arange(size)[None, :]  # (B, size)
    cols = left[:, None] + np.arange(size)[None, :]
    return obs[np.arange(b)[:, None, None, None], np.arange(obs.shape[1])[None, :, None, None],
               rows[:, None, :, None], cols[:, None, None, :]]


def center_crop(obs: np.ndarray, size: int) -> np.ndarray:
    """Centre ``size``×``size`` crop of (..., H, W) (evaluation), offsets ``(H − size) // 2``."""
    h, w = obs.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return obs[..., top:top + size, left:left + size]


def random_shift(obs: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """CURL's Atari augmentation (curl_rainbow ``aug``): random (H−p)×(W−p) crop, replicate-pad by ``p``,
    random H×W crop (kornia offsets include both ends). (B, C, H, W) → same shape."""
    b, c, h, w = obs.shape
    inner = random_crop(obs, h - pad, rng, inclusive=True) if pad else obs
    padded = np.pad(inner, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    top = rng.integers(0, pad + 1, size=b)
    left = rng.integers(0, pad + 1, size=b)
    rows = top[:, None] + np.arange(h)[None, :]
    cols = left[:, None] + np.arange(w)[None, :]
    return padded[np.arange(b)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
