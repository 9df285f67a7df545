"""The agents: CURL-SAC (and its pixel-SAC / SAC+crop baselines) for DMC, CURL-DER (and DER) for Atari.

Each agent owns its networks, optimizers and an augmentation RNG; ``act`` picks an action,
``update(replay, step)`` does one training update and returns scalars to log, ``state_dict`` holds
everything an exact resume needs (tensors and ints only), ``policy_state``/``policy_meta`` what the
exported ``model.safetensors`` holds.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.config import bounded
from shared.losses import momentum_update, sac_actor_loss, sac_alpha_loss, sac_critic_loss, sac_target
from shared.errors import UsageError

from .losses import CURL_DER_SMALL_COEFF_GAMES, curl_der_contrastive, curl_sac_contrastive, der_distributional_loss
from .model import DERNetwork, SACNetworks
from .replay import FrameReplay, center_crop, random_crop, random_shift

SAC_AGENTS = ("curl-sac", "sac-crop", "sac")
DER_AGENTS = ("curl-der", "der")
AGENTS = SAC_AGENTS + DER_AGENTS


@dataclass
class SACConfig:
    """Official CURL defaults (``train.py`` + ``scripts/run.sh``: batch 128)."""

    batch_size: int = bounded(128, ge=2)
    init_steps: int = bounded(1000, ge=1)  # random actions before the first update
    hidden_dim: int = bounded(1024, ge=1)
    feature_dim: int = bounded(50, ge=1)
    num_layers: int = bounded(4, ge=1, le=8)
    num_filters: int = bounded(32, ge=1)
    encoder_tanh: bool = False  # official actor/critic encoders use output_logits=True: no tanh
    discount: float = bounded(0.99, ge=0.0, le=1.0)
    init_temperature: float = bounded(0.1, gt=0.0)
    alpha_lr: float = bounded(1e-4, gt=0.0)
    alpha_beta: float = bounded(0.5, ge=0.0, lt=1.0)
    actor_lr: float = bounded(1e-3, gt=0.0)
    actor_beta: float = bounded(0.9, ge=0.0, lt=1.0)
    actor_log_std_min: float = -10.0
    actor_log_std_max: float = 2.0
    actor_update_freq: int = bounded(2, ge=1)
    critic_lr: float = bounded(1e-3, gt=0.0)
    critic_beta: float = bounded(0.9, ge=0.0, lt=1.0)
    critic_tau: float = bounded(0.01, ge=0.0, le=1.0)
    critic_target_update_freq: int = bounded(2, ge=1)
    encoder_lr: float = bounded(1e-3, gt=0.0)
    encoder_tau: float = bounded(0.05, ge=0.0, le=1.0)
    curl_update_freq: int = bounded(1, ge=1)
    bf16: bool = False  # bf16 autocast of the update (CPU recipe); CURL's loss itself runs in fp32


@dataclass
class DERConfig:
    """Data-efficient Rainbow + CURL defaults (curl_rainbow ``main.py``)."""

    batch_size: int = bounded(32, ge=2)
    init_steps: int = bounded(1600, ge=1)  # learn_start
    hidden: int = bounded(256, ge=1)
    atoms: int = bounded(51, ge=2)
    v_min: float = -10.0
    v_max: float = 10.0
    noisy_std: float = bounded(0.1, ge=0.0)
    multi_step: int = bounded(20, ge=1)
    discount: float = bounded(0.99, ge=0.0, le=1.0)
    target_update: int = bounded(2000, ge=1)
    lr: float = bounded(1e-4, gt=0.0)
    adam_eps: float = bounded(1.5e-4, gt=0.0)
    norm_clip: float = bounded(10.0, gt=0.0)
    priority_exponent: float = bounded(0.5, ge=0.0)
    priority_weight: float = bounded(0.4, ge=0.0, le=1.0)  # β, annealed to 1 over the run
    reward_clip: float = bounded(1.0, ge=0.0)  # 0 = off
    curl_momentum: float = bounded(0.999, ge=0.0, le=1.0)
    curl_coeff: float = bounded(-1.0, ge=-1.0)  # -1 = official (0.01 on pong/boxing/private_eye/freeway, else 1)
    eval_epsilon: float = bounded(0.001, ge=0.0, le=1.0)
    bf16: bool = False


def _autocast(enabled: bool, device: torch.device) -> Any:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _to_float(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array), device=device).float()


class SACAgent:
    """CURL-SAC as the official ``CurlSacAgent``; ``sac-crop`` drops the CURL term, ``sac`` also the crops."""

    METRICS = ("batch_reward", "critic_loss", "actor_loss", "alpha", "entropy", "curl_loss")

    def __init__(self, kind: str, cfg: SACConfig, frame_channels: int, stack: int, image_size: int, crop: int,
                 action_dim: int, device: torch.device, seed: int) -> None:
        if kind not in SAC_AGENTS:
            raise UsageError(f"agent {kind!r} is not a SAC agent ({', '.join(SAC_AGENTS)})")
        if crop > image_size:
            raise UsageError(f"env.crop {crop} is larger than env.image_size {image_size}")
        self.kind, self.cfg, self.device = kind, cfg, device
        self.image_size, self.crop, self.action_dim = image_size, crop, action_dim
        self.channels = frame_channels * stack
        self.nets = SACNetworks(self.channels, crop, action_dim, cfg.hidden_dim, cfg.feature_dim, cfg.num_layers,
                                cfg.num_filters, cfg.encoder_tanh, cfg.init_temperature, cfg.actor_log_std_min,
                                cfg.actor_log_std_max).to(device)
        n = self.nets
        self.target_entropy = -float(action_dim)
        self.actor_opt = torch.optim.Adam(n.actor.parameters(), lr=cfg.actor_lr, betas=(cfg.actor_beta, 0.999))
        self.critic_opt = torch.optim.Adam(n.critic.parameters(), lr=cfg.critic_lr, betas=(cfg.critic_beta, 0.999))
        self.alpha_opt = torch.optim.Adam([n.log_alpha], lr=cfg.alpha_lr, betas=(cfg.alpha_beta, 0.999))
        # official: encoder_optimizer over the critic encoder, cpc_optimizer over CURL.parameters() — which
        # holds W *and* the critic encoder, so the encoder takes two Adam steps per CURL update (kept).
        self.encoder_opt = torch.optim.Adam(n.critic.encoder.parameters(), lr=cfg.encoder_lr)
        self.cpc_opt = torch.optim.Adam([*n.curl.parameters(), *n.critic.encoder.parameters()], lr=cfg.encoder_lr)
        self.rng = np.random.default_rng(seed)

    @property
    def uses_curl(self) -> bool:
        return self.kind == "curl-sac"

    @property
    def uses_crop(self) -> bool:
        return self.kind in ("curl-sac", "sac-crop")

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Action for one (k·C, H, W) stack: a policy sample while training, the mean in evaluation."""
        x = _to_float(center_crop(obs, self.crop)[None], self.device)
        with torch.no_grad():
            mu, pi, _, _ = self.nets.actor(x, sample=explore)
        return (pi if explore else mu)[0].float().cpu().numpy()

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        return random_crop(obs, self.crop, self.rng) if self.uses_crop else center_crop(obs, self.crop)

    def update(self, replay: FrameReplay, step: int) -> dict[str, float]:
        cfg, n, dev = self.cfg, self.nets, self.device
        batch = replay.sample(cfg.batch_size)
        obs = _to_float(self._augment(batch["obs"]), dev)
        next_obs = _to_float(self._augment(batch["next_obs"]), dev)
        action = torch.as_tensor(batch["action"], device=dev).float()
        reward = torch.as_tensor(batch["reward"], device=dev).view(-1, 1)
        discount = torch.as_tensor(batch["discount"], device=dev).view(-1, 1)
        out: dict[str, float] = {"batch_reward": float(reward.mean())}
        with _autocast(cfg.bf16, dev):
            with torch.no_grad():
                _, pi_next, log_pi_next, _ = n.actor(next_obs)
                tq1, tq2 = n.critic_target(next_obs, pi_next)
                target = sac_target(reward, discount, tq1.float(), tq2.float(), log_pi_next.float(), n.log_alpha.exp())
            q1, q2 = n.critic(obs, action)
            critic_loss = sac_critic_loss(q1.float(), q2.float(), target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        out["critic_loss"] = float(critic_loss.detach())
        if step % cfg.actor_update_freq == 0:
            with _autocast(cfg.bf16, dev):
                _, pi, log_pi, _ = n.actor(obs, detach_encoder=True)
                aq1, aq2 = n.critic(obs, pi, detach_encoder=True)
                actor_loss = sac_actor_loss(aq1.float(), aq2.float(), log_pi.float(), n.log_alpha.exp())
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss = sac_alpha_loss(n.log_alpha, log_pi.float(), self.target_entropy)
            alpha_loss.backward()
            self.alpha_opt.step()
            out.update(actor_loss=float(actor_loss.detach()), alpha=float(n.log_alpha.detach().exp()), entropy=float(-log_pi.detach().mean()))
        if step % cfg.critic_target_update_freq == 0:
            momentum_update(n.critic_target.Q1, n.critic.Q1, 1.0 - cfg.critic_tau)
            momentum_update(n.critic_target.Q2, n.critic.Q2, 1.0 - cfg.critic_tau)
            momentum_update(n.critic_target.encoder, n.critic.encoder, 1.0 - cfg.encoder_tau)
        if self.uses_curl and step % cfg.curl_update_freq == 0:
            anchor = obs  # the critic's crop, as the official sample_cpc returns it
            positive = _to_float(random_crop(batch["obs"], self.crop, self.rng), dev)
            with _autocast(cfg.bf16, dev):
                curl_loss = curl_sac_contrastive(n, anchor, positive)
            self.encoder_opt.zero_grad(set_to_none=True)
            self.cpc_opt.zero_grad(set_to_none=True)
            curl_loss.backward()
            self.encoder_opt.step()
            self.cpc_opt.step()
            out["curl_loss"] = float(curl_loss.detach())
        return out

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "alpha": self.alpha_opt,
                "encoder": self.encoder_opt, "cpc": self.cpc_opt}

    def state_dict(self) -> dict[str, Any]:
        from .replay import _generator_state

        return {"nets": self.nets.state_dict(), "opt": {k: o.state_dict() for k, o in self._optimizers().items()},
                "rng": _generator_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from .replay import _generator_from_state

        self.nets.load_state_dict(state["nets"])
        self.nets.actor.encoder.tie_convs_to(self.nets.critic.encoder)
        for k, o in self._optimizers().items():
            o.load_state_dict(state["opt"][k])
        self.rng = _generator_from_state(state["rng"])

    def policy_state(self) -> dict[str, torch.Tensor]:
        return {f"actor.{k}": v for k, v in self.nets.actor.state_dict().items()}

    def load_policy(self, tensors: dict[str, torch.Tensor]) -> None:
        actor = {k[len("actor."):]: v for k, v in tensors.items() if k.startswith("actor.")}
        self.nets.actor.load_state_dict(actor)

    def train_mode(self, training: bool) -> None:
        self.nets.train(training)


class DERAgent:
    """Data-efficient Rainbow (C51, noisy nets, n-step, PER, double Q); ``curl-der`` adds CURL on random shifts."""

    METRICS = ("c51_loss", "curl_loss", "beta")

    def __init__(self, kind: str, cfg: DERConfig, frame_channels: int, stack: int, num_actions: int,
                 game: str, total_steps: int, device: torch.device, seed: int) -> None:
        if kind not in DER_AGENTS:
            raise UsageError(f"agent {kind!r} is not a DER agent ({', '.join(DER_AGENTS)})")
        if cfg.v_max <= cfg.v_min:
            raise UsageError(f"der.v_max {cfg.v_max} must be larger than der.v_min {cfg.v_min}")
        self.kind, self.cfg, self.device, self.num_actions = kind, cfg, device, num_actions
        self.channels = frame_channels * stack
        self.online = DERNetwork(self.channels, num_actions, cfg.atoms, cfg.hidden, cfg.noisy_std).to(device)
        self.momentum = DERNetwork(self.channels, num_actions, cfg.atoms, cfg.hidden, cfg.noisy_std).to(device)
        self.target = DERNetwork(self.channels, num_actions, cfg.atoms, cfg.hidden, cfg.noisy_std).to(device)
        self.momentum.load_state_dict(self.online.state_dict())
        self.target.load_state_dict(self.online.state_dict())
        for p in [*self.momentum.parameters(), *self.target.parameters()]:
            p.requires_grad_(False)
        self.support = torch.linspace(cfg.v_min, cfg.v_max, cfg.atoms, device=device)
        self.opt = torch.optim.Adam(self.online.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
        self.curl_coeff = cfg.curl_coeff if cfg.curl_coeff >= 0 else (0.01 if game in CURL_DER_SMALL_COEFF_GAMES else 1.0)
        self.beta_increase = (1.0 - cfg.priority_weight) / max(total_steps - cfg.init_steps, 1)
        self.beta = cfg.priority_weight
        self.rng = np.random.default_rng(seed)

    @property
    def uses_curl(self) -> bool:
        return self.kind == "curl-der"

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        """Greedy action of the noisy online net (training) or ε-greedy with noise off (evaluation)."""
        if not explore and self.rng.random() < self.cfg.eval_epsilon:
            return np.array([self.rng.integers(0, self.num_actions)], dtype=np.int64)
        x = _to_float(obs[None], self.device)
        with torch.no_grad():
            probs = self.online(x)
        return np.array([int((probs * self.support).sum(2).argmax(1)[0])], dtype=np.int64)

    def before_act(self) -> None:
        """Draw new noisy weights (every step, replay frequency 1)."""
        self.online.reset_noise()

    def update(self, replay: FrameReplay, step: int) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        self.beta = min(self.beta + self.beta_increase, 1.0)
        batch = replay.sample(cfg.batch_size, beta=self.beta)
        obs = _to_float(batch["obs"], dev)
        next_obs = _to_float(batch["next_obs"], dev)
        action = torch.as_tensor(batch["action"], device=dev).long().view(-1)
        returns = torch.as_tensor(batch["reward"], device=dev)
        discount = torch.as_tensor(batch["discount"], device=dev)
        weight = torch.as_tensor(batch["weight"], device=dev)
        with _autocast(cfg.bf16, dev):
            loss = der_distributional_loss(self.online, self.target, obs, action, returns, discount, next_obs,
                                           self.support).float()
            out: dict[str, float] = {"c51_loss": float(loss.detach().mean())}
            if self.uses_curl:
                anchor = _to_float(random_shift(batch["obs"], 4, self.rng), dev)
                positive = _to_float(random_shift(batch["obs"], 4, self.rng), dev)
                curl_loss = curl_der_contrastive(self.online, self.momentum, anchor, positive)
                loss = loss + self.curl_coeff * curl_loss
                out["curl_loss"] = float(curl_loss.detach())
        self.opt.zero_grad(set_to_none=True)
        (weight * loss).mean().backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), cfg.norm_clip)
        self.opt.step()
        replay.update_priorities(batch["index"], loss.detach().cpu().numpy())  # official: total loss as priority
        if self.uses_curl:
            momentum_update(self.momentum, self.online, cfg.curl_momentum)
        if step % cfg.target_update == 0:
            self.target.load_state_dict(self.online.state_dict())
        out["beta"] = self.beta
        return out

    def state_dict(self) -> dict[str, Any]:
        from .replay import _generator_state

        return {"online": self.online.state_dict(), "momentum": self.momentum.state_dict(),
                "target": self.target.state_dict(), "opt": self.opt.state_dict(), "beta": self.beta,
                "rng": _generator_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from .replay import _generator_from_state

        self.online.load_state_dict(state["online"])
        self.momentum.load_state_dict(state["momentum"])
        self.target.load_state_dict(state["target"])
        self.opt.load_state_dict(state["opt"])
        self.beta = float(state["beta"])
        self.rng = _generator_from_state(state["rng"])

    def policy_state(self) -> dict[str, torch.Tensor]:
        return {f"online.{k}": v for k, v in self.online.state_dict().items()}

    def load_policy(self, tensors: dict[str, torch.Tensor]) -> None:
        self.online.load_state_dict({k[len("online."):]: v for k, v in tensors.items() if k.startswith("online.")})

    def train_mode(self, training: bool) -> None:
        self.online.train(training)


def clip_reward(reward: float, clip: float) -> float:
    return max(min(reward, clip), -clip) if clip > 0 else reward


def check_finite_metrics(metrics: dict[str, float], step: int) -> None:
    from shared.errors import CvsuiteError

    for key, value in metrics.items():
        if not math.isfinite(value):
            raise CvsuiteError(f"{key} became {value} at step {step}; lower the learning rates")
