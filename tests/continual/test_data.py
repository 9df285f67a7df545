"""Readers on files written in the real layouts, and the stream schedules."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from apps.continual.data import make_stream, open_dataset, read_idx, steps_per_task
from shared.errors import CvsuiteError


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """The MNIST idx format: 0x0000 08 ndim, big-endian dims, uint8 data (as torchvision downloads it)."""
    blob = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(blob)
    else:
        path.write_bytes(blob)


def write_mnist(root, n_train=30, n_test=10, gz=False, folder="MNIST", size=28):
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, size=(n, size, size))
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz)
    return root


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("folder", ["MNIST", "FashionMNIST"])
def test_mnist_raw_layout(tmp_path, gz, folder):
    write_mnist(tmp_path, gz=gz, folder=folder)
    train = open_dataset(str(tmp_path), "train")
    test = open_dataset(str(tmp_path / folder), "test")  # the dataset folder itself also works
    assert train.images.shape == (30, 28, 28) and test.images.shape == (10, 28, 28)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert list(train.labels[:3]) == [0, 1, 2]
    raw = read_idx(tmp_path / folder / "raw" / f"train-images-idx3-ubyte{'.gz' if gz else ''}")
    np.testing.assert_allclose(train.images, raw / 255.0, rtol=1e-6)
    assert ("T-shirt/top" in train.classes) == (folder == "FashionMNIST")


def test_idx_wrong_magic_and_truncated(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    with pytest.raises(CvsuiteError, match="truncated"):
        open_dataset(str(tmp_path), "train")
    path.write_bytes(b"\x12\x34" + data[2:])
    with pytest.raises(CvsuiteError, match="wrong magic"):
        open_dataset(str(tmp_path), "train")


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_omniglot_layout(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "omniglot-py" / "images_background"
    for alphabet in ("Greek", "Latin"):
        for character in ("character01", "character02"):
            for i in range(4):
                img = np.full((105, 105), 255)
                img[rng.integers(0, 105, 50), rng.integers(0, 105, 50)] = 0  # black strokes on white
                _png(root / alphabet / character / f"0{i}.png", img)
    train = open_dataset(str(tmp_path), "train")
    test = open_dataset(str(tmp_path), "test")
    assert train.classes == ["Greek", "Latin"] and train.images.shape == (12, 28, 28) and len(test) == 4
    assert train.images.mean() < 0.5  # strokes are 1, background 0


def test_image_folder_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(5):
            _png(tmp_path / "f" / cls / f"{i}.png", rng.integers(0, 256, (12, 12)))
    train, test = open_dataset(str(tmp_path / "f"), "train"), open_dataset(str(tmp_path / "f"), "test")
    assert len(train) + len(test) == 10 and train.classes == ["a", "b"] and train.images.shape[1:] == (12, 12)
    assert len(set(map(str, train.files)) & set(map(str, test.files))) == 0
    _png(tmp_path / "f" / "b" / "odd.png", rng.integers(0, 256, (10, 14)))
    with pytest.raises(CvsuiteError, match="odd.png.*share a size"):
        open_dataset(str(tmp_path / "f"), "train")
    assert open_dataset(str(tmp_path / "f"), "train", image_size=8).images.shape[1:] == (8, 8)
    (tmp_path / "f" / "c").mkdir()
    with pytest.raises(CvsuiteError, match="c holds no images"):
        open_dataset(str(tmp_path / "f"), "train", image_size=8)


def test_sequential_stream_follows_tasks():
    labels = np.repeat(np.arange(4), 10)
    order = make_stream("sequential", 40, 8, 5, seed=0, labels=labels, tasks=[[0, 1], [2, 3]])
    per = steps_per_task(8, 2)
    batches = labels[order].reshape(8, 5)
    assert set(batches[:per].ravel()) == {0, 1} and set(batches[per:].ravel()) == {2, 3}


def test_smooth_stream_blends_as_the_official_schedule():
    labels = np.repeat(np.arange(3), 50)
    steps, batch, tasks = 24, 16, [[0], [1], [2]]
    order = make_stream("smooth", 150, steps, batch, seed=0, labels=labels, tasks=tasks)
    batches = labels[order].reshape(steps, batch)
    per = steps // 3
    for step in range(steps):
        t, s = step // per, step % per
        other = np.sum(batches[step] != t)
        if s < per / 4 and t > 0:
            expected = int((per / 2 - 2 * s) * batch / per)
            assert other == expected and set(batches[step][:expected]) <= {t - 1}
        elif s > 3 * per / 4 and t < 2:
            expected = int((2 * s - 3 * per / 2) * batch / per)
            assert other == expected and set(batches[step][:expected]) <= {t + 1}
        else:
            assert other == 0


def test_iid_stream_needs_no_labels_and_covers_each_pass():
    order = make_stream("iid", 20, 6, 5, seed=3)
    assert sorted(order[:20]) == list(range(20))  # first pass is a permutation
    with pytest.raises(CvsuiteError, match="unknown regime"):
        make_stream("shuffled", 20, 6, 5, seed=3)
