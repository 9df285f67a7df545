"""Image files and the real photos that ship inside installed packages (no downloads).

Every app lists, reads and writes images through here, so grey / RGBA / 16-bit handling and the
error messages are the same everywhere.
"""
from __future__ import annotations

import functools
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import CvsuiteError
from ..guard import write_atomic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

# Real photographs bundled with scikit-image (CC0 / public domain), matplotlib and scikit-learn.
BUNDLED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
                  "retina", "immunohistochemistry", "camera", "moon", "brick", "grass", "gravel",
                  "grace_hopper", "stereo_motorcycle_right", "coins", "china", "flower")
# photos bundled with scikit-learn (``sklearn.datasets.load_sample_image``)
_SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}


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


# Largest image cvsuite decodes (PIL's decompression-bomb limit, about 13400 x 13400). Checked from the
# header BEFORE decoding, so a tiny file claiming 100000 x 100000 pixels costs nothing.
MAX_IMAGE_PIXELS = 178_956_970


def _quiet_opencv() -> None:
    """OpenCV prints decoder warnings (e.g. "PNG input buffer is incomplete") straight to the terminal;
    read_image turns every such problem into one CvsuiteError instead, so keep OpenCV to errors."""
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # builds without the logging module
        pass


_DECODE_LOCK = threading.Lock()
_SINKS: dict[int, IO[bytes]] = {}  # per process (a forked DataLoader worker must not share its parent's)
# What libjpeg / libpng print (straight to the terminal) when the data are damaged; benign notes such
# as "libpng warning: iCCP: known incorrect sRGB profile" do not match and are simply dropped.
_DAMAGED = re.compile(r"corrupt|premature|error|invalid|incomplete|truncat", re.IGNORECASE)


def _decode_quietly(data: bytes) -> tuple[np.ndarray | None, str]:
    """``cv2.imdecode(data, IMREAD_UNCHANGED)`` and what the C decoders printed to stderr meanwhile.

    libjpeg and libpng report damage ("Corrupt JPEG data: ...", "libpng error: ...") by printing to
    file descriptor 2 and may still return a half-garbage image; the text is captured so the caller
    can refuse the file with one line instead. Decodes in one process are serialised by a lock
    (fd 2 is process-wide); cvsuite decodes in DataLoader worker processes, not threads.
    """
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8)
    with _DECODE_LOCK:
        try:
            sink = _SINKS.get(os.getpid())
            if sink is None:
                sink = _SINKS[os.getpid()] = tempfile.TemporaryFile()
            sink.seek(0)
            sink.truncate()
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable fd 2 (e.g. closed): decode without listening
            return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED), ""
        try:
            os.dup2(sink.fileno(), 2)
            try:
                raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        sink.seek(0)
        printed = sink.read(4096).decode(errors="replace")
    return raw, printed


def image_size(path: str | Path, data: bytes | None = None) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding pixels; None if PIL cannot parse the header.

    Raises CvsuiteError when the header claims more than :data:`MAX_IMAGE_PIXELS` pixels.
    """
    import io
    import re
    import warnings

    from PIL import Image

    path = Path(path)
    source = io.BytesIO(data) if data is not None else path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                width, height = img.size
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise CvsuiteError(f"{path}: the header claims {claimed}, more than the {MAX_IMAGE_PIXELS:,} cvsuite "
                           "decodes (corrupt file or decompression bomb)") from None
    except Exception:  # noqa: BLE001 - unknown/corrupt header: the decoder gives the verdict
        return None
    if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
        raise CvsuiteError(f"{path}: the header claims {width} x {height} pixels (more than "
                           f"{MAX_IMAGE_PIXELS:,} or empty; corrupt file or decompression bomb)")
    return width, height


def read_image(path: str | Path) -> ImageData:
    """Read grey / RGB / RGBA, 8- or 16-bit (16-bit keeps its full range in the float output).

    Every problem is one CvsuiteError naming the file: missing, empty (0 bytes), unreadable, a header
    claiming more than :data:`MAX_IMAGE_PIXELS` (checked before decoding), corrupt or truncated data
    (a JPEG cut short or with damaged data is refused, never used half-decoded), unsupported pixel
    types. The bytes are decoded from memory (``cv2.imdecode``, which treats a premature end of file
    as an error) while the decoders' own stderr warnings are captured (see :func:`_decode_quietly`).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CvsuiteError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise CvsuiteError(f"{path}: empty file (0 bytes), not an image")
    image_size(path, data)
    _quiet_opencv()
    try:
        raw, printed = _decode_quietly(data)
    except cv2.error as exc:
        detail = [line for line in str(exc).splitlines() if line.strip()]
        raise CvsuiteError(f"{path}: cannot decode image ({detail[-1].strip()[:160] if detail else 'OpenCV error'})") from None
    damage = [line.strip() for line in printed.splitlines() if _DAMAGED.search(line)]
    if raw is None or raw.size == 0 or damage:
        why = damage[0][:160] if damage else "corrupt, truncated or not an image"
        raise CvsuiteError(f"{path}: cannot decode image ({why})")
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
    # Encode in memory and write the bytes from Python: cv2.imwrite cannot take a file name that is
    # not UTF-8 (it crashed the process), and the atomic write never writes through a link.
    extension = path.suffix or ".png"
    try:
        ok, encoded = cv2.imencode(extension, np.ascontiguousarray(img))
    except cv2.error as exc:  # e.g. an extension OpenCV has no writer for
        detail = [line for line in str(exc).splitlines() if line.strip()]
        raise CvsuiteError(f"{path}: cannot write image ({detail[-1].strip()[:160] if detail else 'OpenCV error'})") from None
    if not ok:
        raise CvsuiteError(f"{path}: cannot write image")
    write_atomic(path, encoded.tobytes())


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
    if name in _SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        img = load_sample_image(_SKLEARN_PHOTOS[name])
    else:
        import skimage.data

        right = name == "stereo_motorcycle_right"
        img = getattr(skimage.data, "stereo_motorcycle" if right else name)()
        if isinstance(img, tuple):  # stereo_motorcycle returns (left, right, disparity)
            img = img[1 if right else 0]
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img / img.max() * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    out = np.ascontiguousarray(img[..., :3])
    out.setflags(write=False)  # cached: callers must copy before editing
    return out


def bundled_photo(name: str) -> np.ndarray:
    """A photo that ships with scikit-image / matplotlib / scikit-learn as uint8 RGB (H, W, 3); a fresh copy."""
    return _bundled_photo_cached(name).copy()
