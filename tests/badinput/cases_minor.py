"""The minor items of issue 25 (item 11), each failing on the code before it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .harness import BadCase, good_image, text_file


def sr_degrade_same_stem(t: Path) -> list:
    """a.png and a.jpg both wrote HR/a.png (the second silently replaced the first)."""
    folder = t / "in" / "H"
    good_image(folder / "a.png", size=(32, 32), seed=1)
    good_image(folder / "a.jpg", size=(32, 32), seed=2)
    return ["sr", "degrade", "--hr", folder, "--out", t / "out", "--scale", "2", "--kind", "bicubic"]


def hand_eval_plot_is_json(t: Path) -> list:
    """--plot equal to --json: the scores were written, then the plot failed over them."""
    from .cases_guard import _hand_pred

    gt, pred = _hand_pred(t)
    out = t / "out" / "s.json"
    return ["hand", "eval", "--gt", gt, "--pred", pred, "--json", out, "--plot", out]


def points_pts_with_count(t: Path) -> list:
    """A .pts file whose first line is its point count (a common layout) was refused."""
    rows = np.random.default_rng(0).normal(size=(40, 3))
    path = text_file(t / "in" / "c.pts", ["40", *(" ".join(f"{v:.4f}" for v in r) for r in rows)])
    return ["points", "infer", path, "--out", t / "out", "--render", "matplotlib"]


def _labels_written(t: Path) -> None:
    assert len((t / "out" / "c_labels.txt").read_text().split()) == 40


def sr_eval_niqe_small(t: Path) -> list:
    """NIQE on images too small for its 96-pixel blocks: a bare "RuntimeError: min(): ..." before."""
    from .cases_sr import eval_args

    return eval_args(t, "--niqe")


def mot_synth_rerun(t: Path) -> list:
    """mot synth kept no ledger: the same command run twice was refused the second time."""
    from shared.cli import main

    argv = ["mot", "synth", "--out", str(t / "out"), "--seqs", "1", "--length", "3", "--width", "64", "--height", "64"]
    assert main(argv) == 0
    return argv


def pretrain_eval_cuda_without_gpu(t: Path) -> list:
    from .cases_pretrain import encoder

    return ["pretrain", "eval", "--weights", encoder(t / "in" / "e.safetensors", channels=1), "--data", "digits",
            "--device", "cuda"]


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


CASES = [
    BadCase("minor-sr-degrade-same-stem", sr_degrade_same_stem, exit_code=2, match="a.jpg"),
    BadCase("minor-hand-eval-plot-is-json", hand_eval_plot_is_json, exit_code=2, match="same file"),
    BadCase("minor-points-pts-with-count", points_pts_with_count, exit_code=0, check=_labels_written),
    BadCase("minor-sr-eval-niqe-small-images", sr_eval_niqe_small, exit_code=1, match="--niqe"),
    BadCase("minor-mot-synth-rerun-without-force", mot_synth_rerun, exit_code=0),
] + ([BadCase("minor-pretrain-eval-cuda-without-gpu", pretrain_eval_cuda_without_gpu, exit_code=2,
              match="no usable CUDA GPU")] if _no_gpu() else [])
