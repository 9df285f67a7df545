"""``cvsuite sr degrade|eval|train`` end to end on tiny real-photo folders."""
from __future__ import annotations

import json

import numpy as np
import pytest

from apps.sr.data import SRTrainDataset, bundled_photo, read_image, write_image
from apps.sr.model import SR_ARCHS, build_model, count_parameters
from apps.sr.train import ModelConfig, model_kwargs


@pytest.fixture
def hr_dir(tmp_path):
    folder = tmp_path / "Set2" / "HR"
    write_image(folder / "cat.png", bundled_photo("chelsea")[:50, :62])
    write_image(folder / "cup.png", bundled_photo("coffee")[100:148, 200:260])
    return folder


def test_degrade_writes_standard_layout_deterministically(run_cli, hr_dir, tmp_path):
    out1, out2 = tmp_path / "d1", tmp_path / "d2"
    for out in (out1, out2):
        code, _, err = run_cli(["sr", "degrade", "--hr", hr_dir, "--out", out, "--scale", "2",
                                "--kind", "spatially-variant", "--seed", "5", "--maps"])
        assert code == 0, err
    lr = out1 / "LR_spatially-variant" / "X2" / "catx2.png"
    assert read_image(out1 / "HR" / "cat.png").rgb.shape == (50, 62, 3)
    assert read_image(lr).rgb.shape == (25, 31, 3)
    assert lr.read_bytes() == (out2 / "LR_spatially-variant" / "X2" / "catx2.png").read_bytes()
    maps = np.load(out1 / "maps_spatially-variant" / "X2" / "catx2.npz")
    assert set(maps.files) == {"sigma_major", "sigma_minor", "theta", "noise_level"}
    assert maps["noise_level"].shape == (25, 31)
    info = json.loads((out1 / "LR_spatially-variant" / "X2" / "degradations.json").read_text())
    assert info["seed"] == 5 and set(info["images"]) == {"cat", "cup"}
    # writing into the input folder is refused
    code, _, err = run_cli(["sr", "degrade", "--hr", hr_dir, "--out", hr_dir.parent, "--scale", "2"])
    assert code == 2 and "input folder" in err


def test_eval_from_folders_and_on_the_fly(run_cli, hr_dir, tmp_path, tiny_weights):
    out = tmp_path / "bench"
    assert run_cli(["sr", "degrade", "--hr", hr_dir, "--out", out, "--scale", "2", "--kind", "blind"])[0] == 0
    js1, js2 = tmp_path / "a.json", tmp_path / "b.json"
    code, stdout, err = run_cli(["sr", "eval", "--hr", out / "HR", "--lr", out / "LR_blind", "--scale", "2",
                                 "--weights", tiny_weights, "--json", js1])
    assert code == 0, err
    assert "mean" in stdout
    code, _, err = run_cli(["sr", "eval", "--hr", hr_dir, "--degradation", "blind", "--seed", "0", "--scale", "2",
                            "--weights", tiny_weights, "--json", js2])
    assert code == 0, err
    a, b = json.loads(js1.read_text()), json.loads(js2.read_text())
    assert a["images"] == 2 and [r["image"] for r in a["per_image"]] == ["cat", "cup"]
    for key in ("bicubic_psnr", "model_psnr", "bicubic_ssim", "model_ssim"):  # same seed: same numbers
        assert a["mean"][key] == pytest.approx(b["mean"][key], abs=1e-9)
    code, _, err = run_cli(["sr", "eval", "--hr", hr_dir, "--scale", "2", "--weights", tiny_weights])
    assert code == 2 and "exactly one of" in err


@pytest.mark.parametrize("contrastive", [True, False])
def test_train_runs_resumes_and_loads(run_cli, hr_dir, tmp_path, contrastive):
    out = tmp_path / "run"
    args = ["sr", "train", "--hr", hr_dir, "--out-dir", out, "--steps", "2",
            "model.scale=2", "model.width=8", "model.invariant=6", "model.enc_blocks=1", "model.body_blocks=1",
            "model.refine_blocks=1", "data.patch_size=32", "data.length=8", "train.batch_size=2",
            "train.progress=false", "train.ckpt_every=1", "loss.warmup_steps=1"]
    if not contrastive:
        args.append("--no-contrastive")
    code, _, err = run_cli(args)
    assert code == 0, err
    assert (out / "sr_model.safetensors").is_file() and (out / "checkpoints" / "last.pt").is_file()
    code, _, err = run_cli(args[:7] + ["3"] + args[8:] + ["--resume"])
    assert code == 0, err
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3
    img = tmp_path / "x.png"
    write_image(img, bundled_photo("chelsea")[:16, :16])
    code, _, err = run_cli(["sr", "infer", img, "--scale", "2", "--out", tmp_path / "o",
                            "--weights", out / "sr_model.safetensors"])
    assert code == 0, err


def test_shipped_size_and_registry():
    assert count_parameters(build_model("crlsr", **model_kwargs(ModelConfig()))) < 1_000_000
    assert "crlsr" in SR_ARCHS.names()


def test_hr_only_dataset_patches(hr_dir):
    imgs = [bundled_photo("chelsea")[:60, :60]]
    ds = SRTrainDataset(imgs, 2, 16, length=4)
    item = ds[0]
    assert item["hr"].shape == (3, 16, 16) and item["lr"].shape == (3, 8, 8)
    assert 0 <= float(item["lr"].min()) and float(item["lr"].max()) <= 1
