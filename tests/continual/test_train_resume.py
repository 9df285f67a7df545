"""Training through the shared Trainer: stream metrics, labels never read, bit-exact resume after a kill."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from apps.continual import train as T
from apps.continual.data import ImageSet
from apps.continual.train import prepare, run_training

from .helpers import RaisingLabels, digits_subset, tiny_cfg

# every sample is "poorly explained" (ELBO < 0): expansions happen within a few steps; replay refreshes per task
EXPAND = ["curl.ll_thresh=0", "curl.burn_in=2", "curl.wait_steps=3", "curl.buffer_size=10", "curl.buffer_train_steps=2"]


def _sets():
    return digits_subset("train"), digits_subset("test", per_class=6)


def test_sequential_run_records_stream_metrics(tmp_path):
    train, test = _sets()
    cfg = tiny_cfg(tmp_path / "r", *EXPAND, "regime=sequential", "classes_per_task=2", steps=12)
    summary = run_training(cfg, prepared=prepare(cfg, train, test))
    stream = json.loads((tmp_path / "r" / "stream.json").read_text())
    assert stream["stream"]["step"] == [6, 12] and len(stream["stream"]["task_accuracy"]) == 2
    assert stream["expansions"] >= 1 and stream["final"]["components"] == 1 + stream["expansions"]
    for name in ("curl.safetensors", "stream_accuracy.png", "samples.png", "model.safetensors"):
        assert (tmp_path / "r" / name).is_file(), name
    assert summary["final"]["cluster_accuracy"] == stream["stream"]["cluster_accuracy"][-1]


def test_unsupervised_training_never_reads_training_labels(tmp_path):
    train, test = _sets()
    blind = ImageSet(train.images, RaisingLabels(), train.classes, "no-labels")
    with pytest.raises(AssertionError, match="read the labels"):  # the helper really raises
        np.asarray(blind.labels)
    cfg = tiny_cfg(tmp_path / "r", *EXPAND, "regime=iid", "eval_every_task=false", steps=10)
    prepared = prepare(cfg, blind, test)
    summary = run_training(cfg, prepared=prepared)
    assert summary["steps"] == 10 and summary["expansions"] >= 1


def test_supervised_variant_uses_labels_as_components(tmp_path):
    train, test = _sets()
    cfg = tiny_cfg(tmp_path / "r", "curl.supervised=true", "curl.expansion=false", "classes_per_task=2",
                   "model.n_y=4", "model.n_y_active=2", steps=8)
    summary = run_training(cfg, prepared=prepare(cfg, train, test))
    assert summary["final"]["components"] == 4  # classes of both tasks seen


class _Killed(Exception):
    pass


def test_resume_after_kill_is_bit_identical(tmp_path, monkeypatch):
    """Kill at step 11 (checkpoint at 8, after an expansion and a snapshot), resume, compare everything."""
    train, test = _sets()
    args = [*EXPAND, "regime=smooth", "classes_per_task=2", "train.ckpt_every=4", "curl.refresh_period=5"]
    straight = tiny_cfg(tmp_path / "a", *args, steps=16)
    run_training(straight, prepared=prepare(straight, train, test))

    killed = tiny_cfg(tmp_path / "b", *args, steps=16)
    original = T.CurlTask.on_step_end

    def dying(self, step, outputs):
        original(self, step, outputs)
        if step == 10:
            raise _Killed

    monkeypatch.setattr(T.CurlTask, "on_step_end", dying)
    with pytest.raises(_Killed):
        run_training(killed, prepared=prepare(killed, train, test))
    monkeypatch.setattr(T.CurlTask, "on_step_end", original)
    mid = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert mid["step"] == 8 and int(mid["model"]["expansions"]) >= 1 and int(mid["model"]["snapshot_taken"]) == 1
    resumed = tiny_cfg(tmp_path / "b", *args, "train.resume=true", steps=16)
    run_training(resumed, prepared=prepare(resumed, train, test))
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 16
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]) or (
            a["model"][key].is_floating_point() and torch.equal(a["model"][key].isnan(), b["model"][key].isnan())
            and torch.equal(a["model"][key].nan_to_num(), b["model"][key].nan_to_num())), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key]))
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert json.loads((tmp_path / "a" / "stream.json").read_text())["stream"] == \
        json.loads((tmp_path / "b" / "stream.json").read_text())["stream"]
