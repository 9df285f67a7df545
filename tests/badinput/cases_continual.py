"""``cvsuite continual {train,eval,infer,sample}`` on bad input (issue 18's list and the guard rules)."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np

from .harness import BadCase, corrupt_png, good_image, grey16_png, text_file, truncated_png, zero_byte

QUIET = ["train.progress=false", "train.tensorboard=false"]
TINY = ["model.n_enc=[8]", "model.n_dec=[8]", "model.n_z=2", "model.n_y=3", "train.batch_size=4", "train.max_steps=2"]


def curl_weights(path: Path) -> Path:
    """A tiny real curl.safetensors (what ``continual train`` writes)."""
    import torch

    from apps.continual.model import CurlModel, ModelConfig, save_curl

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = CurlModel(64, ModelConfig(n_enc=[8], n_dec=[8], n_z=2, n_y=3))
    save_curl(model, str(path), {"data": "digits", "image_shape": [8, 8], "ll_thresh": -16.0, "tasks": [[0], [1]]})
    return path


def other_app_weights(path: Path) -> Path:
    """A shipped weight file of another app (pretrain's digits encoder)."""
    from shared.weights import read_manifest, shipped_weight

    name = next(n for n in read_manifest() if n.startswith("pretrain_digits_"))
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_weight(name), path)
    return path


def _idx(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.astype(np.uint8).tobytes())
    return path


def mnist(root: Path, damage: str | None = None) -> Path:
    raw = root / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    target = raw / "train-images-idx3-ubyte"
    data = target.read_bytes()
    if damage == "truncated":
        target.write_bytes(data[:len(data) // 2])
    elif damage == "magic":
        target.write_bytes(b"\x1f\x8b" + data[2:])
    return root


def folder(root: Path, odd: bool = False, empty: bool = False) -> Path:
    for cls in ("a", "b"):
        for i in range(4):
            good_image(root / cls / f"{i}.png", size=(12, 12), seed=i)
    if odd:
        good_image(root / "b" / "odd.png", size=(10, 14), seed=9)
    if empty:
        (root / "c").mkdir(parents=True)
    return root


def _train(t: Path, data, *extra: str) -> list:
    return ["continual", "train", "--data", data, "--out", t / "out" / "run", *TINY, *QUIET, *extra]


def _images(t: Path, bad: tuple[str, object] | None = None) -> Path:
    good_image(t / "in" / "imgs" / "a.png", size=(16, 16))
    if bad is not None:
        name, maker = bad
        maker(t / "in" / "imgs" / name)  # type: ignore[operator]
    return t / "in" / "imgs"


def _sixteen_bit_rows(t: Path) -> None:
    import csv

    rows = list(csv.DictReader(open(t / "out" / "p.csv")))
    assert len(rows) == 2 and all(0 <= int(r["component"]) < 3 for r in rows)


CASES = [
    BadCase("continual-train-truncated-idx", lambda t: _train(t, mnist(t / "in" / "m", "truncated")),
            exit_code=1, match="train-images-idx3-ubyte is truncated"),
    BadCase("continual-train-wrong-magic-idx", lambda t: _train(t, mnist(t / "in" / "m", "magic")),
            exit_code=1, match="wrong magic"),
    BadCase("continual-train-mixed-sizes", lambda t: _train(t, folder(t / "in" / "f", odd=True)),
            exit_code=1, match="odd.png"),
    BadCase("continual-train-empty-class-folder", lambda t: _train(t, folder(t / "in" / "f", empty=True)),
            exit_code=1, match="c holds no images"),
    BadCase("continual-train-unknown-regime", lambda t: _train(t, "digits", "--regime", "shuffled"),
            exit_code=2, match="regime"),
    BadCase("continual-train-nan-threshold", lambda t: _train(t, "digits", "curl.ll_thresh=nan"),
            exit_code=2, match="ll_thresh"),
    BadCase("continual-train-positive-threshold", lambda t: _train(t, "digits", "curl.ll_thresh=3"),
            exit_code=2, match="ll_thresh"),
    BadCase("continual-train-negative-buffer", lambda t: _train(t, "digits", "curl.buffer_size=-5"),
            exit_code=2, match="buffer_size"),
    BadCase("continual-train-bad-tasks", lambda t: _train(t, "digits", "--tasks", "[[0,1],[1,12]]"),
            exit_code=2, match="tasks"),
    BadCase("continual-train-missing-data", lambda t: _train(t, t / "in" / "nothing-here"),
            exit_code=2, match="nothing-here"),
    BadCase("continual-train-run-inside-data", lambda t: ["continual", "train", "--data", folder(t / "in" / "f"),
                                                          "--out", t / "in" / "f" / "run", *TINY, *QUIET],
            exit_code=2, match="inside the input folder"),
    BadCase("continual-eval-weights-of-another-app",
            lambda t: ["continual", "eval", "--weights", other_app_weights(t / "in" / "w.safetensors")],
            exit_code=1, match="another app"),
    BadCase("continual-infer-weights-of-another-app",
            lambda t: ["continual", "infer", "--weights", other_app_weights(t / "in" / "w.safetensors"),
                       _images(t), "--out", t / "out" / "p.csv"], exit_code=1, match="another app"),
    BadCase("continual-sample-weights-garbage",
            lambda t: ["continual", "sample", "--weights", text_file(t / "in" / "w.safetensors", ["hello"]),
                       "--out", t / "out" / "g.png"], exit_code=1, match="w.safetensors"),
    BadCase("continual-sample-out-is-weights",
            lambda t: ["continual", "sample", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       "--out", t / "in" / "w.safetensors"], exit_code=2, match="is the input"),
    BadCase("continual-eval-json-foreign-needs-force",
            lambda t: ["continual", "eval", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       "--json", text_file(t / "out" / "r.json", ["{}"])], exit_code=2, match="--force"),
    BadCase("continual-infer-corrupt-png",
            lambda t: ["continual", "infer", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       _images(t, ("c.png", corrupt_png)), "--out", t / "out" / "p.csv"], exit_code=1, match="c.png"),
    BadCase("continual-infer-truncated-png",
            lambda t: ["continual", "infer", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       _images(t, ("t.png", truncated_png)), "--out", t / "out" / "p.csv"], exit_code=1, match="t.png"),
    BadCase("continual-infer-zero-byte",
            lambda t: ["continual", "infer", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       _images(t, ("z.png", zero_byte)), "--out", t / "out" / "p.csv"], exit_code=1, match="z.png"),
    BadCase("continual-infer-out-inside-input",
            lambda t: ["continual", "infer", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       _images(t), "--out", t / "in" / "imgs" / "p.csv"], exit_code=2, match="inside the input folder"),
    BadCase("continual-infer-16bit-grey",
            lambda t: ["continual", "infer", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       _images(t, ("g16.png", grey16_png)), "--out", t / "out" / "p.csv"],
            exit_code=0, check=_sixteen_bit_rows),
    BadCase("continual-sample-bad-count",
            lambda t: ["continual", "sample", "--weights", curl_weights(t / "in" / "w.safetensors"),
                       "--out", t / "out" / "g.png", "--per-component", "0"], exit_code=2, match="--per-component"),
]
