"""Dynamic expansion (trigger, initialisation, optimizer) and mixture generative replay from the snapshot."""
from __future__ import annotations

import copy

import pytest
import torch

from apps.continual.model import CurlModel, ModelConfig
from apps.continual.train import CurlConfig, CurlTask
from shared.engine import TrainConfig
from shared.engine.trainer import build_optimizer


def _task(**curl) -> CurlTask:
    torch.manual_seed(0)
    model = CurlModel(12, ModelConfig(n_enc=[8], n_dec=[8], n_z=2, n_y=4, n_y_active=1))
    cfg = CurlConfig(**{"burn_in": 0, "wait_steps": 0, "buffer_size": 6, "buffer_train_steps": 3, **curl})
    task = CurlTask(model, cfg, batch_size=4, total_steps=40, n_tasks=2)
    task.on_optimizer_ready(build_optimizer(TrainConfig(lr=1e-2, weight_decay=0.0), task))
    return task


def _step(task: CurlTask, x: torch.Tensor) -> dict:
    out = task(x)
    task.optimizer.zero_grad()
    out["loss"].backward()
    task.optimizer.step()
    task.on_step_end(int(task.step), out)
    return out


def test_poor_samples_fill_buffer_then_a_component_is_added():
    task = _task(ll_thresh=0.0, replay="none")  # every sample's ELBO is < 0: all are poorly explained
    x = (torch.rand(4, 12) > 0.5).float()
    _step(task, x)
    assert int(task.poor_count) == 4 and task.model.active == 1  # 4 < buffer_size 6
    torch.testing.assert_close(task.poor[:4], x)
    _step(task, x)
    assert task.model.active == 2 and int(task.poor_count) == 0 and int(task.expansions) == 1
    assert int(task.since_expansion) == 0 and int(task.has_expanded) == 1


def test_no_expansion_above_threshold_or_in_burn_in_or_at_cap():
    task = _task(ll_thresh=-1e9, replay="none")  # nothing is that poorly explained
    for _ in range(5):
        _step(task, (torch.rand(4, 12) > 0.5).float())
    assert int(task.poor_count) == 0 and task.model.active == 1
    task = _task(ll_thresh=0.0, replay="none", burn_in=3)
    for _ in range(3):
        _step(task, (torch.rand(4, 12) > 0.5).float())
    assert int(task.poor_count) == 0  # steps 0..2 are the burn-in
    _step(task, (torch.rand(4, 12) > 0.5).float())
    assert int(task.poor_count) == 4
    task = _task(ll_thresh=0.0, replay="none")
    task.model.n_active.fill_(4)  # at the cap n_y
    for _ in range(3):
        _step(task, (torch.rand(4, 12) > 0.5).float())
    assert task.model.active == 4 and int(task.poor_count) == 0


def test_expansion_copies_best_component_and_trains_only_component_params():
    task = _task(ll_thresh=0.0, replay="none", buffer_train_steps=0)
    model = task.model
    model.n_active.fill_(2)
    with torch.no_grad():
        model.cluster.bias[:2] = torch.tensor([-5.0, 5.0])  # component 1 explains everything
    data = (torch.rand(8, 12) > 0.5).float()
    task.poor[:8] = data
    task.poor_count.fill_(8)
    new = task.expand()
    assert new == 2 and model.active == 3
    torch.testing.assert_close(model.latent_w[2], model.latent_w[1])
    torch.testing.assert_close(model.cluster.weight[2], model.cluster.weight[1])
    torch.testing.assert_close(model.decoder.prior_mu.weight[:, 2], model.decoder.prior_mu.weight[:, 1])

    task = _task(ll_thresh=0.0, replay="none", buffer_train_steps=2)
    model = task.model
    task.poor[:8] = data
    task.poor_count.fill_(8)
    before = copy.deepcopy(model.state_dict())
    task.expand()
    after = model.state_dict()
    # the optimizer knows the new component: its head moved and Adam holds state for it
    assert not torch.equal(after["latent_w"][1], before["latent_w"][1])
    assert not torch.equal(after["cluster.weight"][1], before["cluster.weight"][1])
    state = task.optimizer.state[model.latent_w]
    assert int(state["step"]) == 2 * 2 and state["exp_avg"][1].abs().sum() > 0
    assert any(p is model.latent_w for g in task.optimizer.param_groups for p in g["params"])
    # shared encoder and decoder are not trained by the expansion (official var_list)
    for key in ("encoder.0.weight", "decoder.data.0.weight", "decoder.data.2.bias"):
        assert torch.equal(after[key], before[key]), key
    # the buffer keeps only whole batches (official cull to a multiple of batch_size)
    assert int(task.poor_count) == 0


def test_replay_draws_from_frozen_snapshot_in_proportion_to_usage():
    task = _task(replay="fixed", ll_thresh=-1e9)
    task.recent_counts[:] = torch.tensor([0.0, 3.0, 1.0, 0.0], dtype=torch.float64)
    task.refresh_snapshot()
    torch.testing.assert_close(task.snapshot_probs, torch.tensor([1e-12, 3, 1, 1e-12], dtype=torch.float64) / (4 + 2e-12))
    assert task.recent_counts.sum() == 0 and task.cumulative_counts.sum() == 4
    frozen = copy.deepcopy(task.snapshot.state_dict())
    with torch.no_grad():  # the live model moves on; the snapshot must not
        for p in task.model.decoder.parameters():
            p.add_(1.0)
    state = task.replay_rng.clone()
    x, y = task.replay_batch(400)
    assert set(y.tolist()) <= {1, 2} and 0.65 < float((y == 1).float().mean()) < 0.85
    generator = torch.Generator()
    generator.set_state(state)
    expected_y = torch.multinomial(task.snapshot_probs.float(), 400, replacement=True, generator=generator)
    from apps.continual.model import Decoder

    snap = Decoder(12, task.model.cfg)
    snap.load_state_dict(frozen)
    expected_x = (snap.sample(expected_y, generator=generator, mean=True) > 0.5).float()
    assert torch.equal(y, expected_y) and torch.equal(x, expected_x)
    assert not torch.equal(task.replay_rng, state)  # the replay RNG advanced (and is checkpointed)


def test_replay_schedule_fixed_and_dynamic():
    task = _task(replay="fixed", ll_thresh=-1e9, refresh_period=4)
    flags = [float(_step(task, (torch.rand(4, 12) > 0.5).float())["replay"]) for _ in range(10)]
    # snapshot at steps 0, 4, 8; replay on odd steps once the first period is over (official step % 2 == 1)
    assert flags == [0, 0, 0, 0, 0, 1, 0, 1, 0, 1]
    task = _task(replay="dynamic", ll_thresh=0.0)
    flags = [float(_step(task, (torch.rand(4, 12) > 0.5).float())["replay"]) for _ in range(4)]
    assert flags == [0, 0, 0, 1]  # expansion at step 1 (buffer 8 >= 6) refreshes the snapshot


@pytest.mark.parametrize("bad", ["curl.replay=sometimes", "curl.buffer_size=0", "curl.buffer_size=-3",
                                 "curl.ll_thresh=nan", "curl.ll_thresh=5", "regime=shuffled"])
def test_bad_config_values_are_refused(bad, tmp_path):
    from shared.errors import UsageError

    from .helpers import tiny_cfg

    with pytest.raises(UsageError):
        tiny_cfg(tmp_path, bad)
