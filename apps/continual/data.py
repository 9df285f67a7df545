"""Datasets from the user's disk and the non-stationary streams built from them.

Readers (all return :class:`ImageSet`: float images in [0, 1], (N, H, W), plus labels):

* ``digits``: scikit-learn's bundled 8x8 digits (fixed stratified 70/30 split);
* torchvision's raw MNIST / Fashion-MNIST layout: ``<root>/MNIST/raw/train-images-idx3-ubyte[.gz]``
  (+ ``train-labels-idx1-ubyte``, ``t10k-*``); ``<root>`` may also be the ``MNIST`` or ``raw``
  folder itself, ``FashionMNIST`` likewise;
* Omniglot as torchvision unpacks it: ``omniglot-py/images_background/<alphabet>/<character>/*.png``
  (label = alphabet, as the official CURL Omniglot runs; strokes become 1);
* any ImageFolder: ``<root>/<class>/*.png`` (or ``<root>/{train,test}/<class>/…``), read grey.

Streams: :func:`make_stream` lists, in order, the training-sample indices of every step. Labels
are used there only to *build* a sequential or smooth stream (the environment decides which class
group is shown); the training code receives images only (:class:`StreamImages`).
"""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.errors import CvsuiteError, UsageError

DIGITS_TEST_FRACTION = 0.3
DIGITS_SPLIT_SEED = 0
REGIMES = ("sequential", "smooth", "iid")


@dataclass
class ImageSet:
    """Images (N, H, W) float32 in [0, 1], labels (N,) and class names; ``files`` when read from files."""

    images: np.ndarray
    labels: Any  # a label array; anything indexable. Training never reads it.
    classes: list[str]
    name: str
    files: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def flat(self) -> torch.Tensor:
        return torch.from_numpy(self.images.reshape(len(self.images), -1).astype(np.float32))


# ------------------------------------------------------------------------------------------- digits
def read_digits(split: str) -> ImageSet:
    """scikit-learn's digits (values 0..16 -> [0, 1]); fixed stratified 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION,
                                           stratify=labels, random_state=DIGITS_SPLIT_SEED)
    idx = np.sort({"train": train_idx, "test": test_idx}[split])
    return ImageSet((digits.images[idx] / 16.0).astype(np.float32), labels[idx], [str(d) for d in range(10)],
                    f"digits/{split}")


# ---------------------------------------------------------------------------------------------- idx
def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CvsuiteError(f"cannot read {path}: {exc}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """An idx file (MNIST format, optionally gzipped) as a uint8 array; checks magic and length."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CvsuiteError(f"{path} is not an idx file of unsigned bytes (wrong magic number)")
    ndim = data[3]
    if ndim not in (1, 3) or len(data) < 4 + 4 * ndim:
        raise CvsuiteError(f"{path}: idx files with {ndim} dimensions are not MNIST images or labels")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise CvsuiteError(f"{path} is truncated or padded: {len(data)} bytes, the header {dims} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find_idx(raw: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (raw / name).is_file():
            return raw / name
    raise CvsuiteError(f"{raw / stem}[.gz] not found (torchvision raw MNIST layout)")


def find_raw_mnist(root: Path) -> Path | None:
    """The ``raw`` folder of a torchvision MNIST/FashionMNIST tree under ``root``, if any."""
    for candidate in (root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        if any((candidate / f"train-images-idx3-ubyte{ext}").is_file() for ext in ("", ".gz")):
            return candidate
    return None


def read_mnist_raw(raw: Path, split: str) -> ImageSet:
    prefix = "train" if split == "train" else "t10k"
    images_path = _find_idx(raw, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(raw, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise CvsuiteError(f"{images_path} must hold 3-D images and {labels_path} 1-D labels")
    if len(images) != len(labels):
        raise CvsuiteError(f"{images_path} has {len(images)} images but {labels_path} {len(labels)} labels")
    fashion = "fashion" in str(raw).lower()
    classes = (["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot"] if fashion else [str(d) for d in range(10)])
    return ImageSet((images / 255.0).astype(np.float32), labels.astype(np.int64), classes,
                    f"{'fashion-mnist' if fashion else 'mnist'}/{split}")


# ----------------------------------------------------------------------------------- image folders
def _read_grey(path: Path, size: int | None) -> np.ndarray:
    from shared.data.images import read_image

    image = read_image(path)
    pixels = image.rgb.astype(np.float32)
    grey = pixels[..., 0] if image.grey else pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if size is not None and grey.shape != (size, size):
        import cv2

        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(grey, 0.0, 1.0)


def _read_class_folders(root: Path, size: int | None, invert: bool = False) -> tuple[np.ndarray, np.ndarray, list[str], list[Path]]:
    from shared.data.images import list_images

    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise CvsuiteError(f"{root} holds no class folders (<root>/<class>/*.png)")
    images, labels, files = [], [], []
    shape: tuple[int, int] | None = None
    first: Path | None = None
    for index, name in enumerate(classes):
        found = list_images(root / name, recursive=True)
        if not found:
            raise CvsuiteError(f"class folder {root / name} holds no images")
        for path in found:
            grey = _read_grey(path, size)
            if shape is None:
                shape, first = grey.shape, path
            elif grey.shape != shape:
                raise CvsuiteError(f"{path} is {grey.shape[1]}x{grey.shape[0]} but {first} is "
                                   f"{shape[1]}x{shape[0]}; images of one dataset must share a size "
                                   f"(or set image_size=N to resize)")
            images.append(1.0 - grey if invert else grey)
            labels.append(index)
            files.append(path)
    return np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64), classes, files


def _split_indices(labels: np.ndarray, split: str, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Deterministic stratified split of a folder without train/test subfolders."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = max(1, int(round(test_fraction * len(idx)))) if len(idx) > 1 else 0
        chosen.append(idx[:n_test] if split == "test" else idx[n_test:])
    return np.sort(np.concatenate(chosen))


def read_image_folder(root: Path, split: str, size: int | None) -> ImageSet:
    base = root / split if (root / "train").is_dir() and (root / "test").is_dir() else root
    images, labels, classes, files = _read_class_folders(base, size)
    if base is root:
        keep = _split_indices(labels, split)
        images, labels, files = images[keep], labels[keep], [files[i] for i in keep]
    return ImageSet(images, labels, classes, f"{root.name}/{split}", files)


def find_omniglot(root: Path) -> Path | None:
    for candidate in (root / "omniglot-py" / "images_background", root / "images_background"):
        if candidate.is_dir():
            return candidate
    return None


def read_omniglot(background: Path, split: str, size: int | None) -> ImageSet:
    """Alphabets as classes; per character, drawings 0..14 train and 15..19 test (by sorted name)."""
    from shared.data.images import list_images

    alphabets = sorted(p.name for p in background.iterdir() if p.is_dir())
    if not alphabets:
        raise CvsuiteError(f"{background} holds no alphabet folders")
    images, labels, files = [], [], []
    shape = None
    for index, alphabet in enumerate(alphabets):
        characters = sorted(p for p in (background / alphabet).iterdir() if p.is_dir())
        if not characters:
            raise CvsuiteError(f"alphabet folder {background / alphabet} holds no character folders")
        for character in characters:
            drawings = list_images(character)
            if not drawings:
                raise CvsuiteError(f"character folder {character} holds no images")
            cut = int(round(0.75 * len(drawings)))
            for path in drawings[:cut] if split == "train" else drawings[cut:]:
                grey = 1.0 - _read_grey(path, size)  # black strokes on white -> strokes = 1
                if shape is None:
                    shape = grey.shape
                elif grey.shape != shape:
                    raise CvsuiteError(f"{path} is {grey.shape[1]}x{grey.shape[0]}, other drawings "
                                       f"{shape[1]}x{shape[0]}; set image_size=N to resize")
                images.append(grey)
                labels.append(index)
                files.append(path)
    if not images:
        raise CvsuiteError(f"{background}: no {split} drawings")
    return ImageSet(np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64), alphabets,
                    f"omniglot/{split}", files)


def open_dataset(spec: str, split: str, image_size: int = 0) -> ImageSet:
    """``digits`` or a folder: raw MNIST/Fashion-MNIST, Omniglot, or an ImageFolder."""
    if split not in ("train", "test"):
        raise UsageError(f"split must be train or test, got {split!r}")
    size = image_size or None
    if spec == "digits":
        return read_digits(split)
    root = Path(spec)
    if not root.exists():
        raise UsageError(f"data folder {spec} does not exist (use 'digits' or a dataset folder)")
    if not root.is_dir():
        raise UsageError(f"data {spec} is not a folder")
    raw = find_raw_mnist(root)
    if raw is not None:
        data = read_mnist_raw(raw, split)
        if size is not None and data.shape != (size, size):
            import cv2

            data.images = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in data.images])
        return data
    background = find_omniglot(root)
    if background is not None:
        return read_omniglot(background, split, size or 28)
    return read_image_folder(root, split, size)


# ------------------------------------------------------------------------------------------ streams
def default_tasks(classes: int, per_task: int) -> list[list[int]]:
    """Consecutive groups of ``per_task`` classes: [[0], [1], ...] or [[0, 1], [2, 3], ...]."""
    if classes % per_task:
        raise UsageError(f"config key 'classes_per_task' ({per_task}) must divide the {classes} classes")
    return [list(range(i, i + per_task)) for i in range(0, classes, per_task)]


def check_tasks(tasks: list[list[int]], n_classes: int) -> None:
    seen: set[int] = set()
    for task in tasks:
        if not task:
            raise UsageError("config key 'tasks': a task with no classes")
        for label in task:
            if not 0 <= label < n_classes:
                raise UsageError(f"config key 'tasks': class {label} is not one of the {n_classes} classes")
            if label in seen:
                raise UsageError(f"config key 'tasks': class {label} is in two tasks")
            seen.add(label)


class _Pool:
    """Cycles through a shuffled index pool (reshuffled at every pass), like a repeated shuffled dataset."""

    def __init__(self, indices: np.ndarray, rng: np.random.Generator) -> None:
        if len(indices) == 0:
            raise CvsuiteError("a task of the stream has no training samples")
        self.indices, self.rng = indices, rng
        self.order, self.pos = rng.permutation(indices), 0

    def take(self, n: int) -> np.ndarray:
        out = []
        while n > 0:
            if self.pos == len(self.order):
                self.order, self.pos = self.rng.permutation(self.indices), 0
            chunk = self.order[self.pos:self.pos + n]
            out.append(chunk)
            self.pos += len(chunk)
            n -= len(chunk)
        return np.concatenate(out)


def steps_per_task(total_steps: int, n_tasks: int) -> int:
    return max(1, total_steps // n_tasks)


def make_stream(regime: str, n_samples: int, steps: int, batch: int, seed: int,
                labels: Sequence[int] | None = None, tasks: list[list[int]] | None = None) -> np.ndarray:
    """Indices (steps * batch,) of the training samples in stream order.

    * ``iid``: the whole set reshuffled at every pass (labels are not read);
    * ``sequential``: task ``t`` (a class group) for steps ``[t S, (t+1) S)``, ``S = steps // len(tasks)``;
      steps past ``len(tasks) S`` stay on the last task (official ``min(step / S, T - 1)``);
    * ``smooth``: as sequential, but in the first quarter of a task the first ``int((S/2 − 2s) B / S)``
      samples of a batch come from the previous task and in the last quarter ``int((2s − 3S/2) B / S)``
      from the next (``s`` = step within the task): the official ``blend_classes`` schedule.
    """
    rng = np.random.default_rng(seed)
    if regime == "iid":
        return _Pool(np.arange(n_samples), rng).take(steps * batch)
    if regime not in REGIMES:
        raise UsageError(f"unknown regime {regime!r}; choose one of {', '.join(REGIMES)}")
    assert labels is not None and tasks is not None
    label_array = np.asarray([int(v) for v in labels])
    pools = [_Pool(np.flatnonzero(np.isin(label_array, task)), rng) for task in tasks]
    n_tasks = len(tasks)
    per = steps_per_task(steps, n_tasks)
    out = np.empty(steps * batch, dtype=np.int64)
    for step in range(steps):
        t = min(step // per, n_tasks - 1)
        s = step % per if step < per * n_tasks else per - 1
        chunk = pools[t].take(batch)
        if regime == "smooth":
            other, count = None, 0
            if s < per / 4 and t > 0:
                other, count = t - 1, int((per / 2 - 2 * s) * batch / per)
            elif s > 3 * per / 4 and t < n_tasks - 1:
                other, count = t + 1, int((2 * s - 3 * per / 2) * batch / per)
            if other is not None and count > 0:
                chunk[:count] = pools[other].take(count)
        out[step * batch:(step + 1) * batch] = chunk
    return out


def task_at_step(step: int, steps: int, n_tasks: int) -> int:
    return min(step // steps_per_task(steps, n_tasks), n_tasks - 1)


class StreamImages(Dataset):
    """Position ``i`` of the stream -> the flattened image (float32, in [0, 1]); no labels.

    With ``component_of`` (supervised incremental-class variant only) it returns ``(image, y)``.
    """

    def __init__(self, images: torch.Tensor, order: np.ndarray, component_of: np.ndarray | None = None) -> None:
        self.images, self.order = images, torch.from_numpy(np.asarray(order, dtype=np.int64))
        self.component_of = None if component_of is None else torch.from_numpy(np.asarray(component_of, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int) -> Any:
        index = int(self.order[position])
        if self.component_of is None:
            return self.images[index]
        return self.images[index], self.component_of[index]
