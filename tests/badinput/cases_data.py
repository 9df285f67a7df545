"""Bad data that was accepted with exit 0 (issue 25 item 9): truncated PLY files, HDF5 points of
1e308 / complex numbers / fractional labels, HanCo cameras with a zero or 1e308 K, a CIFAR batch of
floats, ``scrl infer --score`` outside [0, 1]. Each is now one error line naming the file (or flag).
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from .harness import BadCase, good_image


def _ply(t: Path, keep: float | None, binary: bool = True) -> Path:
    """A 500-point PLY cut to ``keep`` of its data (``None``: the header alone)."""
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(500, 3)).astype(np.float32)
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\nelement vertex 500\n"
              "property float x\nproperty float y\nproperty float z\nend_header\n").encode()
    body = pts.tobytes() if binary else "".join(f"{x} {y} {z}\n" for x, y, z in pts).encode()
    path = t / "in" / "cloud.ply"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + (b"" if keep is None else body[: int(len(body) * keep)]))
    return path


def _points_infer(path: Path, t: Path) -> list:
    return ["points", "infer", path, "--out", t / "out", "--render", "matplotlib"]


def _h5_set(t: Path, data=None, label=None) -> Path:
    from .cases_points import _h5

    root = t / "in" / "ds"
    rng = np.random.default_rng(0)
    arrays = {"data": rng.normal(size=(2, 32, 3)).astype(np.float32) if data is None else data,
              "label": np.array([[4], [4]], np.uint8) if label is None else label,
              "pid": np.full((2, 32), 13, np.uint8)}
    for split in ("train", "test"):
        _h5(root / f"ply_data_{split}0.h5", **arrays)
        (root / f"{split}_hdf5_file_list.txt").write_text(f"ply_data_{split}0.h5\n")
    return root


def _huge_points() -> np.ndarray:
    data = np.random.default_rng(0).normal(size=(2, 32, 3))
    data[1, 5, 2] = 1e308
    return data


def _hand_calib_k(t: Path, value: float) -> list:
    from .cases_hand import _hanco, _train

    root = _hanco(t)
    path = root / "calib" / "0000" / "00000000.json"
    calib = json.loads(path.read_text())
    calib["K"] = (np.full_like(np.asarray(calib["K"]), value)).tolist()
    path.write_text(json.dumps(calib))
    return _train(t, root)


def _cifar_float(t: Path) -> list:
    folder = t / "in" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batch = {b"data": np.full((4, 3072), 1e308), b"labels": [0, 1, 2, 3]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    return ["pretrain", "train", "--data", folder, f"train.out_dir={t / 'out' / 'run'}",
            "train.progress=false", "train.tensorboard=false", "train.max_steps=1"]


def _scrl_score(t: Path, score: str) -> list:
    return ["scrl", "infer", good_image(t / "in" / "a.png", size=(64, 64)), "--out", t / "out", "--score", score]


CASES = [
    BadCase("data-points-ply-truncated-binary", lambda t: _points_infer(_ply(t, 0.5), t), exit_code=1,
            match="truncated"),
    BadCase("data-points-ply-truncated-ascii", lambda t: _points_infer(_ply(t, 0.5, binary=False), t), exit_code=1,
            match="truncated"),
    BadCase("data-points-ply-header-only", lambda t: _points_infer(_ply(t, None), t), exit_code=1, match="cloud.ply"),
    BadCase("data-points-h5-coordinate-1e308", lambda t: ["points", "eval", "--data", _h5_set(t, data=_huge_points())],
            exit_code=1, match="beyond"),
    BadCase("data-points-h5-complex-points",
            lambda t: ["points", "eval", "--data", _h5_set(t, data=np.ones((2, 32, 3), np.complex64))],
            exit_code=1, match="real numbers"),
    BadCase("data-points-h5-label-fraction",
            lambda t: ["points", "eval", "--data", _h5_set(t, label=np.array([[4.5], [4.0]], np.float32))],
            exit_code=1, match="whole numbers"),
    BadCase("data-hand-calib-k-zero", lambda t: _hand_calib_k(t, 0.0), exit_code=1, match="00000000.json"),
    BadCase("data-hand-calib-k-1e308", lambda t: _hand_calib_k(t, 1e308), exit_code=1, match="00000000.json"),
    BadCase("data-pretrain-cifar-float-batch", _cifar_float, exit_code=1, match="data_batch_1"),
    BadCase("data-scrl-infer-score-nan", lambda t: _scrl_score(t, "nan"), exit_code=2, match="--score"),
    BadCase("data-scrl-infer-score-negative", lambda t: _scrl_score(t, "-1"), exit_code=2, match="--score"),
    BadCase("data-scrl-infer-score-above-one", lambda t: _scrl_score(t, "2"), exit_code=2, match="--score"),
]
