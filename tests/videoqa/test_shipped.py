"""Shipped synthetic-set weights: the full model beats the text-only and video-only baselines (trained by the
same recipe) by a wide margin on a fresh synthetic set none of them saw; the demo runs."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from apps.videoqa.cli import _open
from apps.videoqa.evaluate import evaluate_model
from apps.videoqa.synth import write_dataset
from shared.weights import shipped_weight


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vqa_fresh") / "synth"
    write_dataset(root, 24, seed=77)  # seed 77 is used by no training recipe
    return root


def _accuracy(name: str, root: Path) -> float:
    """Accuracy on the questions that need both streams (``what`` and ``who``)."""
    args = argparse.Namespace(data=str(root), split="train", features=None, no_ts=False, bad_ts="error", device="cpu")
    model, dataset, _, _ = _open(args, shipped_weight(name), need_labels=True)
    per_type = evaluate_model(model, dataset, batch_size=64)["per_type"]
    both = [per_type[k] for k in ("what", "who")]
    return sum(r["accuracy"] * r["questions"] for r in both) / sum(r["questions"] for r in both)


def test_baselines_stay_well_below_full_model(fresh: Path) -> None:
    full = _accuracy("videoqa_synth_full", fresh)
    text = _accuracy("videoqa_synth_text_only", fresh)
    video = _accuracy("videoqa_synth_video_only", fresh)
    assert text < 0.45 and video < 0.45, (text, video)
    assert full > max(text, video) + 0.25, (full, text, video)


def test_demo(tmp_path: Path) -> None:
    from apps.videoqa.cli import demo

    result = demo(tmp_path)
    assert result["pictures"] == 4 and (tmp_path / "val_predictions.json").is_file()
