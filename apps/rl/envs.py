"""Pixel environments: DeepMind Control from 100×100 renders and Atari-100k from 84×84 grey frames.

``MUJOCO_GL`` must name the GL backend *before* mujoco / dm_control are imported; this module sets it
to ``egl`` (headless, CPU through Mesa) unless the user chose another backend, and imports dm_control
only inside the functions that need it.

Both environments hand out single frames (uint8, channels first); :class:`FrameStack` stacks the last
``k`` of them, and the replay buffer stores each frame once. Every episode's randomness comes from
``(seed, episode index)`` only, so a resumed run replays the exact episodes it would have seen.

Example::

    env = make_env("dmc:cartpole-swingup", seed=0)
    frame = env.reset(episode=0)                   # (3, 100, 100) uint8
    frame, reward, terminal, truncated = env.step(env.sample_action(rng))
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

# torch's optimizers import triton lazily; loading triton's bundled LLVM after Mesa's EGL driver
# (llvmpipe) has loaded its own LLVM crashes the process (segfault in triton/knobs.py). Loading
# triton first avoids the clash (0.2 s); without triton (CPU-only torch builds) nothing is needed.
try:  # noqa: SIM105
    import triton._C.libtriton  # noqa: F401,E402
except Exception:  # noqa: BLE001
    pass

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
from collections import deque  # noqa: E402
from typing import Any, Iterator  # noqa: E402

import numpy as np  # noqa: E402

from shared.engine.seed import sample_seed  # noqa: E402
from shared.errors import CvsuiteError, UsageError, first_line  # noqa: E402

# Action repeat per DMC domain, as in the CURL paper (cartpole 8, finger 2, walker 2, others 4).
DMC_ACTION_REPEAT = {"cartpole": 8, "finger": 2, "walker": 2, "cheetah": 4, "reacher": 4, "ball_in_cup": 4}
RENDER_PACKAGES = "libegl1 libgl1-mesa-dri libopengl0"


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """A parsed ``--env`` name: ``dmc:<domain>-<task>`` or ``atari:<Game>``."""

    suite: str  # "dmc" | "atari"
    domain: str  # dmc domain or atari game (rom id, snake_case)
    task: str  # dmc task; "" for atari

    @property
    def name(self) -> str:
        return f"dmc:{self.domain.replace('_', '-')}-{self.task}" if self.suite == "dmc" else f"atari:{self.domain}"


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C libraries' banners) for a block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _camel_to_snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def parse_env(name: str) -> EnvSpec:
    """``dmc:cartpole-swingup`` / ``dmc:ball-in-cup-catch`` / ``atari:Pong`` → EnvSpec; UsageError otherwise."""
    if ":" not in name:
        raise UsageError(f"unknown environment {name!r}: use dmc:<domain>-<task> (e.g. dmc:cartpole-swingup) "
                         "or atari:<Game> (e.g. atari:Pong)")
    suite, rest = name.split(":", 1)
    suite = suite.lower()
    if suite == "dmc":
        dmc_suite = import_dmc_suite()
        tasks = {f"{d.replace('_', '-')}-{t}": (d, t) for d, t in dmc_suite.ALL_TASKS}
        if rest not in tasks:
            near = sorted(k for k in tasks if k.split("-")[0] == rest.split("-")[0])[:8]
            hint = f"; tasks of that domain: {', '.join(near)}" if near else "; e.g. cartpole-swingup, walker-walk"
            raise UsageError(f"unknown DeepMind Control task {rest!r}{hint}")
        domain, task = tasks[rest]
        return EnvSpec("dmc", domain, task)
    if suite == "atari":
        import ale_py.roms  # noqa: PLC0415

        game = _camel_to_snake(rest) if any(c.isupper() for c in rest) else rest.lower()
        games = set(ale_py.roms.get_all_rom_ids())
        if game not in games:
            raise UsageError(f"unknown Atari game {rest!r}; e.g. Pong, Breakout, MsPacman ({len(games)} ROMs bundled)")
        return EnvSpec("atari", game, "")
    raise UsageError(f"unknown environment suite {suite!r} in {name!r}: use dmc:<domain>-<task> or atari:<Game>")


def _render_help(exc: BaseException) -> str:
    backend = os.environ.get("MUJOCO_GL", "")
    first = first_line(exc)[:160]
    return (f"pixel rendering fails with MUJOCO_GL={backend or '(unset)'} ({type(exc).__name__}: {first}); "
            f"set MUJOCO_GL=egl and install the Debian packages {RENDER_PACKAGES}")


def import_dmc_suite() -> Any:
    """``dm_control.suite``, or one CvsuiteError line naming MUJOCO_GL and the GL packages."""
    try:
        from absl import logging as absl_logging  # noqa: PLC0415

        # dm_control logs MuJoCo deprecation notices (e.g. walker's 'settotalmass') through absl at
        # WARNING; they are not the user's concern and would break the one-line error promise
        absl_logging.set_verbosity(absl_logging.ERROR)
        from dm_control import suite as dmc_suite  # noqa: PLC0415
    except ImportError as exc:
        if getattr(exc, "name", "") in ("dm_control", "mujoco"):
            raise CvsuiteError("dm_control is not installed: pip install dm_control (cvsuite's 'rl' extra)") from None
        raise CvsuiteError(_render_help(exc)) from None
    except Exception as exc:  # the GL backend fails while dm_control imports it
        raise CvsuiteError(_render_help(exc)) from None
    return dmc_suite


def rendering_status() -> tuple[bool, str]:
    """Whether DeepMind Control can render pixels here, and why not (for ``cvsuite doctor``)."""
    backend = os.environ.get("MUJOCO_GL", "")
    try:
        dmc_suite = import_dmc_suite()
        env = dmc_suite.load("cartpole", "swingup", task_kwargs={"random": 0})
        frame = env.physics.render(16, 16, camera_id=0)
        if frame.shape != (16, 16, 3) or frame.max() == 0:
            return False, f"MUJOCO_GL={backend}: rendering returned an empty frame"
        import mujoco  # noqa: PLC0415

        return True, f"MUJOCO_GL={backend} renders (mujoco {mujoco.__version__})"
    except CvsuiteError as exc:
        return False, str(exc)
    except Exception as exc:  # any import or GL failure means no pixels
        return False, _render_help(exc)


class DMCPixelEnv:
    """dm_control task seen through a 100×100 camera-0 render, with action repeat.

    Fast render settings: an offscreen buffer of the render size, no multisampling and small shadow
    maps (frames checked equal to the default settings in ``evaluation/bench_rl.py``). The time
    limit ends an episode as a truncation (the critic bootstraps through it, as the official code).
    """

    continuous = True

    def __init__(self, spec: EnvSpec, seed: int, image_size: int = 100, action_repeat: int = 0,
                 time_limit: float | None = None, fast_render: bool = True) -> None:
        dmc_suite = import_dmc_suite()
        self.spec, self.seed, self.image_size = spec, int(seed), int(image_size)
        self.action_repeat = int(action_repeat) or DMC_ACTION_REPEAT.get(spec.domain, 4)
        task_kwargs: dict[str, Any] = {"random": np.random.RandomState(self.seed % 2**32)}
        if time_limit is not None:
            task_kwargs["time_limit"] = float(time_limit)
        self._env = dmc_suite.load(spec.domain, spec.task, task_kwargs=task_kwargs)
        if fast_render:
            vis = self._env.physics.model.vis
            vis.global_.offwidth = max(self.image_size, 1)
            vis.global_.offheight = max(self.image_size, 1)
            vis.quality.offsamples = 0
            vis.quality.shadowsize = 256
        action = self._env.action_spec()
        self.action_dim = int(np.prod(action.shape))
        self.action_low = np.asarray(action.minimum, dtype=np.float32).reshape(-1)
        self.action_high = np.asarray(action.maximum, dtype=np.float32).reshape(-1)
        self.frame_shape = (3, self.image_size, self.image_size)
        self.num_actions = 0

    def render(self) -> np.ndarray:
        frame = self._env.physics.render(self.image_size, self.image_size, camera_id=0)
        return np.ascontiguousarray(frame.transpose(2, 0, 1))

    def reset(self, episode: int) -> np.ndarray:
        self._env.task.random.seed(sample_seed(self.seed, episode, 0) % 2**32)
        self._env.reset()
        return self.render()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), self.action_low, self.action_high)
        reward = 0.0
        last = False
        for _ in range(self.action_repeat):
            ts = self._env.step(action)
            reward += float(ts.reward or 0.0)
            if ts.last():
                last = True
                break
        # DMC tasks never terminate: the episode end is a time limit (truncated, not terminal)
        return self.render(), reward, False, last

    def sample_action(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.action_low, self.action_high).astype(np.float32)


class AtariEnv:
    """ALE game as in the CURL/data-efficient Rainbow code: minimal action set, no sticky actions,
    frame skip 4 with a max over the last 2 frames, 84×84 grey (bilinear resize), up to 30 no-ops at
    reset, 108k-frame episode cap, loss of life as a terminal in training (the game goes on)."""

    continuous = False

    def __init__(self, spec: EnvSpec, seed: int, frame_skip: int = 4, max_episode_frames: int = 108_000,
                 terminal_on_life_loss: bool = True, noop_max: int = 30) -> None:
        import ale_py  # noqa: PLC0415
        import ale_py.roms  # noqa: PLC0415

        self.spec, self.seed = spec, int(seed)
        self.frame_skip = int(frame_skip)
        self.terminal_on_life_loss = terminal_on_life_loss
        self.noop_max = int(noop_max)
        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
        with _quiet_stderr():  # the ALE prints a banner to the C-level stderr when it starts
            ale = ale_py.ALEInterface()
        ale.setInt("random_seed", self.seed % 2**31)
        ale.setInt("max_num_frames_per_episode", int(max_episode_frames))
        ale.setFloat("repeat_action_probability", 0.0)
        ale.setInt("frame_skip", 0)
        with _quiet_stderr():
            ale.loadROM(ale_py.roms.get_rom_path(spec.domain))
        self._ale = ale
        self._actions = list(ale.getMinimalActionSet())
        self.num_actions = len(self._actions)
        self.action_dim = 1
        self.frame_shape = (1, 84, 84)
        self._lives = 0
        self._life_lost = False
        self._rng = np.random.default_rng(0)

    def _grey(self) -> np.ndarray:
        import cv2  # noqa: PLC0415

        return cv2.resize(self._ale.getScreenGrayscale(), (84, 84), interpolation=cv2.INTER_LINEAR)

    def reset(self, episode: int) -> np.ndarray:
        # sticky actions are off, so the emulator is deterministic given the actions: the episode's
        # randomness is its no-op count, drawn from (seed, episode)
        self._rng = np.random.default_rng(sample_seed(self.seed, episode, 1))
        if self._life_lost:  # continue the same game after a lost life (one no-op)
            self._life_lost = False
            self._ale.act(self._actions[0])
        else:
            self._ale.reset_game()
            for _ in range(int(self._rng.integers(0, self.noop_max)) if self.noop_max else 0):
                self._ale.act(self._actions[0])
                if self._ale.game_over():
                    self._ale.reset_game()
        self._lives = self._ale.lives()
        return self._grey()[None]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool]:
        index = int(np.asarray(action).reshape(-1)[0])
        if not 0 <= index < self.num_actions:
            raise CvsuiteError(f"action {index} outside the {self.num_actions} actions of {self.spec.name}")
        frames = np.zeros((2, 84, 84), dtype=np.uint8)
        reward, done = 0.0, False
        for t in range(self.frame_skip):
            reward += float(self._ale.act(self._actions[index]))
            if t >= self.frame_skip - 2:
                frames[t - (self.frame_skip - 2)] = self._grey()
            done = self._ale.game_over()
            if done:
                break
        frame = frames.max(0)
        truncated = bool(done and self._ale.getEpisodeFrameNumber() >= self._ale.getInt("max_num_frames_per_episode"))
        terminal = bool(done and not truncated)
        if self.terminal_on_life_loss and not done:
            lives = self._ale.lives()
            if 0 < lives < self._lives:
                self._life_lost = True
                terminal = True
            self._lives = lives
        return frame[None], reward, terminal, truncated

    def sample_action(self, rng: np.random.Generator) -> np.ndarray:
        return np.array([rng.integers(0, self.num_actions)], dtype=np.int64)


def make_env(name: str | EnvSpec, seed: int, training: bool = True, **kwargs: Any) -> DMCPixelEnv | AtariEnv:
    """Build the environment for ``dmc:<domain>-<task>`` or ``atari:<Game>``; one-line errors."""
    spec = parse_env(name) if isinstance(name, str) else name
    if spec.suite == "dmc":
        try:
            return DMCPixelEnv(spec, seed, **kwargs)
        except CvsuiteError:
            raise
        except Exception as exc:
            ok, why = rendering_status()
            raise CvsuiteError(why if not ok else f"cannot build {spec.name}: {str(exc).splitlines()[0][:200]}") from None
    atari_kwargs = {k: v for k, v in kwargs.items() if k in ("frame_skip", "max_episode_frames", "noop_max")}
    return AtariEnv(spec, seed, terminal_on_life_loss=training, **atari_kwargs)


class FrameStack:
    """The last ``k`` frames of the current episode, stacked on the channel axis.

    ``pad="repeat"`` fills the stack with the first frame at reset (CURL's DMC code); ``pad="zero"``
    with black frames (the data-efficient Rainbow Atari code).
    """

    def __init__(self, k: int, pad: str = "repeat") -> None:
        if k < 1:
            raise UsageError(f"frame stack must be ≥ 1, got {k}")
        self.k, self.pad = int(k), pad
        self._frames: deque[np.ndarray] = deque(maxlen=self.k)

    def reset(self, frame: np.ndarray) -> np.ndarray:
        fill = frame if self.pad == "repeat" else np.zeros_like(frame)
        for _ in range(self.k - 1):
            self._frames.append(fill)
        self._frames.append(frame)
        return self.obs()

    def push(self, frame: np.ndarray) -> np.ndarray:
        self._frames.append(frame)
        return self.obs()

    def obs(self) -> np.ndarray:
        return np.concatenate(list(self._frames), axis=0)
