"""Image files and the real photos that ship inside installed packages (no downloads).

Every app lists, reads and writes images through here, so grey / RGBA / 16-bit handling and the
error messages are the same everywhere.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CvsuiteError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Real photographs bundled with scikit-image (CC0 / public domain) and matplotlib.
BUNDLED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
                  "retina", "immunohistochemistry", "camera", "moon", "brick", "grass", "gravel",
                  "grace_hopper")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Sorted image files in ``folder`` (and below it with ``recursive``); error if it is no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CvsuiteError(f"not a folder: {folder}")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if is_image_file(p))


@dataclass
class ImageData:
    """A decoded image: ``rgb`` float32 (H, W, 3) in [0, 1]; ``alpha`` (H, W) or None."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    grey: bool
    bit_depth: int  # 8 or 16


def read_image(path: str | Path) -> ImageData:
    """Read grey / RGB / RGBA, 8- or 16-bit; one clear error for missing, corrupt or non-image files."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"{path}: no such file")
    try:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV allows
        reason = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else "decoder error"
        raise CvsuiteError(f"{path}: cannot decode image ({reason})") from None
    if raw is None or raw.size == 0:
        raise CvsuiteError(f"{path}: cannot decode image (corrupt or not an image)")
    if raw.dtype == np.uint8:
        depth, scale = 8, 255.0
    elif raw.dtype == np.uint16:
        depth, scale = 16, 65535.0
    else:
        raise CvsuiteError(f"{path}: unsupported pixel type {raw.dtype} (8- or 16-bit images only)")
    img = raw.astype(np.float32) / scale
    alpha = None
    if img.ndim == 2 or img.shape[2] == 1:
        grey = True
        img = img.reshape(img.shape[0], img.shape[1])
        rgb = np.repeat(img[..., None], 3, axis=2)
    elif img.shape[2] in (3, 4):
        grey = False
        if img.shape[2] == 4:
            alpha = np.ascontiguousarray(img[..., 3])
        rgb = np.ascontiguousarray(img[..., 2::-1])
    else:
        raise CvsuiteError(f"{path}: unsupported channel count {img.shape[2]}")
    return ImageData(rgb=rgb, alpha=alpha, grey=grey, bit_depth=depth)


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Write an RGB / RGBA / grey uint8 or uint16 array (channels last, RGB order) as PNG, JPEG, ..."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., [2, 1, 0, 3]]
    if not cv2.imwrite(str(path), np.ascontiguousarray(img)):
        raise CvsuiteError(f"{path}: cannot write image")


@functools.lru_cache(maxsize=None)
def _bundled_photo_cached(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import cv2
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            data = np.frombuffer(handle.read(), np.uint8)
        return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    if name not in BUNDLED_PHOTOS:
        raise CvsuiteError(f"unknown bundled photo {name!r}; choose one of {', '.join(BUNDLED_PHOTOS)}")
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img / img.max() * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    out = np.ascontiguousarray(img[..., :3])
    out.setflags(write=False)  # cached: callers must copy before editing
    return out


def bundled_photo(name: str) -> np.ndarray:
    """A photo that ships with scikit-image / matplotlib as uint8 RGB (H, W, 3); a fresh copy."""
    return _bundled_photo_cached(name).copy()
