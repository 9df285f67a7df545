"""``cvsuite pretrain {train,eval,infer}`` on bad input (issue 12 rows 6, 8, 9, 17 and the guard rules).

Each case notes what the code before the fix did with it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .harness import (BadCase, corrupt_jpeg, corrupt_png, garbage, good_image, grey16_png, huge_header_png,
                      random_bytes, symlink, text_file, truncated_jpeg, truncated_png, zero_byte)

QUIET = ["train.progress=false", "train.tensorboard=false"]


def encoder(path: Path, channels: int = 3) -> Path:
    """A tiny real encoder file (what ``pretrain train`` writes), so a clobbering command really clobbers."""
    import torch

    from apps.pretrain.model import Encoder, EncoderInfo, ModelConfig, save_encoder

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = EncoderInfo("small_cnn", 4, False, channels, 16, [0.5] * channels, [0.25] * channels, method="simclr")
    save_encoder(Encoder(ModelConfig(width=4, proj_hidden=8, proj_dim=4), channels), info, path)
    return path


def images(folder: Path, count: int = 4, bad: tuple[str, object] | None = None) -> Path:
    """``count`` good PNGs in ``folder`` and optionally one bad file made by ``bad = (name, maker)``."""
    for i in range(count):
        good_image(folder / f"{i:02d}.png", size=(20, 20), seed=i)
    if bad is not None:
        name, maker = bad
        maker(folder / name)  # type: ignore[operator]
    return folder


def _infer(t: Path, bad_name: str, maker) -> list:
    return ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors"),
            "--input", images(t / "in" / "imgs", 2, (bad_name, maker)), "--out", t / "out" / "f.npy"]


def _sixteen_bit_features_are_exact(t: Path) -> None:
    """Row 17: the features equal those of the exact 16-bit values (before: 99.6 % of pixels clipped to 255)."""
    import cv2
    import torch

    from apps.pretrain.data import ArrayImageSet
    from apps.pretrain.evaluate import extract_features
    from apps.pretrain.model import load_encoder

    raw = cv2.imread(str(t / "in" / "imgs" / "g16.png"), cv2.IMREAD_UNCHANGED).astype(np.float32)
    backbone, info = load_encoder(t / "in" / "e.safetensors")
    exact = ArrayImageSet(raw[None, :, :, None], np.array([-1]), [], scale=65535.0)
    with torch.no_grad():
        expected = extract_features(backbone, exact, info.image_size, info.mean, info.std)
    np.testing.assert_allclose(np.load(t / "out" / "f.npy"), expected, rtol=1e-4, atol=1e-5)


def _train_folder(t: Path, bad: tuple[str, object] | None, *extra: str, out: Path | None = None) -> list:
    return ["pretrain", "train", "--method", "simclr", "--data", images(t / "in" / "imgs", 7, bad),
            f"train.out_dir={out or t / 'out' / 'run'}", "train.batch_size=4", "train.max_steps=4", "augment.size=8",
            "model.width=4", "model.proj_hidden=8", "model.proj_dim=4", "evaluate=false",
            "data_mean=[0.5,0.5,0.5]", "data_std=[0.25,0.25,0.25]", *QUIET, *extra]


CASES = [
    # row 6: outputs onto the weights (before: the encoder was replaced by features / JSON)
    BadCase("pretrain-row6-infer-out-is-weights",
            lambda t: ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors"),
                       "--input", images(t / "in" / "imgs"), "--out", t / "in" / "e.safetensors"],
            exit_code=2, match="is the input"),
    BadCase("pretrain-row6-eval-json-is-weights",
            lambda t: ["pretrain", "eval", "--weights", encoder(t / "in" / "e.safetensors", channels=1),
                       "--data", "digits", "--json", t / "in" / "e.safetensors"],
            exit_code=2, match="is the input"),
    # the same through a symlink in the output folder (before: np.save followed the link)
    BadCase("pretrain-infer-out-symlink-to-weights",
            lambda t: ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors"),
                       "--input", images(t / "in" / "imgs"),
                       "--out", symlink(t / "out" / "f.npy", t / "in" / "e.safetensors")],
            exit_code=2, match="is the input"),
    # an output inside the input folder (before: written among the images)
    BadCase("pretrain-infer-out-inside-input-folder",
            lambda t: ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors"),
                       "--input", images(t / "in" / "imgs"), "--out", t / "in" / "imgs" / "f.npy"],
            exit_code=2, match="inside the input folder"),
    # a file cvsuite did not write needs --force (before: silently replaced)
    BadCase("pretrain-infer-foreign-output-needs-force",
            lambda t: ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors"),
                       "--input", images(t / "in" / "imgs"),
                       "--out", text_file(t / "out" / "f.npy", ["my notes"])],
            exit_code=2, match="--force"),
    BadCase("pretrain-infer-foreign-file-list-needs-force",
            lambda t: [*_infer_good(t), "--out", (text_file(t / "out" / "f.files.txt", ["mine"]).parent / "f.npy")],
            exit_code=2, match="f.files.txt"),
    BadCase("pretrain-train-run-inside-data-folder",
            lambda t: ["pretrain", "train", "--data", images(t / "in" / "imgs", 8),
                       f"train.out_dir={t / 'in' / 'imgs' / 'run'}", *QUIET],
            exit_code=2, match="inside the input folder"),
    BadCase("pretrain-train-foreign-file-in-run-folder",
            lambda t: _train_folder(t, None, out=text_file(t / "out" / "r2" / "metrics.csv", ["x"]).parent),
            exit_code=2, match="metrics.csv"),
    BadCase("pretrain-eval-json-foreign-needs-force",
            lambda t: ["pretrain", "eval", "--weights", encoder(t / "in" / "e.safetensors", channels=1),
                       "--data", "digits", "--json", text_file(t / "out" / "r.json", ["{}"])],
            exit_code=2, match="--force"),
    # row 8: a bad image met in a DataLoader worker (before: a 20-line traceback from the worker)
    BadCase("pretrain-row8-worker-bad-image",
            lambda t: _train_folder(t, ("bad.png", corrupt_png), "train.num_workers=1"),
            exit_code=1, match="bad.png: cannot decode image (libpng error"),
    BadCase("pretrain-row8-no-worker-bad-image",
            lambda t: _train_folder(t, ("bad.png", zero_byte)), exit_code=1, match="bad.png: empty file"),
    # row 9: damaged images are refused like everywhere else (one line naming the file)
    BadCase("pretrain-row9-infer-truncated-jpeg", lambda t: _infer(t, "t.jpg", truncated_jpeg),
            exit_code=1, match="t.jpg"),
    BadCase("pretrain-infer-corrupt-jpeg", lambda t: _infer(t, "c.jpg", corrupt_jpeg), exit_code=1, match="c.jpg"),
    BadCase("pretrain-infer-truncated-png", lambda t: _infer(t, "t.png", truncated_png), exit_code=1, match="t.png"),
    BadCase("pretrain-infer-zero-byte", lambda t: _infer(t, "z.png", zero_byte), exit_code=1, match="z.png"),
    BadCase("pretrain-infer-text-as-png", lambda t: _infer(t, "x.png", garbage), exit_code=1, match="x.png"),
    BadCase("pretrain-infer-random-bytes", lambda t: _infer(t, "r.jpg", random_bytes), exit_code=1, match="r.jpg"),
    BadCase("pretrain-infer-huge-header", lambda t: _infer(t, "h.png", huge_header_png), exit_code=1,
            match="h.png: the header claims"),
    # row 17: a 16-bit grey PNG must keep its range (before: clipped to 8 bits, features wrong)
    BadCase("pretrain-row17-infer-16bit-grey",
            lambda t: ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors", channels=1),
                       "--input", grey16_png(t / "in" / "imgs" / "g16.png").parent, "--out", t / "out" / "f.npy"],
            exit_code=0, check=_sixteen_bit_features_are_exact),
    # weights that are no encoder, nonsense options
    BadCase("pretrain-infer-weights-garbage",
            lambda t: ["pretrain", "infer", "--weights", garbage(t / "in" / "e.safetensors"),
                       "--input", images(t / "in" / "imgs"), "--out", t / "out" / "f.npy"],
            exit_code=1, match="e.safetensors"),
    BadCase("pretrain-infer-bad-suffix",
            lambda t: [*_infer_good(t), "--out", t / "out" / "f.csv"], exit_code=2, match=".npy"),
    # nonsense method settings stop while the config is read (before: proj_dim=0 and in_channels=7
    # trained and "succeeded"; width=0 and byol momentum 2 ended in a bare RuntimeError / ValueError)
    *[BadCase(f"pretrain-config-{key.replace('.', '-').replace('_', '-')}",
              (lambda kv: lambda t: ["pretrain", "train", "--data", "digits", f"train.out_dir={t / 'out' / 'run'}",
                                     "train.max_steps=2", "train.batch_size=16", "evaluate=false", *QUIET, *kv])(extra),
              exit_code=2, match=key)
      for key, extra in [("model.proj_dim", ["model.proj_dim=0"]), ("model.width", ["model.width=0"]),
                         ("byol.base_momentum", ["method=byol", "byol.base_momentum=2"]),
                         ("in_channels", ["in_channels=7"]), ("data_std", ["data_std=[0]"]),
                         ("moco.momentum", ["method=moco", "moco.momentum=-0.1"]),
                         ("wmse.loss_type", ["method=wmse", "wmse.loss_type=l2"])]],
    # dataset files in the official layouts, damaged
    BadCase("pretrain-stl10-x-wrong-size",
            lambda t: ["pretrain", "train", "--data", garbage(t / "in" / "stl10_binary" / "train_X.bin").parent,
                       f"train.out_dir={t / 'out' / 'run'}", *QUIET], exit_code=1, match="train_X.bin"),
    BadCase("pretrain-stl10-binary-class-names",
            lambda t: ["pretrain", "train", "--data", _stl10(t / "in" / "stl10_binary", random_bytes),
                       f"train.out_dir={t / 'out' / 'run'}", *QUIET], exit_code=1, match="class_names.txt"),
    BadCase("pretrain-cifar10-garbage-batch",
            lambda t: ["pretrain", "train", "--data", random_bytes(t / "in" / "cifar-10-batches-py" / "data_batch_1").parent,
                       f"train.out_dir={t / 'out' / 'run'}", *QUIET], exit_code=1, match="data_batch_1"),
    BadCase("pretrain-train-unknown-method", lambda t: ["pretrain", "train", "--method", "simsiam"],
            exit_code=2, match="simsiam"),
    BadCase("pretrain-train-missing-data",
            lambda t: ["pretrain", "train", "--data", t / "in" / "nothing", f"train.out_dir={t / 'out' / 'run'}"],
            exit_code=1, match="nothing"),
]


def _stl10(folder: Path, class_names_maker) -> Path:
    """A one-image STL-10 ``stl10_binary`` folder whose ``class_names.txt`` is made by ``class_names_maker``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_X.bin").write_bytes(np.random.default_rng(0).integers(0, 256, 3 * 96 * 96, np.uint8).tobytes())
    (folder / "train_y.bin").write_bytes(bytes([1]))
    class_names_maker(folder / "class_names.txt")
    return folder


def _infer_good(t: Path) -> list:
    return ["pretrain", "infer", "--weights", encoder(t / "in" / "e.safetensors"), "--input", images(t / "in" / "imgs")]
