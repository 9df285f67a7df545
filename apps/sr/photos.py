"""Extra real training photos for reproducing the shipped SR weights: real photographs taken out of
pinned Debian 12 (bookworm) wallpaper packages (their paintings and renders are left out).

Fetched by ``python tools/fetch_sr_photos.py`` (``apt-get download`` + ``dpkg -x`` per package;
every JPEG's sha256 is pinned below) into :func:`photo_dir` as ``<name>.jpg``, and read in training
configs as ``wallpaper:NAME``. Only the shipped-weights recipe uses them; users train on DIV2K /
Flickr2K from disk. They are not redistributed by cvsuite: the script fetches them from Debian on
the user's machine.

Packages and licences (each package's ``debian/copyright``; per file in :data:`WALLPAPERS`):

* ``plasma-workspace-wallpapers`` 4:5.27.5-2: 8 photos (issue 23, first round); LGPLv3 per each
  wallpaper's ``metadata.json``, GPL-2+ per the package's copyright file.
* ``lomiri-wallpapers-16.04`` 20.04.0-2: 10 photos; CC-BY-4.0, CC-BY-SA-4.0 or CC0-1.0 per file.
* ``lomiri-wallpapers-20.04`` 20.04.0-2: 1 photo (Kleiber); CC-BY-SA-3.0.
* ``mate-backgrounds`` 1.26.0-1: 9 photos of its ``nature`` folder; GPL-2+.

Why reduced size: wallpaper JPEGs are compressed for display (about 0.5–2 bit/pixel for the large
ones) and some are soft at 1:1. An HR target with JPEG ringing or blur teaches the network to draw
it; an area downscale (as DIV2K-style pipelines do with oversized sources) averages it away. Each
file has its own integer factor (``reduce``), chosen by looking at 1:1 crops of the reduced image:
2 for the 2560×1600 plasma photos, 2–4 for the 3–6k-px lomiri photos, 1 for the few files that are
already clean at 1:1 (high bit rate, ~2k px).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import CvsuiteError


@dataclass(frozen=True)
class DebPackage:
    """One pinned Debian package that photos are taken from."""

    version: str
    deb_sha256: str  # of the .deb apt-get downloaded here (informational: every photo is checked itself)
    licence: str


@dataclass(frozen=True)
class Wallpaper:
    """One pinned photo: where it is inside its package, who made it, and how it is read."""

    package: str
    member: str  # path inside the extracted package (``dpkg -x`` tree)
    author: str
    licence: str
    sha256: str
    reduce: int  # area-downscale factor applied when the photo is read


PACKAGES: dict[str, DebPackage] = {
    "plasma-workspace-wallpapers": DebPackage(
        "4:5.27.5-2", "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b",
        "GPL-2+ (debian/copyright); LGPL-3 per each wallpaper's metadata.json"),
    "lomiri-wallpapers-16.04": DebPackage(
        "20.04.0-2", "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
        "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 per file (debian/copyright)"),
    "lomiri-wallpapers-20.04": DebPackage(
        "20.04.0-2", "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709",
        "per file (debian/copyright); the one photo used, Kleiber: CC-BY-SA-3.0"),
    "mate-backgrounds": DebPackage(
        "1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04",
        "GPL-2+ (debian/copyright)"),
}

_PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
_LOMIRI = "usr/share/backgrounds/{}.jpg"
_MATE = "usr/share/backgrounds/mate/nature/{}.jpg"


def _plasma(name: str, author: str, sha: str) -> Wallpaper:
    return Wallpaper("plasma-workspace-wallpapers", _PLASMA.format(name), author, "LGPL-3 / GPL-2+", sha, 2)


def _lomiri(stem: str, author: str, licence: str, sha: str, reduce: int, package: str = "lomiri-wallpapers-16.04") -> Wallpaper:
    return Wallpaper(package, _LOMIRI.format(stem), author, licence, sha, reduce)


def _mate(stem: str, author: str, sha: str, reduce: int) -> Wallpaper:
    return Wallpaper("mate-backgrounds", _MATE.format(stem), author, "GPL-2+", sha, reduce)


# name (``wallpaper:NAME``, file ``<name>.jpg``) -> pinned photo. The first eight are the first round's.
WALLPAPERS: dict[str, Wallpaper] = {
    "BytheWater": _plasma("BytheWater", "Maciej Wiklo", "c272434ef39f2abf1ed48a15a8910088020f3165329a5092f3940ec9464bc05f"),
    "ColdRipple": _plasma("ColdRipple", "Risto Saukonpää", "05bef6722fc0ed81292cceb3ed026c38d17e510f3c84be7d68610c2b1a723c3f"),
    "DarkestHour": _plasma("DarkestHour", "Risto Saukonpää", "8e3703fae3a3c217b1fc2b399b706cd3720584268d071ba153e4809daa55f1ce"),
    "EveningGlow": _plasma("EveningGlow", "Ian Hex", "586682dcb362b9f620068f10138f87d0d3649939aef238adc5807cb951976a7a"),
    "FallenLeaf": _plasma("FallenLeaf", "Martin Klapetek", "95603a6560c7e8d50e0e03b3f4adbe39c5258c72528e74e4ecaea1daf4e499de"),
    "OneStandsOut": _plasma("OneStandsOut", "Risto Saukonpää", "cb507baf1dafdcae362264f3aba9483ed4be5f6c9fdd770f0ec0920c6d9e80fd"),
    "Path": _plasma("Path", "Risto Saukonpää", "7477457d7f17b736259f1b021864778ad4ba802cf3214e6728181ff29126bba8"),
    "ColorfulCups": _plasma("ColorfulCups", "Dmitri Popov", "6e0f3a72feb5a4a9fec191b77e34874c3c69e2d93040deb3f07773e73385023d"),
    # lomiri-wallpapers-16.04 (4224×3168 … 5312×2988, except Picture_1A 1365×1074 at 6.5 bit/pixel)
    "Dragonfly": _lomiri("Dragonfly_by_Bolly", "Bolly", "CC-BY-SA-4.0",
                         "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3", 3),
    "Fig": _lomiri("Picture_0B_by_freespace", "Trevor \"Freespace\"", "CC-BY-4.0",
                   "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad", 2),
    "Brushes": _lomiri("Picture_1A_by_freespace", "Trevor \"Freespace\"", "CC-BY-4.0",
                       "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b", 1),
    "Wine": _lomiri("Wine_by_Jakkub_Mede", "Jakub Mede", "CC-BY-4.0",
                    "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74", 2),
    "Aitzgorri": _lomiri("aitzgorri_by_Aitzol_Berasategi", "Aitzol Berasategi", "CC-BY-4.0",
                         "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36", 2),
    "Friends": _lomiri("friends_by_Aitzol_Berasategi", "Aitzol Berasategi", "CC-BY-4.0",
                       "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d", 2),
    "Life": _lomiri("life_by_Aitzol_Berasategi", "Aitzol Berasategi", "CC-BY-4.0",
                    "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05", 2),
    "PicosDeEuropa": _lomiri("picosdeeuropa_by_Aitzol_Berasategi", "Aitzol Berasategi", "CC-BY-4.0",
                             "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a", 2),
    "Seeding": _lomiri("seeding_by_Clements_Engelhardt", "Clemens Engelhardt", "CC0-1.0",
                       "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f", 3),
    "Sunset": _lomiri("sunset_by_Aitzol_Berasategi", "Aitzol Berasategi", "CC-BY-4.0",
                      "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18", 3),
    # lomiri-wallpapers-20.04 (6028×3391)
    "Kleiber": _lomiri("Kleiber_by_Lukas_Baubkus", "Lukas Baubkus", "CC-BY-SA-3.0",
                       "6572410c09f4492c74ccadde133565a14c0161617d5917d4c820c66d65a44ba7", 4, "lomiri-wallpapers-20.04"),
    # mate-backgrounds, nature/ (1280×1024 … 2560×1920)
    "Blinds": _mate("Blinds", "Lennart Poettering, Andrea Cimitan",
                    "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600", 1),
    "Dune": _mate("Dune", "Marco Cogoni, Hylke Bons", "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91", 1),
    "Garden": _mate("Garden", "Charles Barbin", "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78", 2),
    "GreenMeadow": _mate("GreenMeadow", "Timothy Schellhase, Lapo Calamandrei",
                         "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832", 1),
    "LadyBird": _mate("LadyBird", "Charles Barbin", "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d", 2),
    "RainDrops": _mate("RainDrops", "blackcombwhistler07", "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16", 1),
    "TwoWings": _mate("TwoWings", "Charles Barbin, Hylke Bons", "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb", 2),
    "Wood": _mate("Wood", "Jean-François Fortin Tam", "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07", 2),
    "YellowFlower": _mate("YellowFlower", "Charles Barbin", "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306", 2),
}
# the first round's eight (plasma-workspace-wallpapers): the photos of the stage 1-3 recipe
FIRST_ROUND = tuple(name for name, w in WALLPAPERS.items() if w.package == "plasma-workspace-wallpapers")
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
    if file_sha256(path) != WALLPAPERS[name].sha256:
        raise CvsuiteError(f"{path}: sha256 differs from the pinned one; re-run `python tools/fetch_sr_photos.py --force`")
    return path


def load_wallpaper(name: str, folder: Path | None = None) -> np.ndarray:
    """One wallpaper as uint8 RGB, area-downscaled by its ``reduce`` factor (see the module docstring)."""
    import cv2

    bgr = cv2.imread(str(wallpaper_path(name, folder)), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CvsuiteError(f"{name}: cannot decode the wallpaper JPEG")
    factor = WALLPAPERS[name].reduce
    if factor > 1:
        h, w = bgr.shape[:2]
        bgr = cv2.resize(bgr, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr[..., ::-1])


def install_from_tree(root: Path, dest: Path, package: str = "plasma-workspace-wallpapers") -> list[Path]:
    """Copy the pinned photos of one package out of its extracted tree (``dpkg -x`` output) into
    ``dest`` as ``<name>.jpg``, each checked against its pinned sha256 (nothing is written on a mismatch)."""
    if package not in PACKAGES:
        raise CvsuiteError(f"unknown photo package {package!r}; choose one of {', '.join(PACKAGES)}")
    version = PACKAGES[package].version
    sources = {}
    for name, photo in WALLPAPERS.items():
        if photo.package != package:
            continue
        src = root / photo.member
        if not src.is_file():
            raise CvsuiteError(f"{src}: not in the extracted package ({package} {version} expected)")
        if file_sha256(src) != photo.sha256:
            raise CvsuiteError(f"{src}: sha256 differs from the pinned one ({package} {version} expected)")
        sources[name] = src
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, src in sources.items():
        target = dest / f"{name}.jpg"
        target.write_bytes(src.read_bytes())
        written.append(target)
    return written
