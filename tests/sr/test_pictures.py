"""Pictures and UX of issue 23/24: ``sr infer --hr --compare`` (bicubic | model | ground truth with
Y-PSNR/SSIM and the degradation in the caption), ``sr eval --save-images``, progress bars, and the
``sr train --data/--out`` spellings (``--hr/--out-dir`` kept as aliases)."""
from __future__ import annotations

import argparse
import io
import re

import numpy as np
import pytest

from apps.sr import cli as sr_cli
from apps.sr.data import bundled_photo, read_image, write_image
from apps.sr.degradations import describe_degradation
from apps.sr.evaluate import EvalPair, bicubic_upscale, evaluate_pairs, psnr_y, ssim_y
from apps.sr.infer import compare_panels


@pytest.fixture
def degraded(run_cli, tmp_path):
    """HR photo crops and their x2 mild LR written by ``sr degrade`` (with degradations.json)."""
    hr = tmp_path / "HR"
    write_image(hr / "cat.png", bundled_photo("chelsea")[40:104, 100:180])
    write_image(hr / "cup.png", bundled_photo("coffee")[100:164, 200:264])
    code, _, err = run_cli(["sr", "degrade", "--hr", hr, "--out", tmp_path / "deg", "--scale", "2", "--kind", "mild"])
    assert code == 0, err
    return hr, tmp_path / "deg" / "LR_mild" / "X2"


def test_infer_with_hr_writes_three_panels_scored_and_captioned(run_cli, tiny_weights, degraded, tmp_path):
    hr, lr_dir = degraded
    out = tmp_path / "out"
    code, stdout, err = run_cli(["sr", "infer", lr_dir, "--scale", "2", "--out", out, "--weights", tiny_weights,
                                 "--hr", hr, "--compare"])
    assert code == 0, err
    sr = read_image(out / "catx2.png").rgb
    truth = read_image(hr / "cat.png").rgb
    picture = read_image(out / "catx2_compare.png").rgb
    h, w = sr.shape[:2]
    band = picture.shape[0] - h
    assert picture.shape[1] == 3 * w + 2 * 8 and band >= 28  # two caption lines: degradation, then labels
    np.testing.assert_array_equal(picture[band:, w + 8:2 * w + 8], sr)  # middle: the model output
    np.testing.assert_array_equal(picture[band:, 2 * w + 16:], truth)  # right: the ground truth
    for x0 in (0, w + 8, 2 * w + 16):  # every panel has dark caption text on white
        assert (picture[band // 2:band, x0:x0 + w] < 0.5).any()
    assert (picture[:band // 2] < 0.5).any() and picture[:band].mean() > 0.7  # the title line
    # the printed numbers are basicsr's Y-PSNR/SSIM of the written output against the ground truth
    sr8, hr8 = np.round(sr * 255).astype(np.uint8), np.round(truth * 255).astype(np.uint8)
    line = next(ln for ln in stdout.splitlines() if "catx2.png" in ln)
    model_psnr, model_ssim = map(float, re.search(r"CRL-SR ([\d.]+) dB / ([\d.]+)", line).groups())
    assert model_psnr == pytest.approx(psnr_y(sr8, hr8, 2), abs=0.006)
    assert model_ssim == pytest.approx(ssim_y(sr8, hr8, 2), abs=6e-5)


def test_degradation_title_comes_from_the_record_or_says_unknown(tmp_path):
    from apps.sr.infer import degradation_title

    info = {"kind": "mild", "sigma_start": 0.8, "sigma_end": 2.2, "noise_level": 5.0, "jpeg_quality": 90.0}
    assert describe_degradation(info, 4) == "x4 mild: blur σ 0.8→2.2, noise σ 5.0, JPEG 90"
    (tmp_path / "degradations.json").write_text('{"images": {"cat": ' + str(info).replace("'", '"') + "}}")
    assert degradation_title(tmp_path / "catx4.png", 4).endswith("x4 mild: blur σ 0.8→2.2, noise σ 5.0, JPEG 90")
    assert "not recorded" in degradation_title(tmp_path / "dogx4.png", 4)


def test_caption_text_is_drawn_and_differs():
    img = np.full((60, 90, 3), 128, np.uint8)
    one = compare_panels([img, img, img], ["a 1.00 dB", "b", "c"], title="x4 mild")
    two = compare_panels([img, img, img], ["a 2.00 dB", "b", "c"], title="x4 mild")
    assert one.shape == two.shape and one.shape[1] == 3 * 90 + 16
    assert not np.array_equal(one, two)
    band = one.shape[0] - 60
    assert (one[:band] < 100).any()


def test_eval_save_images_writes_outputs_and_compare_pictures(run_cli, tiny_weights, degraded, tmp_path):
    hr, lr_dir = degraded
    pics = tmp_path / "pics"
    code, stdout, err = run_cli(["sr", "eval", "--hr", hr, "--lr", lr_dir, "--scale", "2", "--weights", tiny_weights,
                                 "--save-images", pics])
    assert code == 0, err
    assert sorted(p.name for p in pics.glob("*.png")) == ["cat.png", "cat_compare.png", "cup.png", "cup_compare.png"]
    sr = read_image(pics / "cup.png").rgb
    picture = read_image(pics / "cup_compare.png").rgb
    h, w = sr.shape[:2]
    assert picture.shape[1] == 3 * w + 16
    np.testing.assert_array_equal(picture[-h:, w + 8:2 * w + 8], sr)
    # the saved output is the image the printed numbers score
    row = next(ln for ln in stdout.splitlines() if ln.startswith("cup"))
    printed = float(re.search(r"model ([\d.]+) dB", row).group(1))
    truth = np.round(read_image(hr / "cup.png").rgb * 255).astype(np.uint8)
    assert printed == pytest.approx(psnr_y(np.round(sr * 255).astype(np.uint8), truth, 2), abs=0.006)
    # a rerun replaces its own pictures; on-the-fly degradation names the kind in the title
    code, _, err = run_cli(["sr", "eval", "--hr", hr, "--degradation", "blind", "--scale", "2",
                            "--weights", tiny_weights, "--save-images", pics])
    assert code == 0, err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_eval_progress_bar_on_a_terminal_only(monkeypatch):
    pairs = [EvalPair(f"p{i}", np.full((32, 32, 3), 100, np.uint8), np.full((16, 16, 3), 100, np.uint8)) for i in range(3)]
    ups = {"bicubic": lambda lr: bicubic_upscale(lr, 2)}
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    evaluate_pairs(pairs, 2, ups, progress=True)
    assert "sr eval" in terminal.getvalue() and "/3 [" in terminal.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    evaluate_pairs(pairs, 2, ups, progress=True)
    assert pipe.getvalue() == ""  # no bar in logs and pipes


def _train_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser()
    sr_cli.register(root.add_subparsers(dest="app"))
    return root


@pytest.mark.parametrize("spelling", [["--data", "D1", "D2", "--out", "R"], ["--hr", "D1", "D2", "--out-dir", "R"]])
def test_train_data_and_out_with_old_spellings_as_aliases(spelling):
    args = _train_parser().parse_args(["sr", "train", *spelling])
    assert args.hr == ["D1", "D2"] and args.out_dir == "R"


def test_train_runs_with_data_and_out(run_cli, tmp_path):
    data = tmp_path / "DIV2K" / "DIV2K_train_HR"
    write_image(data / "0001.png", bundled_photo("astronaut")[:96, :96])
    out = tmp_path / "run"
    code, _, err = run_cli(["sr", "train", "--data", data.parent, "--out", out, "--steps", "1",
                            "model.scale=2", "model.width=8", "model.invariant=6", "model.enc_blocks=1",
                            "model.body_blocks=1", "model.refine_blocks=1", "data.patch_size=32", "data.length=4",
                            "train.batch_size=2", "train.progress=false", "train.num_workers=0"])
    assert code == 0, err
    assert (out / "sr_model.safetensors").is_file()
