"""The shipped synthetic-set weights on clips they never saw: the full model answers the questions that
need both streams, the text-only and video-only baselines stay well below it (issue 19).

Substitute for a from-scratch training test: the full model needs ~700 steps of 16 questions before it
uses both streams (see apps/videoqa/README.md), far beyond a unit-test budget, so this checks the three
shipped models (trained by the committed recipe) on freshly generated clips of another seed.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.videoqa.dataset import VideoQADataset
from apps.videoqa.data import open_split
from apps.videoqa.evaluate import evaluate_model
from apps.videoqa.model import load_model
from apps.videoqa.train import DataConfig
from shared.weights import read_manifest, shipped_weight

NAMES = {"full": "videoqa_synth_full", "text": "videoqa_synth_text_only", "video": "videoqa_synth_video_only"}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    from apps.videoqa.synth import write_dataset

    root = tmp_path_factory.mktemp("vqa_fresh") / "synth"
    write_dataset(root, 40, seed=7)  # seed 7: clips the shipped weights (trained on seed 1) never saw
    return root


def _both_stream_accuracy(name: str, root: Path) -> float:
    model, vocab, _ = load_model(shipped_weight(name))
    split = open_split(root, "train", labelled=True)
    dataset = VideoQADataset(split, vocab, DataConfig().sizes(), visual=model.cfg.visual,
                             load_visual=model.cfg.streams != "text", load_subtitles=model.cfg.streams != "video")
    per_type = evaluate_model(model, dataset)["per_type"]
    rows = [per_type[k] for k in ("what", "who")]
    return sum(r["accuracy"] * r["questions"] for r in rows) / sum(r["questions"] for r in rows)


def test_single_stream_baselines_stay_well_below_the_full_model(fresh: Path) -> None:
    missing = [n for n in NAMES.values() if n not in read_manifest()]
    assert not missing, f"shipped weights missing from weights/MANIFEST.json: {missing}"
    accuracy = {k: _both_stream_accuracy(n, fresh) for k, n in NAMES.items()}
    # 112 what/who questions of 28 unseen clips; chance is 20 %, a window-only guess 25 %
    assert accuracy["full"] >= 0.5, accuracy
    assert accuracy["text"] <= accuracy["full"] - 0.2, accuracy
    assert accuracy["video"] <= accuracy["full"] - 0.2, accuracy
