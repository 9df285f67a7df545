"""Image sources for self-supervised pretraining and feature evaluation.

Every reader returns an :class:`ImageSet`: ``len(s)``, ``s.image(i)`` (float tensor ``(C, H, W)`` in
[0, 1]), ``s.labels`` (int64 array, ``-1`` = unlabelled) and ``s.classes``. Supported sources:

* ``digits``: scikit-learn's bundled ``load_digits()`` (1,797 real 8x8 grey digits), with a fixed
  stratified train/test split (70/30, seed 0) so every run and every method sees the same images;
* CIFAR-10 / CIFAR-100 from their standard python pickles (``cifar-10-batches-py/data_batch_*``,
  ``test_batch``; ``cifar-100-python/train``, ``test``), read with a restricted unpickler that only
  rebuilds numpy arrays (a pickle cannot run code here);
* STL-10 from ``stl10_binary/{train,test,unlabeled}_X.bin`` (+ ``*_y.bin``), memory-mapped;
* an ImageFolder tree (``root/<class>/<image>``, optionally ``root/train`` + ``root/test|val``),
  or a flat folder of images (unlabelled).

Images are converted lazily; only digits and CIFAR live fully in memory (they are small).
"""
from __future__ import annotations

import abc
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shared.data.images import IMAGE_EXTENSIONS, list_images, read_image
from shared.errors import CvsuiteError, UsageError
from shared.safe_pickle import ArrayUnpickler

DIGITS_TEST_FRACTION = 0.3
DIGITS_SPLIT_SEED = 0
SPLITS = ("train", "test", "unlabeled", "train+unlabeled")
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageSet(abc.ABC):
    """A random-access set of images with (possibly missing) integer labels."""

    labels: np.ndarray
    classes: list[str]
    channels: int
    name: str

    def __len__(self) -> int:
        return int(len(self.labels))

    @abc.abstractmethod
    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as a (C, H, W) tensor."""

    def describe(self) -> str:
        labelled = int((self.labels >= 0).sum())
        return f"{self.name}: {len(self)} images ({labelled} labelled, {len(self.classes)} classes, {self.channels} ch)"


@dataclass
class ArrayImageSet(ImageSet):
    """Images held in a uint8/float array laid out ``(N, H, W, C)``; ``scale`` maps values to [0, 1]."""

    array: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str = "array"
    scale: float = 255.0

    def __post_init__(self) -> None:
        if self.array.ndim != 4:
            raise ValueError(f"image array must be (N, H, W, C), got shape {self.array.shape}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.labels) != len(self.array):
            raise CvsuiteError(f"{self.name}: {len(self.array)} images but {len(self.labels)} labels")
        self.channels = int(self.array.shape[3])

    def image(self, index: int) -> torch.Tensor:
        pixels = np.asarray(self.array[index], dtype=np.float32) / self.scale
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


@dataclass
class FileImageSet(ImageSet):
    """Images read from files on demand, as RGB or grey (``channels=1``), values in [0, 1] at any bit depth."""

    paths: list[Path]
    labels: np.ndarray
    classes: list[str]
    name: str = "folder"
    channels: int = 3

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)

    def image(self, index: int) -> torch.Tensor:
        """Decoded by ``shared.data.images.read_image``: corrupt, truncated, empty or huge-header files
        are one error naming the file, and 16-bit images keep their full range (no 8-bit clipping)."""
        decoded = read_image(self.paths[index])
        if self.channels == 1:
            # grey sources stay exact; colour is reduced with the ITU-R 601-2 luma weights (as PIL's "L")
            pixels = decoded.rgb[..., 0] if decoded.grey else decoded.rgb @ LUMA_WEIGHTS
            pixels = pixels[:, :, None]
        else:
            pixels = decoded.rgb
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32))


# --------------------------------------------------------------------------------------------- digits
def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fixed stratified digits split and the full label vector (split in {train, test})."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    labels = load_digits().target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    chosen = {"train": train_idx, "test": test_idx}
    if split not in chosen:
        raise UsageError(f"digits has splits 'train' and 'test', not {split!r}")
    return np.sort(chosen[split]), labels


def read_digits(split: str = "train") -> ArrayImageSet:
    """scikit-learn's bundled 8x8 digits (values 0..16), fixed 70/30 stratified split."""
    from sklearn.datasets import load_digits

    indices, labels = digits_split(split)
    images = load_digits().images.astype(np.float32)[indices][:, :, :, None]
    return ArrayImageSet(images, labels[indices], [str(d) for d in range(10)], name=f"digits/{split}", scale=16.0)


# --------------------------------------------------------------------------------------------- CIFAR
def _load_cifar_pickle(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise CvsuiteError(f"CIFAR file not found: {path}")
    try:
        raw = ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as exc:  # malformed or hostile pickle: one clear line
        raise CvsuiteError(f"{path} is not a CIFAR python pickle: {exc}") from None
    if not isinstance(raw, dict):
        raise CvsuiteError(f"{path} is not a CIFAR python pickle (top level is {type(raw).__name__})")
    return {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}


def _cifar_images(batch: dict[str, object], path: Path) -> np.ndarray:
    data = np.asarray(batch.get("data"))
    if data.ndim != 2 or data.shape[1] != 3072:
        raise CvsuiteError(f"{path}: 'data' must be (N, 3072) uint8, got shape {data.shape}")
    if data.dtype != np.uint8 and not (np.issubdtype(data.dtype, np.integer) and data.size
                                       and 0 <= data.min() and data.max() <= 255):
        raise CvsuiteError(f"{path}: 'data' must hold 8-bit pixel values 0-255 (uint8), got {data.dtype}"
                           + (f" from {data.min()} to {data.max()}" if data.size and np.issubdtype(data.dtype, np.number)
                              and not np.iscomplexobj(data) else ""))
    return data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _names(meta_path: Path, key: str, count: int) -> list[str]:
    if meta_path.is_file():
        names = _load_cifar_pickle(meta_path).get(key)
        if isinstance(names, list) and len(names) == count:
            return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return [str(i) for i in range(count)]


def read_cifar10(root: Path, split: str = "train") -> ArrayImageSet:
    """CIFAR-10 from ``cifar-10-batches-py`` (``root`` is that folder or its parent)."""
    folder = root if (root / "batches.meta").exists() or root.name == "cifar-10-batches-py" else root / "cifar-10-batches-py"
    if split == "train":
        files = sorted(folder.glob("data_batch_*"))
        if not files:
            raise CvsuiteError(f"no CIFAR-10 training batches (data_batch_*) in {folder}")
    elif split == "test":
        files = [folder / "test_batch"]
    else:
        raise UsageError(f"CIFAR-10 has splits 'train' and 'test', not {split!r}")
    images, labels = [], []
    for path in files:
        batch = _load_cifar_pickle(path)
        images.append(_cifar_images(batch, path))
        labels.append(np.asarray(batch.get("labels", []), dtype=np.int64))
        if len(labels[-1]) != len(images[-1]):
            raise CvsuiteError(f"{path}: {len(images[-1])} images but {len(labels[-1])} labels")
    classes = _names(folder / "batches.meta", "label_names", 10)
    return ArrayImageSet(np.concatenate(images), np.concatenate(labels), classes, name=f"cifar10/{split}")


def read_cifar100(root: Path, split: str = "train") -> ArrayImageSet:
    """CIFAR-100 (fine labels) from ``cifar-100-python`` (``root`` is that folder or its parent)."""
    folder = root if root.name == "cifar-100-python" or (root / "meta").exists() else root / "cifar-100-python"
    if split not in ("train", "test"):
        raise UsageError(f"CIFAR-100 has splits 'train' and 'test', not {split!r}")
    path = folder / split
    batch = _load_cifar_pickle(path)
    images = _cifar_images(batch, path)
    labels = np.asarray(batch.get("fine_labels", []), dtype=np.int64)
    if len(labels) != len(images):
        raise CvsuiteError(f"{path}: {len(images)} images but {len(labels)} fine_labels")
    classes = _names(folder / "meta", "fine_label_names", 100)
    return ArrayImageSet(images, labels, classes, name=f"cifar100/{split}")


# --------------------------------------------------------------------------------------------- STL-10
STL_SIDE = 96


def _stl_images(path: Path) -> np.ndarray:
    """Memory-map an STL-10 ``*_X.bin`` (uint8, each image 3x96x96 in column-major order) as NHWC."""
    if not path.is_file():
        raise CvsuiteError(f"STL-10 file not found: {path}")
    per_image = 3 * STL_SIDE * STL_SIDE
    size = path.stat().st_size
    if size == 0 or size % per_image:
        raise CvsuiteError(f"{path}: size {size} is not a multiple of one 3x96x96 image ({per_image} bytes)")
    raw = np.memmap(path, dtype=np.uint8, mode="r", shape=(size // per_image, 3, STL_SIDE, STL_SIDE))
    # stored as [channel][column][row]: (N, C, x, y) -> (N, y, x, C)
    return raw.transpose(0, 3, 2, 1)


def read_stl10(root: Path, split: str = "train") -> ArrayImageSet:
    """STL-10 binary files (``root`` is ``stl10_binary`` or its parent); labels 1..10 become 0..9."""
    folder = root if root.name == "stl10_binary" or (root / "train_X.bin").exists() else root / "stl10_binary"
    if split not in SPLITS:
        raise UsageError(f"STL-10 has splits {', '.join(SPLITS)}, not {split!r}")
    parts = ["train", "unlabeled"] if split == "train+unlabeled" else [split]
    arrays, labels = [], []
    for part in parts:
        images = _stl_images(folder / f"{part}_X.bin")
        if part == "unlabeled":
            part_labels = np.full(len(images), -1, dtype=np.int64)
        else:
            label_path = folder / f"{part}_y.bin"
            if not label_path.is_file():
                raise CvsuiteError(f"STL-10 label file not found: {label_path}")
            part_labels = np.fromfile(label_path, dtype=np.uint8).astype(np.int64) - 1
            if len(part_labels) != len(images) or (part_labels < 0).any() or (part_labels > 9).any():
                raise CvsuiteError(f"{label_path}: expected {len(images)} labels in 1..10")
        arrays.append(images)
        labels.append(part_labels)
    class_file = folder / "class_names.txt"
    classes = [str(i) for i in range(10)]
    if class_file.is_file():
        try:
            classes = class_file.read_text(encoding="utf-8").split() or classes
        except (UnicodeDecodeError, OSError) as exc:
            raise CvsuiteError(f"{class_file}: not a UTF-8 text file of class names ({type(exc).__name__})") from None
    array = arrays[0] if len(arrays) == 1 else _ConcatArray(arrays)
    return ArrayImageSet(array, np.concatenate(labels), classes[:10], name=f"stl10/{split}")


class _ConcatArray:
    """Index-only concatenation of memory-mapped arrays (avoids copying 100k STL images)."""

    def __init__(self, arrays: Sequence[np.ndarray]) -> None:
        self.arrays = list(arrays)
        self.offsets = np.cumsum([0] + [len(a) for a in self.arrays])
        self.shape = (int(self.offsets[-1]),) + tuple(self.arrays[0].shape[1:])
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        part = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.arrays[part][index - self.offsets[part]]


# --------------------------------------------------------------------------------------------- folders
def read_image_folder(root: Path, channels: int = 3) -> FileImageSet:
    """``root/<class>/**/<image>`` (labels from sorted class names) or a flat folder (unlabelled)."""
    if not root.is_dir():
        raise CvsuiteError(f"image folder not found: {root}")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    for class_dir in class_dirs:
        files = list_images(class_dir, recursive=True)
        if files:
            labels.extend([len(classes)] * len(files))
            classes.append(class_dir.name)
            paths.extend(files)
    loose = list_images(root)
    if loose and not classes:
        return FileImageSet(loose, np.full(len(loose), -1), [], name=f"folder:{root.name}", channels=channels)
    if not paths:
        raise CvsuiteError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {root}")
    return FileImageSet(paths, np.asarray(labels), classes, name=f"folder:{root.name}", channels=channels)


# --------------------------------------------------------------------------------------------- dispatch
def detect_format(root: Path) -> str:
    """Which reader a path needs: cifar10, cifar100, stl10 or folder."""
    if (root / "cifar-10-batches-py").is_dir() or root.name == "cifar-10-batches-py" or (root / "batches.meta").is_file():
        return "cifar10"
    if (root / "cifar-100-python").is_dir() or root.name == "cifar-100-python":
        return "cifar100"
    if (root / "stl10_binary").is_dir() or root.name == "stl10_binary" or (root / "train_X.bin").is_file():
        return "stl10"
    return "folder"


def open_images(spec: str, split: str = "train", channels: int = 3) -> ImageSet:
    """Open ``digits`` or a dataset directory for ``split`` (train / test; STL-10 also unlabeled)."""
    if spec == "digits":
        return read_digits(split)
    root = Path(spec).expanduser()
    if not root.exists():
        raise CvsuiteError(f"data directory not found: {root} (use 'digits' or an existing folder)")
    if not root.is_dir():
        raise CvsuiteError(f"data path is not a directory: {root}")
    kind = detect_format(root)
    if kind == "cifar10":
        return read_cifar10(root, split)
    if kind == "cifar100":
        return read_cifar100(root, split)
    if kind == "stl10":
        return read_stl10(root, split)
    if (root / "train").is_dir():
        if split == "train":
            return read_image_folder(root / "train", channels)
        for name in ("test", "val"):
            if (root / name).is_dir():
                return read_image_folder(root / name, channels)
        raise CvsuiteError(f"{root} has train/ but no test/ or val/ folder for evaluation")
    if split != "train":
        raise CvsuiteError(f"{root} has no train/ and test/ (or val/) sub-folders, so it has no {split} split")
    return read_image_folder(root, channels)


@dataclass
class DataStats:
    """Per-channel mean/std of a set (used to normalise inputs; stored with the weights)."""

    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)


def channel_stats(images: ImageSet, max_images: int = 2000, seed: int = 0) -> DataStats:
    """Mean and std per channel over (a fixed random subset of) the set."""
    rng = np.random.default_rng(seed)
    count = min(len(images), max_images)
    indices = rng.choice(len(images), size=count, replace=False) if len(images) > count else np.arange(count)
    total = torch.zeros(images.channels, dtype=torch.float64)
    total_sq = torch.zeros(images.channels, dtype=torch.float64)
    pixels = 0
    for index in indices:
        img = images.image(int(index)).double()
        total += img.sum(dim=(1, 2))
        total_sq += (img**2).sum(dim=(1, 2))
        pixels += img.shape[1] * img.shape[2]
    mean = total / pixels
    std = (total_sq / pixels - mean**2).clamp_min(1e-12).sqrt()
    return DataStats([float(m) for m in mean], [float(s) for s in std])
