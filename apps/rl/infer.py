"""Load a trained policy (``model.safetensors`` of ``cvsuite rl train``) and run it on an environment.

A policy file carries its agent, environment and observation settings in the safetensors metadata;
a file of another app or agent family is refused with one line. ``run_policy`` plays N agent steps
and returns every action and reward (``cvsuite rl infer``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.errors import CvsuiteError, UsageError

from .agents import DER_AGENTS, SAC_AGENTS, DERAgent, DERConfig, SACAgent, SACConfig
from .envs import FrameStack, make_env, parse_env

FORMAT = "cvsuite-rl"
SHIPPED = {"dmc:cartpole-swingup": "rl_curl_sac_cartpole_swingup", "atari:road_runner": "rl_curl_der_road_runner"}


def read_policy_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of an RL policy file; one-line errors for anything else."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"weights not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CvsuiteError(f"cannot read {path}: not a safetensors policy file ({str(exc).splitlines()[0][:120]})") from None
    if meta.get("format") != FORMAT:
        raise CvsuiteError(f"{path} is not an RL policy of cvsuite rl (weights of another app?); "
                           "give the model.safetensors written by 'cvsuite rl train'")
    if meta.get("agent") not in SAC_AGENTS + DER_AGENTS:
        raise CvsuiteError(f"{path}: unknown agent {meta.get('agent')!r} in its metadata")
    return tensors, meta


def policy_for(tensors: dict[str, torch.Tensor], meta: dict[str, str], device: torch.device) -> SACAgent | DERAgent:
    """Rebuild the acting agent from a policy file's tensors and metadata."""
    try:
        if meta["suite"] == "dmc":
            cfg = SACConfig(hidden_dim=int(meta["hidden_dim"]), feature_dim=int(meta["feature_dim"]),
                            num_layers=int(meta["num_layers"]), num_filters=int(meta["num_filters"]),
                            encoder_tanh=meta["encoder_tanh"] == "true")
            agent: SACAgent | DERAgent = SACAgent(meta["agent"], cfg, int(meta["frame_channels"]),
                                                  int(meta["frame_stack"]), int(meta["image_size"]),
                                                  int(meta["crop"]), int(meta["action_dim"]), device, seed=0)
        else:
            cfg_d = DERConfig(atoms=int(meta["atoms"]), hidden=int(meta["hidden"]), v_min=float(meta["v_min"]),
                              v_max=float(meta["v_max"]))
            agent = DERAgent(meta["agent"], cfg_d, int(meta["frame_channels"]), int(meta["frame_stack"]),
                             int(meta["num_actions"]), parse_env(meta["env"]).domain, 1, device, seed=0)
        agent.load_policy(tensors)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CvsuiteError(f"policy file does not match its metadata: {str(exc).splitlines()[0][:160]}") from None
    return agent


def check_env_matches(meta: dict[str, str], env_name: str) -> None:
    """The policy must have been trained on this environment (same observation and action spaces)."""
    spec = parse_env(env_name)
    if spec.name.lower() != meta["env"].lower():
        raise UsageError(f"the policy was trained on {meta['env']}, not {spec.name}; pass --env {meta['env']}")


def resolve_weights(weights: str | None, env_name: str) -> Path:
    """The given file, or the shipped policy of ``env_name``."""
    if weights:
        return Path(weights)
    from shared.weights import shipped_weight

    key = parse_env(env_name).name.lower()
    if key not in SHIPPED:
        raise UsageError(f"no shipped policy for {parse_env(env_name).name}; pass --weights "
                         f"(shipped: {', '.join(SHIPPED)})")
    return shipped_weight(SHIPPED[key])


def env_settings(meta: dict[str, str]) -> dict[str, Any]:
    if meta["suite"] == "dmc":
        return {"image_size": int(meta["image_size"]), "action_repeat": int(meta["action_repeat"])}
    return {}


def run_policy(weights: str | Path, env_name: str, steps: int, seed: int = 0, device: str = "cpu",
               ) -> dict[str, Any]:
    """Play ``steps`` agent steps of the deterministic policy; episodes restart as they end."""
    if steps <= 0:
        raise UsageError(f"--steps must be positive, got {steps}")
    tensors, meta = read_policy_file(weights)
    check_env_matches(meta, env_name)
    agent = policy_for(tensors, meta, torch.device(device))
    agent.train_mode(False)
    env = make_env(env_name, seed, training=False, **env_settings(meta))
    stack = FrameStack(int(meta["frame_stack"]), pad="repeat" if meta["suite"] == "dmc" else "zero")
    episode, obs = 0, stack.reset(env.reset(0))
    actions, rewards, episode_ids, returns, running = [], [], [], [], 0.0
    for _ in range(steps):
        action = agent.act(obs, explore=False)
        frame, reward, terminal, truncated = env.step(action)
        obs = stack.push(frame)
        actions.append([float(a) for a in np.asarray(action).reshape(-1)] if meta["suite"] == "dmc"
                       else int(np.asarray(action).reshape(-1)[0]))
        rewards.append(float(reward))
        episode_ids.append(episode)
        running += reward
        if terminal or truncated:
            returns.append(running)
            running, episode = 0.0, episode + 1
            obs = stack.reset(env.reset(episode))
    return {"env": meta["env"], "agent": meta["agent"], "steps": steps, "seed": seed, "actions": actions,
            "rewards": rewards, "episode": episode_ids, "completed_episode_returns": returns,
            "partial_episode_return": running}

