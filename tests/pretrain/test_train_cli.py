"""Each method trains through the shared Trainer; the eval / infer / train CLI and its errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from apps.pretrain.model import EncoderInfo, ModelConfig, Encoder, load_encoder, save_encoder
from apps.pretrain.train import PretrainConfig, build_task, prepare, run_training
from shared.config import load_config
from shared.weights import load_state_dict

TINY = ["train.max_steps=3", "train.batch_size=16", "train.progress=false", "train.tensorboard=false",
        "train.log_every=1", "model.width=4", "model.proj_hidden=16", "model.proj_dim=8", "model.pred_hidden=16",
        "wmse.w_size=16", "wmse.num_views=3", "moco.queue_size=32", "adco.bank_size=48", "evaluate=false"]


@pytest.mark.parametrize("method", ["simclr", "moco", "wmse", "adco", "hcl", "byol"])
def test_three_steps_change_weights(method, tmp_path):
    cfg = load_config(PretrainConfig, None, [f"method={method}", f"train.out_dir={tmp_path}", *TINY])
    prepared, _ = prepare(cfg)
    before = {k: v.clone() for k, v in build_task(prepared, prepared.in_channels).state_dict().items()}
    summary = run_training(cfg)
    assert summary["step"] == 3 and np.isfinite(summary["metrics"]["loss"])
    after = load_state_dict(tmp_path / "checkpoints" / "last.pt")
    changed = [k for k in before if k.startswith("encoder.backbone") and not torch.equal(before[k], after[k])]
    assert any(k.endswith("weight") for k in changed), "the backbone did not train"
    if method == "moco":  # queue received 3 steps x 16 keys, key encoder moved
        assert not torch.equal(before["queue.queue"], after["queue.queue"]) and int(after["queue.ptr"]) == 48 % 32
    if method == "adco":  # bank filled from keys, then ascended
        assert int(after["bank.filled"]) == 48 and float(after["bank.velocity"].abs().sum()) > 0
    if method in ("moco", "adco", "byol"):  # EMA targets follow the online net but lag behind it
        prefix = "target" if method == "byol" else "key_encoder"
        key = "backbone.features.0.weight"
        assert not torch.equal(after[f"{prefix}.{key}"], before[f"{prefix}.{key}"])
        assert not torch.equal(after[f"{prefix}.{key}"], after[f"encoder.{key}"])
    backbone, info = load_encoder(tmp_path / "encoder.safetensors")
    assert info.method == method and info.in_channels == 1 and info.image_size == 16
    torch.testing.assert_close(backbone.state_dict()["features.0.weight"], after["encoder.backbone.features.0.weight"])
    # the Trainer's model.safetensors also loads, through the config.yaml saved beside it
    backbone2, info2 = load_encoder(tmp_path / "model.safetensors")
    assert info2.mean == info.mean


def _tiny_encoder(path, channels=1, size=16):
    torch.manual_seed(0)
    encoder = Encoder(ModelConfig(width=4, proj_hidden=8, proj_dim=4), channels)
    info = EncoderInfo("small_cnn", 4, False, channels, size, [0.3] * channels, [0.4] * channels, method="simclr")
    save_encoder(encoder, info, path)


def test_eval_cli_on_tiny_checkpoint(run_cli, tmp_path):
    _tiny_encoder(tmp_path / "enc.safetensors")
    code, out, err = run_cli(["pretrain", "eval", "--weights", tmp_path / "enc.safetensors", "--data", "digits",
                              "--json", tmp_path / "r.json", "--baseline"])
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    for key in ("knn5", "knn200", "linear", "linear_10label", "linear_10label_std"):
        assert 0.0 <= result[key] <= 1.0 and 0.0 <= result["random_init"][key] <= 1.0
    assert result["test_images"] == 540 and "10-label" in out


def test_train_and_infer_cli_on_image_folder(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 4)):
        for cls in ("a", "b"):
            for i in range(count):
                folder = tmp_path / "data" / split / cls
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "run"
    code, stdout, err = run_cli(["pretrain", "train", "--method", "simclr", "--data", tmp_path / "data",
                                 "--out", out, "--steps", "2", "--batch-size", "8", "augment.preset=natural",
                                 "model.width=4", "model.proj_dim=8", "model.proj_hidden=16", "train.progress=false"])
    assert code == 0, err
    assert (out / "encoder.safetensors").is_file() and "kNN-5" in stdout  # evaluated on test/
    code, stdout, err = run_cli(["pretrain", "infer", "--weights", out / "encoder.safetensors",
                                 "--input", tmp_path / "data" / "test", "--out", tmp_path / "f.npy"])
    assert code == 0, err
    features = np.load(tmp_path / "f.npy")
    assert features.shape == (8, 16) and np.isfinite(features).all()
    assert (tmp_path / "f.files.txt").read_text().split() == [f"{c}/{i}.png" for c in "ab" for i in range(4)]


@pytest.mark.parametrize("args, code, needle", [
    (["pretrain", "train", "--method", "simclr", "--data", "/no/such/dir"], 1, "data directory not found: /no/such/dir"),
    (["pretrain", "train", "--method", "swav", "--data", "digits"], 2, "unknown method 'swav'"),
    (["pretrain", "eval", "--weights", "/no/such.safetensors"], 1, "weights file not found"),
    (["pretrain", "train", "--data", "digits", "wmse.w_sise=3"], 2, "unknown config key"),
])
def test_bad_input_gives_one_line(run_cli, args, code, needle):
    exit_code, out, err = run_cli(args)
    assert exit_code == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", ["adco", "byol"])
def test_resume_is_exact(method, tmp_path, monkeypatch):
    """Queue/bank/EMA state lives in the checkpoint: a run killed after step 2 and resumed == a straight run."""
    from apps.pretrain import train as train_module

    base = [f"method={method}", *[o for o in TINY if not o.startswith("train.max_steps")], "adco.bank_size=24",
            "train.max_steps=4", "train.ckpt_every=2", "train.warmup_steps=1"]
    run_training(load_config(PretrainConfig, None, [*base, f"train.out_dir={tmp_path / 'a'}"]))
    task_class = train_module.TASKS[method]
    original = task_class.on_step_end

    def crash_at_third_step(self, step, outputs):
        if step == 2:
            raise _Interrupt
        original(self, step, outputs)

    monkeypatch.setattr(task_class, "on_step_end", crash_at_third_step)
    with pytest.raises(_Interrupt):
        run_training(load_config(PretrainConfig, None, [*base, f"train.out_dir={tmp_path / 'b'}"]))
    monkeypatch.setattr(task_class, "on_step_end", original)
    run_training(load_config(PretrainConfig, None, [*base, f"train.out_dir={tmp_path / 'b'}", "train.resume=true"]))
    straight = load_state_dict(tmp_path / "a" / "checkpoints" / "last.pt")
    resumed = load_state_dict(tmp_path / "b" / "checkpoints" / "last.pt")
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0, msg=key)
