"""Agent mechanics: tied convs, actor gradients stop at the encoder, momentum/target updates, CURL terms."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from apps.rl.agents import DERAgent, DERConfig, SACAgent, SACConfig
from apps.rl.losses import curl_der_contrastive
from apps.rl.replay import FrameReplay



def _replay(frame_shape, stack, action_shape, dtype, n_step=1, prioritized=False, discrete=0):
    buf = FrameReplay(64, frame_shape, stack, action_shape, dtype, pad="repeat" if not discrete else "zero",
                      n_step=n_step, prioritized=prioritized, seed=0)
    rng = np.random.default_rng(0)
    for ep in range(3):
        buf.start_episode(rng.integers(0, 256, frame_shape, dtype=np.uint8))
        for t in range(8):
            action = rng.integers(0, discrete, (1,)) if discrete else rng.uniform(-1, 1, action_shape)
            buf.add(action, float(rng.normal()), discrete and t == 7, (not discrete) and t == 7,
                    rng.integers(0, 256, frame_shape, dtype=np.uint8))
    return buf


def _sac(kind: str) -> SACAgent:
    torch.manual_seed(0)
    cfg = SACConfig(batch_size=8, hidden_dim=16, num_filters=4, feature_dim=8)
    return SACAgent(kind, cfg, 3, 3, 24, 16, 2, torch.device("cpu"), seed=0)


def test_actor_shares_critic_convs_but_not_fc() -> None:
    agent = _sac("curl-sac")
    n = agent.nets
    for a, c in zip(n.actor.encoder.convs, n.critic.encoder.convs):
        assert a.weight is c.weight and a.bias is c.bias
    assert n.actor.encoder.fc.weight is not n.critic.encoder.fc.weight


def test_actor_loss_does_not_reach_the_conv_encoder() -> None:
    agent = _sac("curl-sac")
    n = agent.nets
    obs = torch.rand(4, 9, 16, 16) * 255
    _, pi, log_pi, _ = n.actor(obs, detach_encoder=True)
    q1, q2 = n.critic(obs, pi, detach_encoder=True)
    (0.1 * log_pi - torch.min(q1, q2)).mean().backward()
    assert all(conv.weight.grad is None for conv in n.critic.encoder.convs)
    assert n.actor.trunk[0].weight.grad is not None and n.actor.encoder.fc.weight.grad is not None


def test_target_momentum_update_matches_formula() -> None:
    agent = _sac("sac-crop")  # no CURL step after the target update, so the critic is the one it saw
    n = agent.nets
    buf = _replay((3, 24, 24), 3, (2,), np.float32)
    before_target = copy.deepcopy(n.critic_target.state_dict())
    agent.update(buf, step=2)  # step % 2 == 0: actor + target update
    critic = n.critic.state_dict()
    target = n.critic_target.state_dict()
    for key, value in target.items():
        tau = 0.05 if key.startswith("encoder.") else 0.01
        expected = (1 - tau) * before_target[key] + tau * critic[key]
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert n.critic_target.encoder.fc.weight.requires_grad is False


def test_odd_steps_skip_actor_and_target_updates() -> None:
    agent = _sac("curl-sac")
    n = agent.nets
    buf = _replay((3, 24, 24), 3, (2,), np.float32)
    actor_before = copy.deepcopy(n.actor.trunk.state_dict())
    target_before = copy.deepcopy(n.critic_target.state_dict())
    out = agent.update(buf, step=1)
    assert "actor_loss" not in out and "curl_loss" in out
    for key, value in n.actor.trunk.state_dict().items():
        torch.testing.assert_close(value, actor_before[key])
    for key, value in n.critic_target.state_dict().items():
        torch.testing.assert_close(value, target_before[key])


def test_baselines_drop_the_curl_term() -> None:
    buf = _replay((3, 24, 24), 3, (2,), np.float32)
    for kind in ("sac-crop", "sac"):
        agent = _sac(kind)
        w = agent.nets.curl.W.detach().clone()
        out = agent.update(buf, step=2)
        assert "curl_loss" not in out
        torch.testing.assert_close(agent.nets.curl.W, w)
    assert _sac("sac").uses_crop is False and _sac("sac-crop").uses_crop is True


def test_curl_sac_term_is_official_compute_logits() -> None:
    agent = _sac("curl-sac")
    n = agent.nets
    anchor, positive = torch.rand(6, 9, 16, 16) * 255, torch.rand(6, 9, 16, 16) * 255
    from apps.rl.losses import curl_sac_contrastive

    ours = curl_sac_contrastive(n, anchor, positive)
    z_a = n.critic.encoder(anchor)
    z_pos = n.critic_target.encoder(positive).detach()
    logits = z_a @ (n.curl.W @ z_pos.T)
    logits = logits - logits.max(1)[0][:, None]
    torch.testing.assert_close(ours, F.cross_entropy(logits, torch.arange(6)), rtol=1e-5, atol=1e-6)


def _der(kind: str) -> DERAgent:
    torch.manual_seed(0)
    cfg = DERConfig(batch_size=8, hidden=16, multi_step=3, target_update=4)
    return DERAgent(kind, cfg, 1, 4, 3, "breakout", 100, torch.device("cpu"), seed=0)


def test_der_momentum_and_target_updates() -> None:
    agent = _der("curl-der")
    buf = _replay((1, 84, 84), 4, (1,), np.int64, n_step=3, prioritized=True, discrete=3)
    momentum_before = copy.deepcopy(agent.momentum.state_dict())
    agent.update(buf, step=1)
    online = agent.online.state_dict()
    for key, value in agent.momentum.state_dict().items():
        if "epsilon" in key:  # noise buffers are copied
            torch.testing.assert_close(value, online[key])
        else:
            torch.testing.assert_close(value, 0.999 * momentum_before[key] + 0.001 * online[key], rtol=1e-5, atol=1e-7)
    assert not torch.equal(agent.target.fc_h_v.weight_mu, agent.online.fc_h_v.weight_mu)
    agent.update(buf, step=4)  # target_update = 4: hard copy
    for key, value in agent.target.state_dict().items():
        if "epsilon" not in key:
            torch.testing.assert_close(value, agent.online.state_dict()[key])


def test_curl_der_term_equals_official_scaled_logits() -> None:
    agent = _der("curl-der")
    a, p = torch.rand(5, 4, 84, 84) * 255, torch.rand(5, 4, 84, 84) * 255
    ours = curl_der_contrastive(agent.online, agent.momentum, a, p)
    _, z_anch = agent.online(a, log=True, with_curl=True)
    _, z_target = agent.momentum(p, log=True, with_curl=True)
    logits = z_anch @ (agent.online.curl.W @ z_target.T)
    logits = (logits - logits.max(1)[0][:, None]) * 0.1
    torch.testing.assert_close(ours, F.cross_entropy(logits, torch.arange(5)), rtol=1e-5, atol=1e-6)


def test_der_baseline_has_no_curl_and_official_coefficients() -> None:
    buf = _replay((1, 84, 84), 4, (1,), np.int64, n_step=3, prioritized=True, discrete=3)
    out = _der("der").update(buf, step=1)
    assert "curl_loss" not in out and np.isfinite(out["c51_loss"])
    cfg = DERConfig()
    assert DERAgent("curl-der", cfg, 1, 4, 6, "pong", 100, torch.device("cpu"), 0).curl_coeff == 0.01
    assert DERAgent("curl-der", cfg, 1, 4, 6, "breakout", 100, torch.device("cpu"), 0).curl_coeff == 1.0


def test_der_act_is_greedy_in_expected_value() -> None:
    agent = _der("der")
    agent.train_mode(False)
    agent.cfg.eval_epsilon = 0.0
    obs = np.random.default_rng(0).integers(0, 256, (4, 84, 84), dtype=np.uint8)
    with torch.no_grad():
        probs = agent.online(torch.as_tensor(obs[None]).float())
    expected = int((probs * agent.support).sum(2).argmax(1))
    assert int(agent.act(obs, explore=False)[0]) == expected


def test_bf16_autocast_update_is_finite_and_keeps_fp32_weights() -> None:
    torch.manual_seed(0)
    cfg = SACConfig(batch_size=8, hidden_dim=16, num_filters=4, feature_dim=8, bf16=True)
    agent = SACAgent("curl-sac", cfg, 3, 3, 24, 16, 2, torch.device("cpu"), seed=0)
    out = agent.update(_replay((3, 24, 24), 3, (2,), np.float32), step=2)
    assert all(np.isfinite(v) for v in out.values()) and {"critic_loss", "actor_loss", "curl_loss"} <= set(out)
    assert all(p.dtype == torch.float32 for p in agent.nets.parameters())
