"""Extra real training photos for reproducing the shipped SR weights: the eight real photographs
of Debian's ``plasma-workspace-wallpapers`` package (the others in it are paintings/renders).

Fetched by ``python tools/fetch_sr_photos.py`` (``apt-get download`` + ``dpkg -x``; every JPEG's
sha256 is pinned below) into :func:`photo_dir`, and read in training configs as
``wallpaper:NAME``. Only the shipped-weights recipe uses them; users train on DIV2K / Flickr2K
from disk.

Licence: the photos are KDE Plasma wallpapers, ``metadata.json`` of each says LGPLv3 (authors
below), the package's ``debian/copyright`` says GPL-2+ for all files. They are not redistributed
by cvsuite: the script fetches them from Debian on the user's machine.

Why half size: the files are 2560×1600 JPEGs at about 1.1 bit/pixel, with compression ringing at
1:1. An HR target with JPEG artefacts teaches the network to draw them; an area downscale by 2
(as DIV2K-style pipelines do with oversized sources) averages them away, leaving 1280×800 clean
photos.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from shared.errors import CvsuiteError

DEB_PACKAGE = "plasma-workspace-wallpapers"
DEB_VERSION = "4:5.27.5-2"  # Debian 12 (bookworm)
DEB_SHA256 = "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b"

# name -> (author, sha256 of usr/share/wallpapers/<name>/contents/images/2560x1600.jpg)
WALLPAPERS: dict[str, tuple[str, str]] = {
    "BytheWater": ("Maciej Wiklo", "c272434ef39f2abf1ed48a15a8910088020f3165329a5092f3940ec9464bc05f"),
    "ColdRipple": ("Risto Saukonpää", "05bef6722fc0ed81292cceb3ed026c38d17e510f3c84be7d68610c2b1a723c3f"),
    "DarkestHour": ("Risto Saukonpää", "8e3703fae3a3c217b1fc2b399b706cd3720584268d071ba153e4809daa55f1ce"),
    "EveningGlow": ("Ian Hex", "586682dcb362b9f620068f10138f87d0d3649939aef238adc5807cb951976a7a"),
    "FallenLeaf": ("Martin Klapetek", "95603a6560c7e8d50e0e03b3f4adbe39c5258c72528e74e4ecaea1daf4e499de"),
    "OneStandsOut": ("Risto Saukonpää", "cb507baf1dafdcae362264f3aba9483ed4be5f6c9fdd770f0ec0920c6d9e80fd"),
    "Path": ("Risto Saukonpää", "7477457d7f17b736259f1b021864778ad4ba802cf3214e6728181ff29126bba8"),
    "ColorfulCups": ("Dmitri Popov", "6e0f3a72feb5a4a9fec191b77e34874c3c69e2d93040deb3f07773e73385023d"),
}
SOURCE_PREFIX = "wallpaper:"
ENV_DIR = "CVSUITE_SR_PHOTOS"


def photo_dir() -> Path:
    """Where the fetched photos live: ``$CVSUITE_SR_PHOTOS`` or ``~/.cache/cvsuite/sr_photos``."""
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else Path.home() / ".cache" / "cvsuite" / "sr_photos"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wallpaper_path(name: str, folder: Path | None = None) -> Path:
    """The verified JPEG of one wallpaper; one clear error if unknown, missing or altered."""
    if name not in WALLPAPERS:
        raise CvsuiteError(f"unknown wallpaper {name!r}; choose one of {', '.join(WALLPAPERS)}")
    path = (folder or photo_dir()) / f"{name}.jpg"
    if not path.is_file():
        raise CvsuiteError(f"{path}: missing; fetch the training photos with `python tools/fetch_sr_photos.py` "
                           f"(or point ${ENV_DIR} at their folder)")
    if file_sha256(path) != WALLPAPERS[name][1]:
        raise CvsuiteError(f"{path}: sha256 differs from the pinned one; re-run `python tools/fetch_sr_photos.py --force`")
    return path


def load_wallpaper(name: str, folder: Path | None = None) -> np.ndarray:
    """One wallpaper as uint8 RGB, area-downscaled by 2 (1280×800; see the module docstring)."""
    import cv2

    bgr = cv2.imread(str(wallpaper_path(name, folder)), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CvsuiteError(f"{name}: cannot decode the wallpaper JPEG")
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[..., ::-1])


def install_from_tree(root: Path, dest: Path) -> list[Path]:
    """Copy the eight photos out of an extracted package tree (``dpkg -x`` output) into ``dest``
    as ``<name>.jpg``, each checked against its pinned sha256 (nothing is written on a mismatch)."""
    sources = {}
    for name, (_, sha) in WALLPAPERS.items():
        src = root / "usr" / "share" / "wallpapers" / name / "contents" / "images" / "2560x1600.jpg"
        if not src.is_file():
            raise CvsuiteError(f"{src}: not in the extracted package ({DEB_PACKAGE} {DEB_VERSION} expected)")
        if file_sha256(src) != sha:
            raise CvsuiteError(f"{src}: sha256 differs from the pinned one ({DEB_PACKAGE} {DEB_VERSION} expected)")
        sources[name] = src
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, src in sources.items():
        target = dest / f"{name}.jpg"
        target.write_bytes(src.read_bytes())
        written.append(target)
    return written
