"""Bad input for ``cvsuite sr degrade|train|infer|eval`` (issue 12 rows 5, 9, 14, 16, 18 and friends).

Each case writes a tiny x2 weight file (random, with arch metadata) and small images under
``tmp/"in"``; outputs go under ``tmp/"out"``.
"""
from __future__ import annotations

from pathlib import Path

from .harness import BadCase, good_image, huge_header_png, truncated_jpeg

TINY = {"scale": 2, "width": 8, "invariant": 6, "enc_blocks": 1, "body_blocks": 1, "refine_blocks": 1}
TINY_TRAIN = ["model.scale=2", "model.width=8", "model.invariant=6", "model.enc_blocks=1", "model.body_blocks=1",
              "model.refine_blocks=1", "data.patch_size=32", "data.length=8", "train.batch_size=2",
              "train.progress=false", "train.num_workers=0", "train.tensorboard=false"]


def tiny_weights(tmp: Path) -> Path:
    import torch

    from apps.sr.model import build_model, model_metadata
    from shared.weights import save_safetensors

    path = tmp / "in" / "tiny_x2.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_safetensors(build_model("crlsr", **TINY).state_dict(), path, model_metadata("crlsr", TINY))
    return path


def hr_folder(tmp: Path) -> Path:
    folder = tmp / "in" / "H"
    good_image(folder / "a.png", size=(64, 64), seed=1)
    good_image(folder / "b.png", size=(64, 80), seed=2)
    return folder


def infer(tmp: Path, inputs: list, *extra) -> list:
    return ["sr", "infer", *inputs, "--scale", "2", "--weights", tiny_weights(tmp), "--out", tmp / "out", *extra]


def eval_args(tmp: Path, *extra) -> list:
    return ["sr", "eval", "--hr", hr_folder(tmp), "--degradation", "bicubic", "--scale", "2",
            "--weights", tiny_weights(tmp), *extra]


def train_args(tmp: Path, hr: Path) -> list:
    return ["sr", "train", "--hr", hr, "--out-dir", tmp / "out" / "run", "--steps", "1", *TINY_TRAIN]


def with_tiny_hr(tmp: Path) -> Path:  # row 16: a 1x1 HR image among good ones
    folder = hr_folder(tmp)
    good_image(folder / "tiny.png", size=(1, 1))
    return folder


def with_truncated_hr(tmp: Path) -> Path:  # row 9: a truncated JPEG among good ones
    folder = hr_folder(tmp)
    truncated_jpeg(folder / "cut.jpg")
    return folder


def batch_with_huge_header(tmp: Path) -> Path:  # row 18: sorts first, the batch must go on
    folder = tmp / "in" / "D"
    huge_header_png(folder / "a_huge.png")
    good_image(folder / "b.png", size=(20, 24))
    return folder


def batch_with_truncated(tmp: Path) -> Path:
    folder = tmp / "in" / "D"
    truncated_jpeg(folder / "a_cut.jpg")
    good_image(folder / "b.png", size=(20, 24))
    return folder


CASES = [
    # row 5: --json pointed at an HR input image
    BadCase("sr-eval-json-onto-hr-image", lambda t: eval_args(t, "--json", t / "in" / "H" / "a.png"),
            exit_code=2, match="a.png"),
    BadCase("sr-eval-json-onto-weights", lambda t: eval_args(t, "--json", t / "in" / "tiny_x2.safetensors"),
            exit_code=2, match="tiny_x2.safetensors"),
    # row 14 and the other tiling options
    BadCase("sr-infer-tile-negative", lambda t: infer(t, [good_image(t / "in" / "a.png")], "--tile", "-5"),
            exit_code=2, match="--tile"),
    BadCase("sr-eval-tile-negative", lambda t: eval_args(t, "--tile", "-5"), exit_code=2, match="--tile"),
    BadCase("sr-infer-tile-too-small", lambda t: infer(t, [good_image(t / "in" / "a.png")], "--tile", "3"),
            exit_code=2, match="--tile"),
    BadCase("sr-infer-overlap-negative", lambda t: infer(t, [good_image(t / "in" / "a.png")], "--overlap", "-1"),
            exit_code=2, match="--overlap"),
    # row 16: a 1x1 HR image in sr train
    BadCase("sr-train-1x1-hr-image", lambda t: train_args(t, with_tiny_hr(t)), exit_code=1, match="tiny.png"),
    # row 18: a huge-header PNG first in a folder: one line naming it, the batch goes on, exit 1
    BadCase("sr-infer-huge-header-batch", lambda t: infer(t, [batch_with_huge_header(t)]), exit_code=1,
            match="a_huge.png"),
    # row 9: truncated JPEGs are refused by every sr verb (infer: the batch goes on)
    BadCase("sr-infer-truncated-jpeg-batch", lambda t: infer(t, [batch_with_truncated(t)]), exit_code=1,
            match="a_cut.jpg"),
    BadCase("sr-degrade-truncated-jpeg", lambda t: ["sr", "degrade", "--hr", with_truncated_hr(t), "--out",
                                                    t / "out", "--scale", "2", "--kind", "bicubic"],
            exit_code=1, match="cut.jpg"),
    BadCase("sr-eval-truncated-jpeg", lambda t: ["sr", "eval", "--hr", with_truncated_hr(t), "--degradation",
                                                 "bicubic", "--scale", "2", "--weights", tiny_weights(t)],
            exit_code=1, match="cut.jpg"),
    BadCase("sr-train-truncated-jpeg", lambda t: train_args(t, with_truncated_hr(t)), exit_code=1, match="cut.jpg"),
    # outputs pointed at inputs
    BadCase("sr-infer-out-is-input-folder", lambda t: ["sr", "infer", batch_with_truncated(t), "--scale", "2",
                                                       "--weights", tiny_weights(t), "--out", t / "in" / "D"],
            exit_code=2, match="input"),
    BadCase("sr-degrade-out-inside-hr", lambda t: ["sr", "degrade", "--hr", hr_folder(t), "--out",
                                                   t / "in" / "H" / "sub", "--scale", "2"], exit_code=2, match="input"),
    BadCase("sr-train-out-dir-inside-hr", lambda t: ["sr", "train", "--hr", hr_folder(t), "--out-dir",
                                                     t / "in" / "H" / "run", "--steps", "1", *TINY_TRAIN],
            exit_code=2, match="input"),
    # issue 23: the new options (new spellings --data/--out of sr train, --hr/--colour-lock, --save-images)
    BadCase("sr-train-out-inside-data", lambda t: ["sr", "train", "--data", hr_folder(t), "--out",
                                                   t / "in" / "H" / "run", "--steps", "1", *TINY_TRAIN],
            exit_code=2, match="input"),
    BadCase("sr-infer-colour-lock-negative", lambda t: infer(t, [good_image(t / "in" / "a.png")], "--colour-lock", "-1"),
            exit_code=2, match="--colour-lock"),
    BadCase("sr-eval-colour-lock-too-large", lambda t: eval_args(t, "--colour-lock", "1000"), exit_code=2,
            match="--colour-lock"),
    BadCase("sr-infer-hr-missing", lambda t: infer(t, [good_image(t / "in" / "a.png")], "--hr", t / "in" / "nope"),
            exit_code=2, match="--hr"),
    BadCase("sr-infer-hr-without-partner", lambda t: infer(t, [good_image(t / "in" / "z.png")], "--hr",
                                                          hr_folder(t), "--compare"),
            exit_code=1, match="no ground truth"),
    BadCase("sr-infer-hr-smaller-than-output", lambda t: infer(t, [good_image(t / "in" / "a.png")], "--hr",
                                                              hr_folder(t), "--compare"),
            exit_code=1, match="smaller than the x2 output"),
    BadCase("sr-eval-save-images-inside-hr", lambda t: eval_args(t, "--save-images", t / "in" / "H" / "pics"),
            exit_code=2, match="input"),
    # stage 2 (--init-from): a missing file, another network's weights
    BadCase("sr-train-init-from-missing", lambda t: [*train_args(t, hr_folder(t)), "--init-from", t / "in" / "nope.safetensors"],
            exit_code=1, match="nope.safetensors"),
    BadCase("sr-train-init-from-other-network", lambda t: [*train_args(t, hr_folder(t)), "--init-from", tiny_weights(t),
                                                           "model.width=12"],
            exit_code=1, match="shape mismatch"),
]
