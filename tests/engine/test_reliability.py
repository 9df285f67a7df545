"""Reliability of the shared core: usage lines, overrides anywhere, config validation, resume logs,
orphaned checkpoint temp files, DataLoader worker errors, image decoding errors, the output guard."""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.cli import OneLineParser
from shared.cli_utils import add_config_args, config_from_args
from shared.config import load_config
from shared.data.images import MAX_IMAGE_PIXELS, read_image
from shared.engine import TrainConfig, Trainer
from shared.engine.checkpoint import save_atomic
from shared.errors import CvsuiteError, UsageError, one_line
from shared.guard import LEDGER_NAME, OutputGuard, is_own_output
from tests.badinput import harness

from .tiny_tasks import NoisyRegression, RegressionTask


# ---- CLI: one program name, overrides after any option ------------------------------------------
def test_usage_error_names_the_program_once(run_cli):
    code, _, err = run_cli(["nosuchapp"])
    assert code == 2 and err.count("cvsuite") == 1 and err.startswith("cvsuite: error: argument COMMAND")
    code, _, err = run_cli(["pretrain", "train", "--steps", "x"])
    assert code == 2 and err.startswith("cvsuite: error: pretrain train: argument --steps") and err.count("cvsuite") == 1


def _verb_parser() -> argparse.ArgumentParser:
    top = OneLineParser(prog="cvsuite")
    sub = top.add_subparsers(dest="command", parser_class=OneLineParser)
    verb = sub.add_parser("train")
    add_config_args(verb)
    verb.add_argument("--hr", nargs="+")
    verb.add_argument("--out")
    verb.add_argument("--size", nargs=2, type=int)
    verb.add_argument("--fast", action="store_true")
    return top


@pytest.mark.parametrize("argv,hr,out,overrides", [
    (["train", "--hr", "A", "B", "train.out_dir=X"], ["A", "B"], None, ["train.out_dir=X"]),
    (["train", "a.b=1", "--hr", "A", "c=2", "--fast", "d.e_f=3"], ["A"], None, ["a.b=1", "c=2", "d.e_f=3"]),
    (["train", "--out", "x=y.txt", "--hr", "A"], ["A"], "x=y.txt", []),  # a one-value option keeps its value
    (["train", "--size", "3", "4", "k=v", "--out=o"], None, "o", ["k=v"]),
    (["train", "--ou", "a=b", "c=d"], None, "a=b", ["c=d"]),  # an abbreviated one-value option
])
def test_overrides_may_follow_any_option(argv, hr, out, overrides):
    args = _verb_parser().parse_args(argv)
    assert args.hr == hr and args.out == out and args.overrides == overrides


def test_override_after_multi_value_option_reaches_the_config():
    args = _verb_parser().parse_args(["train", "--hr", "A", "B", "train.max_steps=7", "train.out_dir=runs/z"])
    cfg = config_from_args(TrainConfig, argparse.Namespace(config=None, overrides=[
        o.split("train.", 1)[1] for o in args.overrides]))
    assert cfg.max_steps == 7 and cfg.out_dir == "runs/z"


# ---- config validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("override,message", [
    ("max_steps=1.5", "must be an integer"),
    ("batch_size=2.5", "must be an integer"),
    ("batch_size=0", "batch_size' must be positive"),
    ("batch_size=-4", "batch_size' must be positive"),
    ("max_steps=0", "max_steps' must be positive"),
    ("log_every=0", "log_every' must be positive"),
    ("ckpt_every=-1", "ckpt_every' must be positive"),
    ("num_workers=-1", "num_workers' must be >= 0"),
    ("lr=nan", "finite"),
    ("lr=.inf", "finite"),
    ("lr=0", "lr' must be positive"),
    ("weight_decay=-1e-4", "weight_decay' must be >= 0"),
    ("grad_clip=1e400", "finite"),
    ("min_lr_ratio=2", "min_lr_ratio"),
    ("optimizer=adam", "adamw or sgd"),
    ("seed=true", "must be int"),
])
def test_bad_train_values_are_usage_errors(override, message):
    with pytest.raises(UsageError, match=message):
        load_config(TrainConfig, None, [override])


def test_ints_stay_ints_and_integral_numbers_are_accepted(tmp_path):
    cfg = load_config(TrainConfig, None, ["max_steps=12", "batch_size=4.0", "ckpt_every=1e3", "lr=1"])
    assert (cfg.max_steps, cfg.batch_size, cfg.ckpt_every) == (12, 4, 1000)
    assert all(isinstance(v, int) for v in (cfg.max_steps, cfg.batch_size, cfg.ckpt_every))
    assert isinstance(cfg.lr, float) and cfg.lr == 1.0
    (tmp_path / "c.yaml").write_text("max_steps: 2.5\n")
    with pytest.raises(UsageError, match="max_steps' must be an integer"):
        load_config(TrainConfig, tmp_path / "c.yaml")


def test_binary_config_file_is_one_line_naming_it(tmp_path):
    harness.random_bytes(tmp_path / "c.yaml")
    with pytest.raises(UsageError, match="c.yaml"):
        load_config(TrainConfig, tmp_path / "c.yaml")


# ---- engine ---------------------------------------------------------------------------------------
def _cfg(out_dir: Path, steps: int, **kw) -> TrainConfig:
    base = dict(out_dir=str(out_dir), max_steps=steps, batch_size=8, optimizer="sgd", lr=0.05, ckpt_every=4,
                log_every=1, progress=False, tensorboard=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)


class CrashAt(RegressionTask):
    """Raises in forward at call ``crash_at`` (a kill after the last checkpoint, with steps logged since)."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.calls, self.crash_at = 0, crash_at

    def forward(self, batch):
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt
        return super().forward(batch)


def test_resume_does_not_repeat_logged_steps(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):  # steps 1..6 logged, checkpoint at step 4, killed in step 7
        Trainer(_cfg(tmp_path, 10), CrashAt(7), NoisyRegression()).fit()
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5, 6]
    torch.manual_seed(0)
    Trainer(_cfg(tmp_path, 10, resume=True), RegressionTask(), NoisyRegression()).fit()
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, 11))
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "step" and [int(r[0]) for r in rows[1:]] == list(range(1, 11))


def test_fresh_run_after_an_early_crash_starts_clean_logs(tmp_path):
    with pytest.raises(KeyboardInterrupt):  # killed before the first checkpoint
        Trainer(_cfg(tmp_path, 10, ckpt_every=100), CrashAt(3), NoisyRegression()).fit()
    Trainer(_cfg(tmp_path, 3, ckpt_every=100), RegressionTask(), NoisyRegression()).fit()  # no --force needed
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3]


def test_orphaned_checkpoint_temp_files_are_removed(tmp_path):
    torch.manual_seed(0)
    Trainer(_cfg(tmp_path, 4), RegressionTask(), NoisyRegression()).fit()
    orphan = tmp_path / "checkpoints" / ".last.pt.abc123.tmp"  # what a kill inside save_atomic leaves
    orphan.write_bytes(b"half a checkpoint")
    orphan_weights = tmp_path / ".model.safetensors.tmp"  # a kill inside save_safetensors
    orphan_weights.write_bytes(b"half the weights")
    keep = tmp_path / "checkpoints" / "notes.tmp"
    keep.write_text("not ours")
    Trainer(_cfg(tmp_path, 6, resume=True), RegressionTask(), NoisyRegression()).fit()
    assert not orphan.exists() and not orphan_weights.exists() and keep.exists()
    assert not list((tmp_path / "checkpoints").glob(".last.pt.*.tmp"))


class FailingData(NoisyRegression):
    def __getitem__(self, i):
        if i == 5:
            raise CvsuiteError("cannot read image /data/bad.png: broken")
        return super().__getitem__(i)


@pytest.mark.parametrize("workers", [0, 1])
def test_worker_errors_are_the_same_one_line(tmp_path, workers):
    with pytest.raises(CvsuiteError) as info:
        Trainer(_cfg(tmp_path, 50, num_workers=workers), RegressionTask(), FailingData()).fit()
    assert str(info.value) == "cannot read image /data/bad.png: broken"


def test_one_line_unwraps_torch_worker_messages():
    wrapped = CvsuiteError("Caught CvsuiteError in DataLoader worker process 0.\nOriginal Traceback (most recent "
                           "call last):\n  File \"x.py\", line 1, in f\n    g()\nshared.errors.CvsuiteError: "
                           "x.png: cannot decode image (truncated)\n")
    assert one_line(wrapped) == "x.png: cannot decode image (truncated)"
    assert one_line(ValueError("a\n\nb")) == "a | b"


class NeedsEvenBatch(RegressionTask):
    def check_setup(self, cfg, world_size):
        if cfg.batch_size * world_size % 2:
            raise UsageError("batch must be even")


def test_task_check_setup_runs_before_training(tmp_path):
    with pytest.raises(UsageError, match="batch must be even"):
        Trainer(_cfg(tmp_path, 2, batch_size=3), NeedsEvenBatch(), NoisyRegression())
    assert not (tmp_path / "metrics.jsonl").exists()


def test_trainer_claims_outputs_through_the_guard(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(UsageError, match="inside the input folder"):
        Trainer(_cfg(data / "run", 2), RegressionTask(), NoisyRegression(), guard=OutputGuard([data])).fit()
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"someone else's file")
    with pytest.raises(UsageError, match="pass --force"):
        Trainer(_cfg(run, 2), RegressionTask(), NoisyRegression()).fit()
    assert (run / "model.safetensors").read_bytes() == b"someone else's file"
    Trainer(_cfg(run, 2), RegressionTask(), NoisyRegression(), guard=OutputGuard(force=True)).fit()
    assert is_own_output(run / "model.safetensors") and is_own_output(run / "config.yaml")
    assert (run / LEDGER_NAME).is_file()


def test_guard_allow_existing_and_cached_digests(tmp_path):
    out = tmp_path / "o.txt"
    out.write_text("foreign")
    guard = OutputGuard([tmp_path / "in.txt"])
    with pytest.raises(UsageError, match="--force"):
        guard.file(out)
    guard.file(out, allow_existing=True)
    with pytest.raises(UsageError, match="is the input"):
        guard.file(tmp_path / "in.txt", allow_existing=True)
    guard.record()
    assert is_own_output(out)
    time.sleep(0.01)
    out.write_text("changed by us")  # a later record() re-hashes the changed file
    guard.record()
    assert is_own_output(out)


# ---- images ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,message", [
    (harness.zero_byte, "empty file"),
    (harness.garbage, "cannot decode"),
    (harness.random_bytes, "cannot decode"),
    (harness.truncated_jpeg, "cannot decode"),
    (harness.corrupt_jpeg, "Corrupt JPEG data"),
    (harness.truncated_png, "cannot decode"),
    (harness.corrupt_png, "libpng error"),
    (harness.huge_header_png, "header claims 10,000,000,000 pixels"),
    (harness.huge_header_jpeg, "header claims"),
], ids=lambda v: getattr(v, "__name__", None))
def test_damaged_images_are_one_error_naming_the_file(tmp_path, capfd, make, message):
    suffix = ".jpg" if "jpeg" in make.__name__ else ".png"
    path = make(tmp_path / f"bad{suffix}")
    started = time.perf_counter()
    with pytest.raises(CvsuiteError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert time.perf_counter() - started < 2.0  # the huge header is refused before decoding
    assert capfd.readouterr().err == ""  # nothing from libjpeg / libpng / OpenCV reaches the terminal


def test_sixteen_bit_grey_keeps_its_range(tmp_path):
    path = harness.grey16_png(tmp_path / "g.png")
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    image = read_image(path)
    assert image.bit_depth == 16 and image.grey
    np.testing.assert_array_equal(np.round(image.rgb[..., 0] * 65535).astype(np.uint16), raw)
    assert MAX_IMAGE_PIXELS < 100_000 * 100_000


def test_write_image_errors_are_one_line(tmp_path):
    from shared.data.images import write_image

    with pytest.raises(CvsuiteError, match=r"x\.nosuchformat: cannot write image"):
        write_image(tmp_path / "x.nosuchformat", np.zeros((4, 4, 3), np.uint8))
