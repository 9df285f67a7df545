"""pretrain reliability: W-MSE batch check under DDP, 16-bit images, outputs never onto inputs."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from apps.pretrain.data import FileImageSet
from apps.pretrain.model import Encoder, EncoderInfo, ModelConfig, save_encoder
from apps.pretrain.train import PretrainConfig, WMSETask
from shared.config import load_config
from shared.errors import UsageError
from shared.testing import _free_port
from tests.badinput import harness

WMSE_TINY = ["method=wmse", "train.max_steps=2", "train.progress=false", "train.tensorboard=false",
             "train.log_every=1", "model.width=4", "model.proj_hidden=16", "model.proj_dim=8",
             "wmse.w_size=128", "wmse.num_views=2", "evaluate=false"]


def _wmse_task(overrides: list[str]) -> tuple[PretrainConfig, WMSETask]:
    cfg = load_config(PretrainConfig, None, [*WMSE_TINY, *overrides])
    return cfg, WMSETask(cfg, 1)


def test_wmse_check_counts_the_batch_the_loss_really_whitens():
    cfg, task = _wmse_task(["train.batch_size=64"])
    task.loss_fn.gather_distributed = True  # as built inside a 2-process group: 64 x 2 = 128 whitened
    task.check_setup(cfg.train, world_size=2)
    with pytest.raises(UsageError, match=r"train.batch_size=64 x 3 processes = 192 .*w_size=128"):
        task.check_setup(cfg.train, world_size=3)
    task.loss_fn.gather_distributed = False  # one process: only 64 whitened
    with pytest.raises(UsageError, match=r"whitens train.batch_size=64 samples per view.*w_size=128"):
        task.check_setup(cfg.train, world_size=1)
    cfg, task = _wmse_task(["train.batch_size=128", "model.proj_dim=80"])
    with pytest.raises(UsageError, match="2 x model.proj_dim"):
        task.check_setup(cfg.train, world_size=1)


def _torchrun_like_worker(rank: int, world: int, port: int, out_dir: str, result_dir: str) -> None:
    """Only the environment torchrun sets: the app itself must join the group (before building the loss)."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    from apps.pretrain.train import run_training

    outcome = {}
    try:
        for name, batch in (("b48", 48), ("b64", 64), ("foreign_encoder", 64), ("foreign_csv", 64)):
            cfg = load_config(PretrainConfig, None, [*WMSE_TINY, f"train.batch_size={batch}", "augment.size=8",
                                                     f"data={out_dir}/images", "data_mean=[0.5,0.5,0.5]",
                                                     "data_std=[0.3,0.3,0.3]", f"train.out_dir={out_dir}/{name}"])
            try:
                outcome[name] = {"step": run_training(cfg)["step"], "error": ""}
            except UsageError as exc:
                outcome[name] = {"step": -1, "error": str(exc)}
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    with open(os.path.join(result_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(outcome, handle)


def test_wmse_under_two_processes_whitens_the_gathered_batch(tmp_path):
    for i in range(130):  # a flat folder of tiny images (no scikit-learn import in the workers)
        harness.good_image(tmp_path / "images" / f"{i:03d}.png", size=(8, 8), seed=i)
    harness.text_file(tmp_path / "foreign_encoder" / "encoder.safetensors", ["not ours"])
    harness.text_file(tmp_path / "foreign_csv" / "metrics.csv", ["not ours"])
    with tempfile.TemporaryDirectory() as result_dir:
        mp.start_processes(_torchrun_like_worker, args=(2, _free_port(), str(tmp_path), result_dir), nprocs=2,
                           join=True, start_method="spawn")
        results = [json.load(open(os.path.join(result_dir, f"rank{r}.json"))) for r in range(2)]
    # 48 x 2 = 96 is refused on every rank before the first step
    assert all("48 x 2 processes = 96" in r["b48"]["error"] for r in results), results
    assert not (tmp_path / "b48" / "metrics.jsonl").exists()
    # 64 per process x 2 = 128 = w_size: trains (the loss gathers over ranks). Built before the group
    # existed, the loss whitened 64 per rank and stopped at step 1 ("per-view batch 64 ... w_size=128").
    assert [r["b64"]["step"] for r in results] == [2, 2], results
    # a foreign file refused on rank 0 stops rank 1 too (with the same line) instead of leaving it
    # waiting forever in its first collective
    for name in ("foreign_encoder", "foreign_csv"):
        assert all("--force" in r[name]["error"] for r in results), results
        assert results[0][name]["error"] == results[1][name]["error"]


def test_sixteen_bit_grey_png_keeps_its_range_in_pretrain_images(tmp_path):
    path = harness.grey16_png(tmp_path / "g16.png", size=(20, 24))
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535.0
    grey = FileImageSet([path], np.array([-1]), [], channels=1).image(0)
    rgb = FileImageSet([path], np.array([-1]), [], channels=3).image(0)
    assert grey.shape == (1, 20, 24) and rgb.shape == (3, 20, 24)
    np.testing.assert_allclose(grey[0].numpy(), raw, atol=1e-6)  # 8-bit clipping sent 99.6 % to 1.0
    np.testing.assert_allclose(rgb[1].numpy(), raw, atol=1e-6)
    assert float((grey >= 0.999).float().mean()) < 0.01


def _encoder(path) -> None:
    torch.manual_seed(0)
    encoder = Encoder(ModelConfig(width=4, proj_hidden=8, proj_dim=4), 3)
    save_encoder(encoder, EncoderInfo("small_cnn", 4, False, 3, 16, [0.5] * 3, [0.25] * 3, method="simclr"), path)


def test_infer_writes_through_the_guard_and_reruns(run_cli, tmp_path):
    _encoder(tmp_path / "e.safetensors")
    for i in range(3):
        harness.good_image(tmp_path / "imgs" / f"{i}.png", size=(20, 20), seed=i)
    args = ["pretrain", "infer", "--weights", tmp_path / "e.safetensors", "--input", tmp_path / "imgs"]
    code, _, err = run_cli([*args, "--out", tmp_path / "f.npy"])
    assert code == 0, err
    assert np.load(tmp_path / "f.npy").shape[0] == 3
    code, _, err = run_cli([*args, "--out", tmp_path / "f.npy"])  # our own output: a re-run may replace it
    assert code == 0, err
    (tmp_path / "f.npy").write_bytes(b"edited by hand")
    code, _, err = run_cli([*args, "--out", tmp_path / "f.npy"])
    assert code == 2 and "--force" in err and (tmp_path / "f.npy").read_bytes() == b"edited by hand"
    code, _, err = run_cli([*args, "--out", tmp_path / "f.npy", "--force"])
    assert code == 0, err
    weights_before = (tmp_path / "e.safetensors").read_bytes()
    code, _, err = run_cli([*args, "--out", tmp_path / "e.safetensors", "--force"])  # --force never covers inputs
    assert code == 2 and "is the input" in err
    assert (tmp_path / "e.safetensors").read_bytes() == weights_before
