"""The CLI verbs end to end on a tiny synthetic set: synth -> pretrain -> train -> eval -> infer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.videoqa.data import open_split

from .helpers import write_random_features

QUIET = ["train.progress=false", "train.tensorboard=false", "train.batch_size=4", "model.dim=16", "model.layers=1",
         "model.heads=2", "model.ff=32", "model.cnn_width=4"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from apps.videoqa.synth import write_dataset

    root = tmp_path_factory.mktemp("vqa") / "synth"
    write_dataset(root, 8, seed=5)
    return root


def test_two_stages_eval_and_leaderboard_json(tiny: Path, tmp_path: Path, run_cli) -> None:
    code, out, err = run_cli(["videoqa", "pretrain", "--data", tiny, "--out", tmp_path / "s1", "--steps", "2", *QUIET])
    assert code == 0, err
    assert "stage 1" in out
    code, out, err = run_cli(["videoqa", "train", "--data", tiny, "--out", tmp_path / "s2", "--steps", "2",
                              "--init-from", tmp_path / "s1" / "model.safetensors", *QUIET])
    assert code == 0, err
    assert "accuracy" in out and "what" in out and "who" in out
    weights = tmp_path / "s2" / "model.safetensors"
    code, out, err = run_cli(["videoqa", "eval", "--data", tiny, "--weights", weights, "--json", tmp_path / "e.json"])
    assert code == 0, err
    result = json.loads((tmp_path / "e.json").read_text())
    assert set(result["per_type"]) == {"what", "who", "which", "how"}
    assert sum(r["questions"] for r in result["per_type"].values()) == result["questions"]
    # leaderboard JSON: {qid: answer_idx} for every question of test_public, ts window honoured
    preds = tmp_path / "preds.json"
    code, out, err = run_cli(["videoqa", "infer", "--data", tiny, "--weights", weights, "--out", preds,
                              "--pictures", tmp_path / "pics", "--max-pictures", "2"])
    assert code == 0, err
    data = json.loads(preds.read_text())
    items = open_split(tiny, "test_public").items
    assert set(data) == {str(it.qid) for it in items}
    assert all(isinstance(v, int) and 0 <= v < 5 for v in data.values())
    assert len(list((tmp_path / "pics").glob("*.png"))) == 2
    # stage 2 from stage-1 weights of another shape: one clear error
    code, out, err = run_cli(["videoqa", "train", "--data", tiny, "--out", tmp_path / "s3", "--steps", "1",
                              "--init-from", tmp_path / "s1" / "model.safetensors", *QUIET, "model.dim=32"])
    assert code == 2 and "model config" in err


def test_paper_scale_config_runs_two_steps_on_stand_in(tiny: Path, tmp_path: Path, run_cli) -> None:
    """configs/tvqa_features.yaml (TVQA-scale, precomputed 2048-d features) on the synthetic stand-in."""
    features = write_random_features(tiny, tmp_path / "tvqa_imagenet_pool5.h5")
    config = Path(__file__).resolve().parents[2] / "apps" / "videoqa" / "configs" / "tvqa_features.yaml"
    code, out, err = run_cli(["videoqa", "train", "--config", config, "--data", tiny, "--features", features,
                              "--out", tmp_path / "run", "--steps", "2", "train.batch_size=4", "train.progress=false",
                              "train.tensorboard=false", "train.warmup_steps=0", "data.min_count=1"])
    assert code == 0, err
    code, out, err = run_cli(["videoqa", "eval", "--data", tiny, "--weights", tmp_path / "run" / "model.safetensors"])
    assert code == 2 and "--features" in err
    code, out, err = run_cli(["videoqa", "eval", "--data", tiny, "--weights", tmp_path / "run" / "model.safetensors",
                              "--features", features])
    assert code == 0, err
