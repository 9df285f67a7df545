"""The four verbs end to end, and the paper-scale configs for 2 steps on stand-in data in the real layout."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from apps.continual.model import load_curl
from shared.config import load_config

from .helpers import QUIET, TINY_MODEL
from .test_data import write_mnist

CONFIGS = Path(__file__).resolve().parents[2] / "apps" / "continual" / "configs"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from shared.cli import main

    out = tmp_path_factory.mktemp("run") / "r"
    code = main(["continual", "train", "--data", "digits", "--regime", "sequential", "--tasks", "[[0,1],[2,3]]",
                 "--out", str(out), "--steps", "8", "train.batch_size=20", "curl.ll_thresh=0", "curl.burn_in=2",
                 "curl.wait_steps=2", "curl.buffer_size=20", "curl.buffer_train_steps=1", *TINY_MODEL, *QUIET])
    assert code == 0
    return out


def test_train_eval_infer_sample(run_cli, trained, tmp_path):
    weights = trained / "curl.safetensors"
    model, info = load_curl(str(weights))
    assert info["regime"] == "sequential" and info["tasks"] == [[0, 1], [2, 3]] and info["image_shape"] == [8, 8]
    code, out, err = run_cli(["continual", "eval", "--weights", weights, "--data", "digits", "--json", tmp_path / "e.json"])
    assert code == 0, err
    result = json.loads((tmp_path / "e.json").read_text())
    for key in ("cluster_accuracy", "knn_error", "elbo", "components"):
        assert key in result
    assert result["components"] == model.active and 0 <= result["cluster_accuracy"] <= 1

    from sklearn.datasets import load_digits
    from PIL import Image

    digits = load_digits()
    for i in range(3):
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).resize((32, 32)).save(tmp_path / f"d{i}.png")
    code, out, err = run_cli(["continual", "infer", "--weights", weights, tmp_path / "d0.png", tmp_path / "d1.png",
                              tmp_path / "d2.png", "--out", tmp_path / "p.csv"])
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert len(rows) == 3 and all(0 <= int(r["component"]) < model.active for r in rows)
    assert len([k for k in rows[0] if k.startswith("z")]) == model.cfg.n_z

    code, out, err = run_cli(["continual", "sample", "--weights", weights, "--out", tmp_path / "g.png",
                              "--per-component", "4"])
    assert code == 0, err
    from PIL import Image as I

    grid = I.open(tmp_path / "g.png")
    assert grid.size == ((4 * 9 + 1) * 4, (model.active * 9 + 1) * 4)


def test_infer_warns_on_a_photo_outside_the_model(run_cli, trained, tmp_path):
    """A real photo (matplotlib's grace_hopper) is nothing like 8x8 digits: flagged and warned about."""
    import matplotlib.cbook

    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    code, out, err = run_cli(["continual", "infer", "--weights", trained / "curl.safetensors", photo,
                              "--out", tmp_path / "p.csv"])
    assert code == 0, err
    row = next(csv.DictReader(open(tmp_path / "p.csv")))
    assert ("cvsuite: warning" in err) == (row["outside_model"] == "1")


@pytest.mark.parametrize("name", ["mnist_sequential", "mnist_iid", "mnist_supervised"])
def test_paper_scale_configs_run_two_steps_on_stand_in_mnist(name, tmp_path):
    from apps.continual.train import ContinualConfig, run_training

    write_mnist(tmp_path / "data", n_train=200, n_test=20, gz=True)
    cfg = load_config(ContinualConfig, CONFIGS / f"{name}.yaml",
                      [f"data={tmp_path / 'data'}", f"train.out_dir={tmp_path / 'run'}", "train.max_steps=2", *QUIET])
    assert cfg.train.batch_size == 100 and cfg.train.max_steps == 2
    summary = run_training(cfg)
    assert summary["steps"] == 2 and np.isfinite(summary["metrics"]["loss"])
    model, info = load_curl(str(tmp_path / "run" / "curl.safetensors"))
    assert model.n_x == 784 and info["image_shape"] == [28, 28]
