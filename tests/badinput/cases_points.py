"""Bad input for ``cvsuite points`` verbs: broken clouds, meshes, datasets, and outputs aimed at inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .harness import BadCase, garbage, text_file, zero_byte


def _h5(path: Path, **datasets) -> Path:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return path


def _shapenet_h5(root: Path, drop: str | None = None) -> Path:
    data = {"data": np.random.default_rng(0).normal(size=(2, 32, 3)).astype(np.float32),
            "label": np.array([[4], [4]], np.uint8), "pid": np.full((2, 32), 13, np.uint8)}
    data.pop(drop, None)
    for split in ("train", "test"):
        _h5(root / f"ply_data_{split}0.h5", **data)
        (root / f"{split}_hdf5_file_list.txt").write_text(f"ply_data_{split}0.h5\n")
    return root


def _txt_set(root: Path, part: int) -> Path:
    base = root / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (base / "02691156").mkdir(parents=True)
    (base / "synsetoffset2category.txt").write_text("Airplane\t02691156\n")
    rows = np.concatenate([np.random.default_rng(0).normal(size=(20, 3)), np.tile([0, 1, 0], (20, 1)),
                           np.zeros((20, 1))], 1)
    rows[7, 6] = part
    np.savetxt(base / "02691156" / "a1.txt", rows, fmt="%.5f")
    (base / "train_test_split").mkdir()
    for split in ("train", "val", "test"):
        (base / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(["shape_data/02691156/a1"]))
    return root


def _infer(t: Path, name: str, body: str | None) -> list:
    path = t / "in" / name
    if body is None:
        zero_byte(path)
    else:
        garbage(path, body)
    return ["points", "infer", path, "--out", t / "out"]


CASES = [
    BadCase("points-infer-empty-cloud", lambda t: _infer(t, "empty.xyz", None), exit_code=1, match="empty.xyz"),
    BadCase("points-infer-one-point", lambda t: _infer(t, "one.xyz", "0.1 0.2 0.3\n"), exit_code=1, match="one.xyz"),
    BadCase("points-infer-nan", lambda t: _infer(t, "nan.xyz", "0 0 0\n1 nan 1\n2 2 2\n"), exit_code=1, match="nan.xyz"),
    BadCase("points-infer-inf", lambda t: _infer(t, "inf.pts", "0 0 0\n1 1 -inf\n2 2 2\n"), exit_code=1, match="inf.pts"),
    BadCase("points-infer-two-columns", lambda t: _infer(t, "flat.txt", "0 0\n1 1\n2 2\n"), exit_code=1, match="flat.txt"),
    BadCase("points-infer-not-numeric", lambda t: _infer(t, "words.xyz", "0 0 0\nx y z\n"), exit_code=1, match="line 2"),
    BadCase("points-infer-mesh-without-faces",
            lambda t: _infer(t, "nofaces.off", "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n"), exit_code=1, match="nofaces.off"),
    BadCase("points-infer-empty-ply",
            lambda t: _infer(t, "empty.ply", "ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\n"
                             "property float y\nproperty float z\nend_header\n"), exit_code=1, match="empty.ply"),
    BadCase("points-infer-unsupported", lambda t: _infer(t, "cloud.las", "0 0 0\n"), exit_code=1, match="cloud.las"),
    BadCase("points-infer-bad-weights",
            lambda t: ["points", "infer", text_file(t / "in" / "ok.xyz", ["0 0 0", "1 0 0", "0 1 0", "0 0 1"]),
                       "--weights", garbage(t / "in" / "w.safetensors"), "--out", t / "out"],
            exit_code=1, match="w.safetensors"),
    BadCase("points-infer-out-is-input-folder",
            lambda t: ["points", "infer", text_file(t / "in" / "c" / "ok.xyz", ["0 0 0", "1 0 0", "0 1 0"]).parent,
                       "--out", t / "in" / "c"], exit_code=2, match="input"),
    BadCase("points-eval-h5-without-pid", lambda t: ["points", "eval", "--data", _shapenet_h5(t / "in" / "ds", "pid")],
            exit_code=1, match="ply_data_test0.h5"),
    BadCase("points-eval-h5-without-data", lambda t: ["points", "eval", "--data", _shapenet_h5(t / "in" / "ds", "data")],
            exit_code=1, match="'data'"),
    BadCase("points-eval-part-outside-category", lambda t: ["points", "eval", "--data", _txt_set(t / "in" / "ds", 47)],
            exit_code=1, match="a1.txt: line 8"),
    BadCase("points-eval-json-at-input",
            lambda t: ["points", "eval", "--data", _shapenet_h5(t / "in" / "ds"),
                       "--json", t / "in" / "ds" / "test_hdf5_file_list.txt"], exit_code=2, match="input"),
    BadCase("points-eval-not-a-dataset", lambda t: ["points", "eval", "--data", garbage(t / "in" / "x.txt").parent],
            exit_code=1, match="ShapeNetPart"),
    BadCase("points-train-h5-without-data",
            lambda t: ["points", "train", "--mode", "siamese", "--data", _shapenet_h5(t / "in" / "ds", "data"),
                       "--out", t / "out" / "run"], exit_code=1, match="ply_data_train0.h5"),
    BadCase("points-train-scl-without-siamese-weights",
            lambda t: ["points", "train", "--data", _shapenet_h5(t / "in" / "ds"), "--out", t / "out" / "run"],
            exit_code=2, match="siamese_weights"),
    BadCase("points-train-out-at-input",
            lambda t: ["points", "train", "--mode", "siamese", "--data", _shapenet_h5(t / "in" / "ds"), "--out", t / "in" / "ds"],
            exit_code=2, match="input"),
    BadCase("points-train-bad-mode", lambda t: ["points", "train", "--data", t / "in", "mode=sideways"],
            exit_code=2, match="mode"),
    BadCase("points-probe-two-column-h5",
            lambda t: ["points", "probe", "--data", _modelnet_2col(t / "in" / "mn")], exit_code=1, match="ply_data_train0.h5"),
    BadCase("points-synth-out-is-a-file",
            lambda t: ["points", "synth", "--out", garbage(t / "in" / "file.txt"), "--shapes", "5"], exit_code=2,
            match="file.txt"),
    BadCase("points-infer-bad-up-axis",
            lambda t: ["points", "infer", text_file(t / "in" / "ok.xyz", ["0 0 0", "1 0 0", "0 1 0"]), "--up", "w",
                       "--out", t / "out"], exit_code=2, match="--up"),
    BadCase("points-infer-bad-min-probability",
            lambda t: ["points", "infer", text_file(t / "in" / "ok.xyz", ["0 0 0", "1 0 0", "0 1 0"]),
                       "--min-probability", "1.5", "--out", t / "out"], exit_code=2, match="--min-probability"),
    BadCase("points-infer-parts-zero",
            lambda t: ["points", "infer", text_file(t / "in" / "ok.xyz", ["0 0 0", "1 0 0", "0 1 0"]), "--parts", "0",
                       "--out", t / "out"], exit_code=2, match="--parts"),
    BadCase("points-infer-parts-bad-encoder",
            lambda t: ["points", "infer", text_file(t / "in" / "ok.xyz", ["0 0 0", "1 0 0", "0 1 0"]), "--parts", "2",
                       "--weights", garbage(t / "in" / "enc.safetensors"), "--out", t / "out"], exit_code=1,
            match="enc.safetensors"),
    BadCase("points-infer-obj-two-vertex-face",
            lambda t: _infer(t, "edge.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n"), exit_code=1, match="edge.obj: line 4"),
    BadCase("points-infer-obj-index-out-of-range",
            lambda t: _infer(t, "far.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n"), exit_code=1, match="far.obj"),
    BadCase("points-synth-too-few-shapes", lambda t: ["points", "synth", "--out", t / "out", "--shapes", "0"],
            exit_code=2, match="--shapes"),
]


def _modelnet_2col(root: Path) -> Path:
    for split in ("train", "test"):
        _h5(root / f"ply_data_{split}0.h5", data=np.zeros((2, 16, 2), np.float32), label=np.zeros((2, 1), np.uint8))
        (root / f"{split}_files.txt").write_text(f"ply_data_{split}0.h5\n")
    return root
