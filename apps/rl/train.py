"""Training loop of the RL agents on the shared engine pieces.

RL collects its own data, so the supervised ``Trainer`` loop does not fit; the run uses the same
pieces: config dataclasses + YAML + overrides (``shared.config``), seeding and RNG state
(``shared.engine.seed``), atomic weights-only checkpoints (``shared.engine.checkpoint``),
``metrics.jsonl``/``.csv`` + TensorBoard (``shared.engine.logging``), the output guard and tqdm.

Exact resume: the checkpoint holds the networks, optimizers, the replay buffer (uint8 frames and its
sampling RNG), the agent's augmentation RNG, the global RNGs and the episode counter. It is written
at an episode boundary (each episode's environment randomness derives from ``(seed, episode)``),
the first one after every ``train.ckpt_every`` steps and the one ending the run; a killed run (or one
that stopped mid-episode) resumes from the last boundary, loses at most the
episode in flight and, resumed, continues exactly as the uninterrupted run (``tests/rl``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from shared.config import bounded, save_config, to_dict
from shared.engine.checkpoint import load_checkpoint, remove_orphaned_tmp, save_atomic
from shared.engine.logging import MetricLogger
from shared.engine.seed import rng_state, seed_everything, set_rng_state
from shared.engine.trainer import resolve_device
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard

from .agents import AGENTS, DER_AGENTS, SAC_AGENTS, DERAgent, DERConfig, SACAgent, SACConfig, clip_reward, check_finite_metrics
from .envs import FrameStack, make_env, parse_env
from .replay import FrameReplay

FORMAT = "cvsuite-rl"


@dataclass
class EnvConfig:
    """Observation settings (None = the suite's default: DMC stack 3, Atari stack 4; DMC action repeat per task)."""

    image_size: int = bounded(100, ge=8)  # DMC render size (pre-crop)
    crop: int = bounded(84, ge=8)  # DMC network input (random crop in training, centre crop in evaluation)
    frame_stack: int | None = bounded(None, ge=1, le=16)
    action_repeat: int | None = bounded(None, ge=1)
    time_limit: float | None = bounded(None, gt=0.0)  # DMC episode length in seconds (None = the task's)
    max_episode_frames: int = bounded(108_000, ge=4)  # Atari cap, in emulator frames


@dataclass
class RLTrainConfig:
    out_dir: str = "runs/rl"
    max_steps: int = bounded(100_000, ge=1)  # agent steps (environment steps / action repeat)
    replay_capacity: int = bounded(100_000, ge=2)
    seed: int = 0
    device: str = "auto"
    log_every: int = bounded(1000, ge=1)
    ckpt_every: int = bounded(10_000, ge=1)
    eval_every: int = bounded(10_000, ge=0)  # 0 = only at the end
    eval_episodes: int = bounded(10, ge=1)
    resume: bool = False
    progress: bool = True
    tensorboard: bool = True
    threads: int = bounded(0, ge=0)  # torch threads; 0 = leave as is


@dataclass
class RLConfig:
    env: str = "dmc:cartpole-swingup"
    agent: str = "curl-sac"
    env_cfg: EnvConfig = field(default_factory=EnvConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    der: DERConfig = field(default_factory=DERConfig)
    train: RLTrainConfig = field(default_factory=RLTrainConfig)


def check_agent_env(agent: str, env: str) -> None:
    """Usage errors for an unknown agent or one of the wrong suite for the environment."""
    if agent not in AGENTS:
        raise UsageError(f"unknown agent {agent!r}; choose {', '.join(AGENTS)}")
    suite = parse_env(env).suite
    if suite == "dmc" and agent not in SAC_AGENTS:
        raise UsageError(f"agent {agent} is for Atari; for {env} use {', '.join(SAC_AGENTS)}")
    if suite == "atari" and agent not in DER_AGENTS:
        raise UsageError(f"agent {agent} is for DeepMind Control; for {env} use {', '.join(DER_AGENTS)}")


def env_kwargs(cfg: RLConfig) -> dict[str, Any]:
    e = cfg.env_cfg
    if parse_env(cfg.env).suite == "dmc":
        return {"image_size": e.image_size, "action_repeat": e.action_repeat or 0, "time_limit": e.time_limit}
    return {"max_episode_frames": e.max_episode_frames}


def stack_of(cfg: RLConfig) -> int:
    return cfg.env_cfg.frame_stack or (3 if parse_env(cfg.env).suite == "dmc" else 4)


def build_agent(cfg: RLConfig, env: Any, device: torch.device) -> SACAgent | DERAgent:
    stack = stack_of(cfg)
    if cfg.agent in SAC_AGENTS:
        return SACAgent(cfg.agent, cfg.sac, env.frame_shape[0], stack, cfg.env_cfg.image_size, cfg.env_cfg.crop,
                        env.action_dim, device, seed=cfg.train.seed + 1)
    return DERAgent(cfg.agent, cfg.der, env.frame_shape[0], stack, env.num_actions, env.spec.domain,
                    cfg.train.max_steps, device, seed=cfg.train.seed + 1)


def build_replay(cfg: RLConfig, env: Any) -> FrameReplay:
    stack = stack_of(cfg)
    if cfg.agent in SAC_AGENTS:
        batch = cfg.sac.batch_size
        replay = FrameReplay(cfg.train.replay_capacity, env.frame_shape, stack, (env.action_dim,), np.float32,
                             pad="repeat", n_step=1, discount=cfg.sac.discount, seed=cfg.train.seed + 2)
    else:
        batch = cfg.der.batch_size
        replay = FrameReplay(cfg.train.replay_capacity, env.frame_shape, stack, (1,), np.int64, pad="zero",
                             n_step=cfg.der.multi_step, discount=cfg.der.discount, prioritized=True,
                             priority_exponent=cfg.der.priority_exponent, seed=cfg.train.seed + 2)
    if cfg.train.replay_capacity < batch:
        raise UsageError(f"train.replay_capacity {cfg.train.replay_capacity} is smaller than the batch size {batch}")
    return replay


def policy_meta(cfg: RLConfig, env: Any) -> dict[str, str]:
    """Everything ``load_policy`` needs to rebuild the acting network (safetensors metadata)."""
    spec = parse_env(cfg.env)
    meta = {"format": FORMAT, "agent": cfg.agent, "env": spec.name, "suite": spec.suite,
            "frame_stack": str(stack_of(cfg)), "frame_channels": str(env.frame_shape[0])}
    if spec.suite == "dmc":
        meta.update(image_size=str(cfg.env_cfg.image_size), crop=str(cfg.env_cfg.crop),
                    action_repeat=str(env.action_repeat), action_dim=str(env.action_dim),
                    hidden_dim=str(cfg.sac.hidden_dim), feature_dim=str(cfg.sac.feature_dim),
                    num_layers=str(cfg.sac.num_layers), num_filters=str(cfg.sac.num_filters),
                    encoder_tanh=str(cfg.sac.encoder_tanh).lower())
    else:
        meta.update(num_actions=str(env.num_actions), atoms=str(cfg.der.atoms), hidden=str(cfg.der.hidden),
                    v_min=str(cfg.der.v_min), v_max=str(cfg.der.v_max))
    return meta


def evaluate_policy(agent: SACAgent | DERAgent, env_name: str, seed: int, episodes: int, env_kw: dict[str, Any],
                    stack: int, video_frames: list[np.ndarray] | None = None,
                    max_steps: int | None = None) -> dict[str, Any]:
    """Run ``episodes`` evaluation episodes (deterministic policy; Atari without life-loss terminals)."""
    env = make_env(env_name, seed, training=False, **env_kw)
    framestack = FrameStack(stack, pad="repeat" if env.continuous else "zero")
    agent.train_mode(False)
    returns, lengths = [], []
    try:
        for episode in range(episodes):
            frame = env.reset(episode)
            obs = framestack.reset(frame)
            if video_frames is not None and episode == 0:
                video_frames.append(frame)
            total, length, done = 0.0, 0, False
            while not done:
                action = agent.act(obs, explore=False)
                frame, reward, terminal, truncated = env.step(action)
                obs = framestack.push(frame)
                total += reward
                length += 1
                done = terminal or truncated or (max_steps is not None and length >= max_steps)
                if video_frames is not None and episode == 0:
                    video_frames.append(frame)
            returns.append(total)
            lengths.append(length)
    finally:
        agent.train_mode(True)
    return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
            "returns": [float(r) for r in returns], "episode_lengths": lengths, "episodes": episodes,
            "env": parse_env(env_name).name, "seed": seed}


def output_files(out: Path) -> list[Path]:
    return [out / "config.yaml", out / "metrics.jsonl", out / "metrics.csv", out / "checkpoints" / "last.pt",
            out / "model.safetensors", out / "eval.json"]


def run_training(cfg: RLConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """Train ``cfg.agent`` on ``cfg.env`` for ``train.max_steps`` agent steps; returns a summary.

    ``train.threads`` sets torch's thread count for the run only (restored afterwards)."""
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        return _run_training(cfg, guard)
    finally:
        torch.set_num_threads(threads)


def _run_training(cfg: RLConfig, guard: OutputGuard | None) -> dict[str, Any]:
    check_agent_env(cfg.agent, cfg.env)
    t = cfg.train
    guard = guard or OutputGuard(force=False)
    out = Path(t.out_dir)
    ckpt_path = out / "checkpoints" / "last.pt"
    if t.resume and not ckpt_path.is_file():
        raise CvsuiteError(f"train.resume=true but no checkpoint at {ckpt_path}")
    if not t.resume and ckpt_path.is_file():
        raise CvsuiteError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    seed_everything(t.seed)
    device = resolve_device(t.device)
    env = make_env(cfg.env, t.seed, training=True, **env_kwargs(cfg))
    replay = build_replay(cfg, env)
    agent = build_agent(cfg, env, device)
    guard.directory(out)
    guard.directory(ckpt_path.parent)
    for path in output_files(out):
        guard.file(path, allow_existing=t.resume)
        remove_orphaned_tmp(path)
    stack = stack_of(cfg)
    framestack = FrameStack(stack, pad="repeat" if env.continuous else "zero")
    init_steps = cfg.sac.init_steps if cfg.agent in SAC_AGENTS else cfg.der.init_steps
    reward_clip = 0.0 if cfg.agent in SAC_AGENTS else cfg.der.reward_clip
    action_rng = np.random.default_rng(t.seed + 3)
    env_step_factor = getattr(env, "action_repeat", 1) if env.continuous else 1
    step, episode, updates = 0, 0, 0
    # wall time per part of a step, for the warm-up (random actions) and the learning phase apart
    timing_warmup = {"env": 0.0, "update": 0.0, "act": 0.0, "replay_add": 0.0}
    timing_learn = dict(timing_warmup)
    if t.resume:
        state = load_checkpoint(ckpt_path)
        try:
            if state.get("format") != FORMAT or state.get("agent") != cfg.agent or state.get("env") != parse_env(cfg.env).name:
                raise CvsuiteError(f"checkpoint {ckpt_path} is of {state.get('agent')} on {state.get('env')}, "
                                   f"not {cfg.agent} on {parse_env(cfg.env).name}")
            agent.load_state_dict(state["agent_state"])
            replay.load_state_dict(state["replay"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CvsuiteError(f"checkpoint {ckpt_path} does not match this config: {str(exc).splitlines()[0]}") from None
        step, episode, updates = int(state["step"]), int(state["episode"]), int(state["updates"])
        action_rng = _rng_from(state["action_rng"])
        set_rng_state(state["rng"])
    logger = MetricLogger(out, tensorboard=t.tensorboard, resume_step=step)
    save_config(cfg, out / "config.yaml")
    guard.record()

    def save(step_now: int) -> None:
        from .replay import _generator_state

        save_atomic({"format": FORMAT, "agent": cfg.agent, "env": parse_env(cfg.env).name, "step": step_now,
                     "episode": episode, "updates": updates, "agent_state": agent.state_dict(),
                     "replay": replay.state_dict(), "rng": rng_state(), "action_rng": _generator_state(action_rng),
                     "config": to_dict(cfg)}, ckpt_path)
        guard.record()

    # every record carries every column (NaN where not measured), so metrics.csv keeps them all
    nan = float("nan")
    columns = {k: nan for k in (*agent.METRICS, "episode", "updates", "agent_steps_per_s", "env_steps_per_s",
                                "train_return", "eval_mean_return", "eval_std_return")}
    evaluations: list[dict[str, Any]] = []
    bar = tqdm(total=t.max_steps, initial=step, disable=not t.progress, desc=f"{cfg.agent} {parse_env(cfg.env).name}",
               dynamic_ncols=True, leave=False, unit="step")
    started = time.perf_counter()
    last_ckpt, window_start, window_steps = step, time.perf_counter(), 0
    recent_returns: list[float] = []
    next_eval = (step // t.eval_every + 1) * t.eval_every if t.eval_every else None
    last_metrics: dict[str, float] = {}
    while step < t.max_steps:
        # -- one episode ----------------------------------------------------------------------
        frame = env.reset(episode)
        obs = framestack.reset(frame)
        replay.start_episode(frame)
        episode_return, done = 0.0, False
        while not done and step < t.max_steps:
            timing = timing_learn if step >= init_steps else timing_warmup
            tick = time.perf_counter()
            if isinstance(agent, DERAgent):
                agent.before_act()
            if step < init_steps:
                action = env.sample_action(action_rng)
            else:
                action = agent.act(obs, explore=True)
            tock = time.perf_counter()
            timing["act"] += tock - tick
            if step >= init_steps:
                metrics = agent.update(replay, step)
                updates += 1
                last_metrics = metrics
            tick = time.perf_counter()
            timing["update"] += tick - tock
            frame, reward, terminal, truncated = env.step(action)
            tock = time.perf_counter()
            timing["env"] += tock - tick
            obs = framestack.push(frame)
            episode_return += reward
            replay.add(action, clip_reward(reward, reward_clip), terminal, truncated, frame)
            timing["replay_add"] += time.perf_counter() - tock
            step += 1
            window_steps += 1
            bar.update(1)
            done = terminal or truncated
            if step % t.log_every == 0 or step == t.max_steps:
                check_finite_metrics(last_metrics, step)
                now = time.perf_counter()
                sps = window_steps / max(now - window_start, 1e-9)
                window_start, window_steps = now, 0
                # DMC counts environment steps as agent steps × action repeat (the "100k steps" benchmarks);
                # for Atari an agent step is an environment step (4 emulator frames)
                record = {**columns, **last_metrics, "episode": episode, "updates": updates, "agent_steps_per_s": sps,
                          "env_steps_per_s": sps * env_step_factor,
                          "train_return": float(np.mean(recent_returns[-10:])) if recent_returns else float("nan")}
                logger.log(step, record)
                guard.record()
                bar.set_postfix(env_steps_s=f"{sps * env_step_factor:.0f}", ret=f"{record['train_return']:.1f}")
            if next_eval is not None and step >= next_eval and step < t.max_steps:
                result = evaluate_policy(agent, cfg.env, t.seed + 10_000, t.eval_episodes, env_kwargs(cfg), stack)
                evaluations.append({"step": step, **result})
                logger.log(step, {**columns, "eval_mean_return": result["mean_return"], "eval_std_return": result["std_return"]})
                next_eval += t.eval_every
        if done:
            recent_returns.append(episode_return)
            episode += 1
            # checkpoints only at episode (game) boundaries, where the environment state is just the
            # episode counter; a run that stops mid-episode resumes from the last boundary
            at_boundary = not getattr(env, "_life_lost", False)
            if at_boundary and (step - last_ckpt >= t.ckpt_every or step >= t.max_steps):
                save(step)
                last_ckpt = step
    bar.close()
    final = evaluate_policy(agent, cfg.env, t.seed + 10_000, t.eval_episodes, env_kwargs(cfg), stack)
    evaluations.append({"step": step, **final})
    logger.log(step, {**columns, "eval_mean_return": final["mean_return"], "eval_std_return": final["std_return"]})
    logger.close()
    from shared.weights import save_safetensors

    save_safetensors(agent.policy_state(), out / "model.safetensors", metadata=policy_meta(cfg, env))
    import json

    guard.write(out / "eval.json", json.dumps({"final": final, "during_training": evaluations}, indent=2) + "\n",
                allow_existing=True)
    guard.record()
    wall = time.perf_counter() - started
    timing = timing_learn
    total = sum(timing.values())
    return {"step": step, "episodes": episode, "updates": updates, "eval": final, "seconds": wall,
            "weights": str(out / "model.safetensors"), "checkpoint": str(ckpt_path),
            "time_fractions": {k: v / total for k, v in timing.items()} if total > 0 else {},
            "timing_seconds": timing}


def _rng_from(state: dict[str, Any]) -> np.random.Generator:
    from .replay import _generator_from_state

    return _generator_from_state(state)
