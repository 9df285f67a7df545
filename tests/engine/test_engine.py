"""Engine behaviour: bit-exact resume, atomic checkpoints, logging, DDP equivalence."""
from __future__ import annotations

import json

import pytest
import torch

from shared.config import load_config
from shared.engine import TrainConfig, Trainer
from shared.engine.checkpoint import load_checkpoint
from shared.engine.data import ResumableBatchSampler
from shared.errors import CvsuiteError
from shared.testing import run_ddp
from shared.weights import load_state_dict

from .tiny_tasks import NoisyRegression, RegressionTask


def make_cfg(out_dir, steps: int, **kw) -> TrainConfig:
    base = dict(out_dir=str(out_dir), max_steps=steps, batch_size=8, optimizer="sgd", lr=0.05,
                warmup_steps=3, scheduler="cosine", ckpt_every=1000, log_every=2, progress=False,
                tensorboard=False, seed=7, grad_clip=1.0)
    base.update(kw)
    return TrainConfig(**base)


def train(out_dir, steps: int, total: int, resume: bool = False, **kw) -> dict[str, torch.Tensor]:
    cfg = make_cfg(out_dir, total if resume else steps, resume=resume, **kw)
    torch.manual_seed(0)  # apps seed before building their model; the engine seeds everything after
    task = RegressionTask()
    trainer = Trainer(cfg, task, NoisyRegression())
    if not resume and steps < total:  # stop early at `steps` while the schedule is the `total`-step one
        cfg = make_cfg(out_dir, total, **kw)
        trainer = Trainer(cfg, task, NoisyRegression())
        trainer.cfg.max_steps = steps  # the loop stops here; the LR schedule still spans `total`
    trainer.fit()
    return {k: v.clone() for k, v in task.state_dict().items()}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_is_bit_identical(tmp_path, num_workers):
    # 48 samples / batch 8 = 6 steps per epoch; 20 steps cross epochs and the resume lands mid-epoch.
    # With workers, augmentation RNG lives in other processes: per-sample seeding keeps it exact.
    straight = train(tmp_path / "straight", 20, 20, num_workers=num_workers)
    train(tmp_path / "resumed", 9, 20, num_workers=num_workers)
    resumed = train(tmp_path / "resumed", 20, 20, resume=True, num_workers=num_workers)
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    # and training really changed something (the test would catch a no-op loop)
    torch.manual_seed(0)
    fresh = RegressionTask().state_dict()
    assert not torch.equal(straight["net.0.weight"], fresh["net.0.weight"])


def test_outputs_and_logs(tmp_path):
    cfg = make_cfg(tmp_path, 6)
    summary = Trainer(cfg, RegressionTask(), NoisyRegression(), full_config=cfg).fit()
    assert summary["step"] == 6
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [2, 4, 6] and all("loss" in l and "lr" in l for l in lines)
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0].startswith("step,")
    saved = load_config(TrainConfig, tmp_path / "config.yaml")
    assert saved == cfg
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")  # weights_only load works
    assert state["step"] == 6 and set(state) >= {"model", "optimizer", "scheduler", "rng", "config"}
    weights = load_state_dict(tmp_path / "model.safetensors")
    assert torch.equal(weights["net.0.weight"], state["model"]["net.0.weight"])


def test_refuses_to_clobber_a_run_and_resume_without_checkpoint(tmp_path):
    cfg = make_cfg(tmp_path, 2)
    Trainer(cfg, RegressionTask(), NoisyRegression()).fit()
    with pytest.raises(CvsuiteError, match="already holds a run"):
        Trainer(cfg, RegressionTask(), NoisyRegression()).fit()
    with pytest.raises(CvsuiteError, match="no checkpoint"):
        Trainer(make_cfg(tmp_path / "other", 2, resume=True), RegressionTask(), NoisyRegression()).fit()


def test_dataset_smaller_than_batch_is_a_clear_error(tmp_path):
    with pytest.raises(CvsuiteError, match="fewer than one global batch"):
        Trainer(make_cfg(tmp_path, 2, batch_size=64), RegressionTask(), NoisyRegression())


def test_sampler_shards_are_disjoint_and_resume_mid_epoch():
    full = ResumableBatchSampler(20, 3, seed=1, rank=0, world_size=1)
    ranks = [ResumableBatchSampler(20, 3, seed=1, rank=r, world_size=2) for r in range(2)]
    seen = [k for s in ranks for b in s for k in b]
    assert len(seen) == len(set(seen)) == 18  # 3 global batches of 6, tail dropped
    batches = list(full)
    full.set_position(0, 2)
    assert list(full) == batches[2:]


# ---- DDP: 2 gloo processes == 1 process on the concatenated batch ------------------------------
def _ddp_one_step(rank: int, world: int, out_dir: str) -> dict[str, torch.Tensor]:
    cfg = make_cfg(f"{out_dir}/ddp", 1, batch_size=8 // world, grad_clip=0.0, warmup_steps=0, optimizer="sgd",
                   momentum=0.0, scheduler="constant", lr=1.0)
    task = _ddp_task()
    trainer = Trainer(cfg, task, NoisyRegression())
    batch = next(iter(trainer.loader))
    trainer.train_step(batch)
    return {"grad": task.net[0].weight.grad.clone(), "weight": task.net[0].weight.detach().clone()}


def _ddp_task() -> RegressionTask:
    torch.manual_seed(0)
    task = RegressionTask()
    task.net[2].p = 0.0  # no dropout: the two runs must see the same function
    return task


def test_two_process_ddp_matches_single_process(tmp_path):
    results = run_ddp(_ddp_one_step, world_size=2, args=(str(tmp_path),))
    single = _ddp_one_step_single(tmp_path)
    for r in results:
        torch.testing.assert_close(r["grad"], single["grad"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(r["weight"], single["weight"], rtol=1e-5, atol=1e-6)


def _ddp_one_step_single(tmp_path) -> dict[str, torch.Tensor]:
    # same global batch: the union of the two ranks' first batches, in the sampler's order
    cfg = make_cfg(tmp_path / "single", 1, batch_size=8, grad_clip=0.0, warmup_steps=0, momentum=0.0,
                   scheduler="constant", lr=1.0)
    task = _ddp_task()
    trainer = Trainer(cfg, task, NoisyRegression())
    rank_batches = [ResumableBatchSampler(48, 4, seed=cfg.seed, rank=r, world_size=2) for r in range(2)]
    keys = [k for s in rank_batches for k in next(iter(s))]
    batch = trainer.loader.collate_fn([trainer.loader.dataset[k] for k in keys])
    trainer.train_step(batch)
    return {"grad": task.net[0].weight.grad.clone(), "weight": task.net[0].weight.detach().clone()}
