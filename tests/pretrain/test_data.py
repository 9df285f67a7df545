"""Readers of the pretrain app on tiny files written in the datasets' official on-disk formats."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from apps.pretrain.data import (digits_split, open_images, read_cifar10, read_cifar100, read_digits,
                                read_image_folder, read_stl10)
from shared.errors import CvsuiteError


def _write_png(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_image_folder_labels_and_pixels(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for cls in ("cat", "dog"):
        for i in range(3):
            pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
            _write_png(tmp_path / cls / f"{i}.png", pixels)
            written[(cls, i)] = pixels
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    images = read_image_folder(tmp_path)
    assert images.classes == ["cat", "dog"]
    assert images.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert len(images) == 6 and images.channels == 3
    img = images.image(4)  # dog/1.png
    assert img.shape == (3, 5, 7)
    torch.testing.assert_close(img, torch.from_numpy(written[("dog", 1)].transpose(2, 0, 1) / 255.0).float())
    grey = read_image_folder(tmp_path, channels=1).image(0)
    assert grey.shape == (1, 5, 7)


def test_image_folder_train_test_and_flat(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            _write_png(tmp_path / "ds" / split / cls / "x.png", np.zeros((4, 4, 3), np.uint8))
    assert len(open_images(str(tmp_path / "ds"), "train")) == 2
    assert len(open_images(str(tmp_path / "ds"), "test")) == 2  # val/ serves as the test split
    _write_png(tmp_path / "flat" / "one.png", np.zeros((4, 4, 3), np.uint8))
    flat = open_images(str(tmp_path / "flat"), "train")
    assert flat.labels.tolist() == [-1] and flat.classes == []
    with pytest.raises(CvsuiteError, match="no test split|no train/ and test/"):
        open_images(str(tmp_path / "flat"), "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CvsuiteError, match="no images"):
        open_images(str(tmp_path / "empty"))
    with pytest.raises(CvsuiteError, match="not found"):
        open_images(str(tmp_path / "missing"))


def _cifar_batch(rng, n: int, label_key: str, classes: int) -> tuple[dict, np.ndarray, list[int]]:
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    # official layout: row = 1024 red, 1024 green, 1024 blue values, each row-major 32x32
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    labels = rng.integers(0, classes, size=n).tolist()
    return {b"data": data, label_key.encode(): labels, b"batch_label": b"x"}, images, labels


def test_cifar10_reader(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    all_images, all_labels = [], []
    for name, n in (("data_batch_1", 3), ("data_batch_2", 2), ("test_batch", 4)):
        batch, images, labels = _cifar_batch(rng, n, "labels", 10)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        if name != "test_batch":
            all_images.append(images)
            all_labels += labels
    names = [f"c{i}".encode() for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    train = read_cifar10(tmp_path, "train")
    assert len(train) == 5 and train.labels.tolist() == all_labels and train.classes[3] == "c3"
    expected = np.concatenate(all_images)
    for i in range(5):
        torch.testing.assert_close(train.image(i), torch.from_numpy(expected[i].transpose(2, 0, 1) / 255.0).float())
    assert len(open_images(str(folder), "test")) == 4  # auto-detected from the folder itself


def test_cifar100_reader(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    batch, images, labels = _cifar_batch(rng, 3, "fine_labels", 100)
    (folder / "train").write_bytes(pickle.dumps(batch, protocol=2))
    test = read_cifar100(tmp_path, "train")
    assert test.labels.tolist() == labels and len(test.classes) == 100
    torch.testing.assert_close(test.image(2), torch.from_numpy(images[2].transpose(2, 0, 1) / 255.0).float())


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(CvsuiteError, match="refusing to load builtins.print"):
        read_cifar10(tmp_path, "train")


def test_stl10_reader(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    images = rng.integers(0, 256, size=(3, 96, 96, 3), dtype=np.uint8)
    # official layout: each image channel by channel, column-major (x outer, y inner)
    images.transpose(0, 3, 2, 1).tofile(folder / "train_X.bin")
    np.array([1, 10, 4], np.uint8).tofile(folder / "train_y.bin")
    unlabeled = rng.integers(0, 256, size=(2, 96, 96, 3), dtype=np.uint8)
    unlabeled.transpose(0, 3, 2, 1).tofile(folder / "unlabeled_X.bin")
    train = read_stl10(tmp_path, "train")
    assert train.labels.tolist() == [0, 9, 3]
    torch.testing.assert_close(train.image(1), torch.from_numpy(images[1].transpose(2, 0, 1) / 255.0).float())
    both = open_images(str(tmp_path), "train+unlabeled")
    assert both.labels.tolist() == [0, 9, 3, -1, -1]
    torch.testing.assert_close(both.image(4), torch.from_numpy(unlabeled[1].transpose(2, 0, 1) / 255.0).float())
    (folder / "test_X.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(CvsuiteError, match="not a multiple"):
        read_stl10(tmp_path, "test")


def test_digits_split_is_fixed():
    test_idx, labels = digits_split("test")
    train_idx, _ = digits_split("train")
    assert len(train_idx) == 1257 and len(test_idx) == 540
    assert not set(train_idx) & set(test_idx) and len(set(train_idx) | set(test_idx)) == 1797
    # pinned: the split must never change silently (e.g. with a library upgrade)
    assert test_idx[:8].tolist() == [10, 21, 24, 25, 28, 32, 34, 35] and int(test_idx.sum()) == 501287
    assert np.bincount(labels[test_idx]).tolist() == [54, 55, 53, 55, 54, 55, 54, 54, 52, 54]
    digits = read_digits("test")
    assert digits.channels == 1 and digits.image(0).shape == (1, 8, 8)
    assert float(digits.image(0).max()) <= 1.0
