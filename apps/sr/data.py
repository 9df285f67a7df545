"""Image I/O and datasets for SR: paired folders, HR-only folders with on-the-fly degradation
(DIV2K / DF2K / Flickr2K layouts), the benchmark layout (``Set5/HR``, ``Set5/LR_bicubic/X4``) and
LR-only folders for inference.

HR images are decoded once and cached in memory as uint8, so the per-sample cost on 2 cores is a
crop, a flip/rotation and (HR-only) one degradation of a small patch.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.data.images import IMAGE_EXTENSIONS as IMAGE_EXTS  # noqa: F401  (re-exported)
from shared.data.images import ImageData, bundled_photo, list_images, read_image, write_image  # noqa: F401
from shared.errors import CvsuiteError, UsageError

from .degradations import DegradationConfig, check_degradation_config, degrade, quantize
from .photos import SOURCE_PREFIX as WALLPAPER_PREFIX
from .photos import WALLPAPERS, load_wallpaper

# scikit-image's / matplotlib's / scikit-learn's bundled photographs (no download), split three ways: training;
# validation (every tuned choice is scored here); held-out test (only the final table).
TRAIN_PHOTOS = ("stereo_motorcycle", "immunohistochemistry", "retina", "hubble_deep_field", "moon", "brick",
                "grass", "gravel", "stereo_motorcycle_right", "coins", "china", "flower")
VALIDATION_PHOTOS = ("astronaut", "rocket")
HELDOUT_PHOTOS = ("chelsea", "coffee", "camera", "grace_hopper")
# the real photos of pinned Debian wallpaper packages (``wallpaper:NAME``, fetched by tools/fetch_sr_photos.py,
# apps/sr/photos.py): training only, for the shipped-weights recipe and its pilots
TRAIN_WALLPAPERS = tuple(WALLPAPERS)


def load_image(path: str | Path) -> ImageData:
    """:func:`read_image`, with any decoder failure (e.g. OpenCV refusing a 100000² header) turned into
    one :class:`CvsuiteError` naming the file, so a batch can report it and go on."""
    import cv2

    try:
        return read_image(path)
    except CvsuiteError:
        raise
    except (cv2.error, ValueError, OSError, MemoryError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:120]
        raise CvsuiteError(f"{path}: cannot decode image ({detail})") from exc


def read_rgb_uint8(path: str | Path) -> np.ndarray:
    """An image as uint8 RGB (grey replicated, alpha dropped, 16-bit rounded down to 8-bit)."""
    return quantize(load_image(path).rgb)


def check_min_size(img: np.ndarray, min_size: int, where: str) -> np.ndarray:
    """Refuse an image smaller than ``min_size`` on a side (e.g. a 1×1 file in a training folder)."""
    if min(img.shape[:2]) < min_size:
        raise CvsuiteError(f"{where}: {img.shape[1]}x{img.shape[0]} is smaller than the {min_size}-px training "
                           f"patch (data.patch_size); remove it or lower data.patch_size")
    return img


# -- layouts ----------------------------------------------------------------------------------------

def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_EXTS for p in folder.iterdir() if p.is_file())


def resolve_hr_dirs(root: str | Path) -> list[Path]:
    """HR image folders under ``root``: the folder itself, or ``*_HR`` / ``HR`` folders (DIV2K
    ``DIV2K_train_HR``, Flickr2K ``Flickr2K_HR``, DF2K = both, benchmark ``Set5/HR``) up to 2 levels down."""
    root = Path(root)
    if not root.is_dir():
        raise CvsuiteError(f"HR folder not found: {root}")
    if _has_images(root):
        return [root]
    found = sorted(p for p in list(root.glob("*")) + list(root.glob("*/*"))
                   if p.is_dir() and (p.name == "HR" or p.name.endswith("_HR")) and _has_images(p))
    if not found:
        raise CvsuiteError(f"{root}: no images and no HR folder (e.g. DIV2K_train_HR, Set5/HR) inside")
    return found


def lr_path_for(hr_path: Path, lr_dir: Path, scale: int) -> Path | None:
    """The LR partner of an HR file: ``<stem>x<scale>.<ext>`` (DIV2K/benchmarks) or ``<stem>.<ext>``."""
    for stem in (f"{hr_path.stem}x{scale}", hr_path.stem):
        for ext in (hr_path.suffix, *IMAGE_EXTS):
            candidate = lr_dir / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return None


def resolve_lr_dir(lr: str | Path, scale: int) -> Path:
    """Accept the LR folder itself or a parent holding ``X<scale>`` (``LR_bicubic/X4``)."""
    lr = Path(lr)
    if (lr / f"X{scale}").is_dir():
        return lr / f"X{scale}"
    if not lr.is_dir():
        raise CvsuiteError(f"LR folder not found: {lr}")
    return lr


def paired_files(hr_dir: Path, lr_dir: Path, scale: int) -> list[tuple[Path, Path]]:
    pairs = []
    for hr_path in list_images(hr_dir):
        lr_path = lr_path_for(hr_path, lr_dir, scale)
        if lr_path is None:
            raise CvsuiteError(f"{hr_path}: no LR partner in {lr_dir} (expected {hr_path.stem}x{scale}.png)")
        pairs.append((hr_path, lr_path))
    if not pairs:
        raise CvsuiteError(f"{hr_dir}: no images")
    return pairs


# -- training dataset -------------------------------------------------------------------------------

def augment(arrays: Sequence[np.ndarray], channel_shuffle: bool = False) -> list[np.ndarray]:
    """The same random flip / transpose (8 dihedral variants) for every array (global RNG).

    ``channel_shuffle`` also applies one random permutation of the RGB channels (6 variants) to
    every array. Why: a dozen training photos cover few colours (5 are grey), and a network trained
    on them learns colour-specific offsets — e.g. +2 / −2 levels on G / B of a flat dark-blue sky,
    which costs 0.8 Y levels of bias there. Permuting channels (applied to HR *before* the
    degradation, so LR and HR stay consistent) multiplies the colours seen by six.
    """
    hflip, vflip, transpose = (random.random() < 0.5 for _ in range(3))
    order = random.sample(range(3), 3) if channel_shuffle else [0, 1, 2]
    out = []
    for a in arrays:
        if hflip:
            a = a[:, ::-1]
        if vflip:
            a = a[::-1]
        if transpose:
            a = a.transpose(1, 0, 2)
        if order != [0, 1, 2]:
            a = a[..., order]
        out.append(np.ascontiguousarray(a))
    return out


def luma_laplacian(img: np.ndarray) -> np.ndarray:
    """|Laplacian| (3×3, OpenCV) of the grey (BT.601 luma) of a uint8 RGB image, float32 grey levels.

    The fine-detail measure of a patch is the mean of this map over it: ~0 on flat sky or an out-of-focus
    background, tens of grey levels on texture. Shared by the detail-aware patch sampling below and
    ``evaluation/sr_photo_detail.py`` (the measurement of the training photo sets), so both use one measure.
    """
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(grey, cv2.CV_32F))


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) → float (3, H, W) in [0, 1]."""
    return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255.0)


class SRTrainDataset(Dataset):
    """Random HR patches with LR partners: paired (``lr_images`` given) or degraded on the fly.

    ``length`` is virtual (samples per epoch); each item picks a random image. On-the-fly degradation
    crops a margin around the patch first so blur borders are real image content.

    Detail-aware sampling (``detail_min`` > 0): up to ``detail_tries`` candidate crops are drawn from the
    picked image and the first whose HR patch has a mean :func:`luma_laplacian` ≥ ``detail_min`` is kept
    (none: the most detailed candidate). Why: photos with large flat or out-of-focus areas otherwise spend
    most patches on content with nothing to restore. With ``detail_min`` = 0 (default) the first candidate
    is always kept and nothing is measured, so the random draws are exactly those without the option.
    """

    def __init__(self, hr_images: list[np.ndarray], scale: int, patch_size: int,
                 kinds: Sequence[str] = ("bicubic", "mild", "blind", "spatially-variant"),
                 kind_probs: Sequence[float] = (0.35, 0.25, 0.2, 0.2), length: int = 10_000,
                 lr_images: list[np.ndarray] | None = None,
                 degradation: DegradationConfig | None = None, channel_shuffle: bool = False,
                 detail_min: float = 0.0, detail_tries: int = 1) -> None:
        if patch_size % scale:
            raise UsageError(f"data.patch_size ({patch_size}) must be a multiple of the scale ({scale})")
        if len(kinds) != len(kind_probs):
            raise UsageError("data.kinds and data.kind_probs must have the same length")
        if not hr_images:
            raise CvsuiteError("no training images")
        if detail_min < 0 or detail_tries < 1:
            raise UsageError("data.detail_min must be >= 0 and data.detail_tries >= 1")
        self.detail_min, self.detail_tries = float(detail_min), int(detail_tries)
        self.hr, self.lr = hr_images, lr_images
        self.scale, self.patch = scale, patch_size
        self.kinds, self.kind_probs = list(kinds), np.asarray(kind_probs, np.float64) / sum(kind_probs)
        self.length, self.channel_shuffle = length, channel_shuffle
        self.degradation = degradation or DegradationConfig()
        check_degradation_config(self.degradation)
        self.margin = scale * int(np.ceil(12 / scale))  # ≥ half the 21-px kernel, multiple of scale

    def __len__(self) -> int:
        return self.length

    def _paired(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        hr, lr = self.hr[idx], self.lr[idx]  # type: ignore[index]
        lp, s = self.patch // self.scale, self.scale

        def draw() -> tuple[int, int]:
            return random.randint(0, lr.shape[0] - lp), random.randint(0, lr.shape[1] - lp)

        def detail_of(yx: tuple[int, int]) -> float:
            return float(luma_laplacian(hr[yx[0] * s:(yx[0] + lp) * s, yx[1] * s:(yx[1] + lp) * s]).mean())

        y, x = self._pick_corner(draw, detail_of)
        return hr[y * s:(y + lp) * s, x * s:(x + lp) * s], lr[y:y + lp, x:x + lp]

    def _pick_corner(self, draw: Callable[[], tuple[int, int]],
                     detail_of: Callable[[tuple[int, int]], float]) -> tuple[int, int]:
        """A crop corner from ``draw()``: the first of up to ``detail_tries`` whose HR patch detail
        (``detail_of``) reaches ``detail_min``, else the most detailed one; one draw and no measurement when
        the option is off."""
        corner = draw()
        if self.detail_min <= 0:
            return corner
        best, best_detail = corner, -1.0
        for attempt in range(self.detail_tries):
            if attempt:
                corner = draw()
            detail = detail_of(corner)
            if detail >= self.detail_min:
                return corner
            if detail > best_detail:
                best, best_detail = corner, detail
        return best

    def degradation_crop(self, hr: np.ndarray) -> np.ndarray:
        """The (patch + 2·margin)² crop of ``hr`` that an on-the-fly sample starts from (reflect-padded when
        the image is smaller), picked as the dataset does, detail option included."""
        size = self.patch + 2 * self.margin
        if hr.shape[0] < size or hr.shape[1] < size:
            pad_h, pad_w = max(0, size - hr.shape[0]), max(0, size - hr.shape[1])
            hr = np.pad(hr, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        m = self.margin

        def draw() -> tuple[int, int]:
            return random.randint(0, hr.shape[0] - size), random.randint(0, hr.shape[1] - size)

        def detail_of(yx: tuple[int, int]) -> float:
            # the Laplacian is taken on the whole crop and averaged over the HR patch only, so the 3×3 kernel sees
            # real neighbours (the same values as on the full image, as in evaluation/sr_photo_detail.py)
            lap = luma_laplacian(hr[yx[0]:yx[0] + size, yx[1]:yx[1] + size])
            return float(lap[m:m + self.patch, m:m + self.patch].mean())

        y, x = self._pick_corner(draw, detail_of)
        return hr[y:y + size, x:x + size]

    def _degraded(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        crop = augment([self.degradation_crop(self.hr[idx])], self.channel_shuffle)[0]
        m = self.margin
        kind = self.kinds[int(np.random.choice(len(self.kinds), p=self.kind_probs))]
        lr, _ = degrade(crop.astype(np.float32) / 255.0, self.scale, kind, cfg=self.degradation)
        ml = m // self.scale
        return crop[m:m + self.patch, m:m + self.patch], quantize(lr[ml:-ml, ml:-ml])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        idx = random.randrange(len(self.hr))
        if self.lr is not None:
            hr, lr = self._paired(idx)
            hr, lr = augment([hr, lr], self.channel_shuffle)
        else:
            hr, lr = self._degraded(idx)
        return {"lr": to_tensor(lr), "hr": to_tensor(hr)}


def load_hr_images(sources: Sequence[str], min_size: int = 1) -> list[np.ndarray]:
    """HR uint8 images from folders (any supported layout), ``photo:NAME`` bundled photos and/or
    ``wallpaper:NAME`` fetched photos; an image smaller than ``min_size`` on a side is refused (one
    error naming it)."""
    images = []
    for source in sources:
        if source.startswith("photo:"):
            images.append(check_min_size(bundled_photo(source[len("photo:"):]), min_size, source))
            continue
        if source.startswith(WALLPAPER_PREFIX):
            images.append(check_min_size(load_wallpaper(source[len(WALLPAPER_PREFIX):]), min_size, source))
            continue
        for folder in resolve_hr_dirs(source):
            images.extend(check_min_size(read_rgb_uint8(p), min_size, str(p)) for p in list_images(folder))
    if not images:
        raise CvsuiteError(f"no training images found in {list(sources)}")
    return images
