"""Readers for the HanCo and FreiHAND on-disk layouts, and the 21-keypoint hand skeleton.

HanCo (``ROOT/``)::

    rgb/SSSS/camC/FFFFFFFF.jpg            green-screen recordings (8 cameras)
    rgb_merged/ rgb_homo/ rgb_color_auto/ rgb_color_sample/   background variants, only for sequences
                                          recorded on the green screen (older name rgb_homogeneous/ read too)
    mask_hand/SSSS/camC/FFFFFFFF.jpg      hand segmentation
    calib/SSSS/FFFFFFFF.json              {"K": [C x 3x3], "M": [C x 4x4]} (M: world -> camera, metres)
    xyz/SSSS/FFFFFFFF.json                21 x 3 world keypoints (metres)
    shape/SSSS/FFFFFFFF.json              MANO fit {"poses": 48, "shapes": 10, "global_t": 3} in the world
                                          frame (HanCo; our synthetic hand writes its own parameters here)
    meta.json                             per sequence, per frame: is_train, is_valid, has_fit, subject_id

A root may mix green-screen sequences (all folders) with sequences that have only ``rgb/``: a
variant missing for a sequence falls back to ``rgb/``. ``meta.json`` drives use: labels are only the
frames with a valid fit (``has_fit`` and ``is_valid``), split by ``is_train``; pretraining uses every
image that exists.

FreiHAND (``ROOT/``)::

    training/rgb/%08d.jpg, training/mask/%08d.jpg, training_{xyz,K,mano,verts,scale}.json
    evaluation/rgb/%08d.jpg, evaluation_{xyz,K,verts,scale}.json

Every malformed file raises one :class:`CvsuiteError` naming the file (missing calib, calib
without ``K``, keypoints that are not 21 x 3, ...).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import CvsuiteError

NUM_KP = 21
# FreiHAND / HanCo order: wrist, then thumb, index, middle, ring, pinky from palm to tip.
KEYPOINT_NAMES = ["wrist"] + [f"{f}_{j}" for f in ("thumb", "index", "middle", "ring", "pinky")
                              for j in ("mcp", "pip", "dip", "tip")]
PARENTS = np.array([-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19])
BONES = [(int(PARENTS[i]), i) for i in range(1, NUM_KP)]
ROOT, REF_BONE = 0, (9, 10)  # FreiHAND's scale = length of the middle finger's MCP->PIP bone
BACKGROUND_VARIANTS = ("rgb_merged", "rgb_homo", "rgb_homogeneous", "rgb_color_auto", "rgb_color_sample")
META_FLAGS = ("is_train", "is_valid", "has_fit")
NUM_MESH_VERTS = 778


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parsed JSON; one error naming the file (and line) when missing, unreadable or malformed."""
    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CvsuiteError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CvsuiteError(f"{path}: cannot read {what} ({type(exc).__name__})") from None


def as_array(value: Any, shape: tuple[int | None, ...], path: str | Path, what: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape`` (None = any size); error names file and field."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CvsuiteError(f"{path}: {what} is not a numeric array") from None
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok:
        want = " x ".join("N" if s is None else str(s) for s in shape)
        raise CvsuiteError(f"{path}: {what} has shape {'x'.join(map(str, arr.shape)) or 'scalar'}, expected {want}")
    if not np.isfinite(arr).all():
        raise CvsuiteError(f"{path}: {what} holds NaN or inf")
    return arr


def project(xyz_world: np.ndarray, K: np.ndarray, M: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (N, 2) and camera-frame points (N, 3) of world points under ``K`` and ``M``."""
    xyz = np.asarray(xyz_world, np.float64)
    cam = xyz if M is None else xyz @ M[:3, :3].T + M[:3, 3]
    uvw = cam @ K.T
    return uvw[:, :2] / uvw[:, 2:3], cam


def reference_scale(xyz: np.ndarray) -> float:
    """FreiHAND's metric scale: the length of the middle finger's MCP->PIP bone."""
    return float(np.linalg.norm(xyz[REF_BONE[1]] - xyz[REF_BONE[0]]))


# ---- HanCo ------------------------------------------------------------------------------------------

@dataclass
class Calib:
    """Per-camera intrinsics ``K`` (C, 3, 3) and world->camera extrinsics ``M`` (C, 4, 4)."""

    K: np.ndarray
    M: np.ndarray


def read_calib(path: str | Path) -> Calib:
    data = read_json(path, "calib file")
    if not isinstance(data, dict):
        raise CvsuiteError(f"{path}: calib must be a JSON object with 'K' and 'M'")
    for key in ("K", "M"):
        if key not in data:
            raise CvsuiteError(f"{path}: calib has no '{key}'")
    K = as_array(data["K"], (None, 3, 3), path, "calib K")
    M = as_array(data["M"], (len(K), 4, 4), path, "calib M")
    check_intrinsics(K, path)
    if np.abs(M).max(initial=0.0) > 1e6:
        raise CvsuiteError(f"{path}: calib M holds values beyond 1e6 (metres); not a camera pose")
    return Calib(K, M)


def check_intrinsics(K: np.ndarray, path: str | Path) -> None:
    """Pinhole intrinsics ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``: positive focal lengths and values a
    camera can have (an all-zero or 1e308 K would project every point to NaN or infinity)."""
    for cam, k in enumerate(K.reshape(-1, 3, 3)):
        where = f"{path}: calib K[{cam}]"
        if not (k[0, 0] > 0 and k[1, 1] > 0):
            raise CvsuiteError(f"{where}: focal lengths must be positive, got fx={k[0, 0]:g}, fy={k[1, 1]:g}")
        if np.abs(k).max() > 1e6:
            raise CvsuiteError(f"{where}: values beyond 1e6 pixels; not a camera matrix")
        if not np.allclose(k[2], [0.0, 0.0, 1.0]) or abs(k[1, 0]) > 0 or abs(k[2, 0]) > 0:
            raise CvsuiteError(f"{where}: the last row must be [0, 0, 1] (a pinhole camera matrix)")


def read_xyz(path: str | Path) -> np.ndarray:
    data = read_json(path, "keypoint file")
    return as_array(data, (NUM_KP, 3), path, "xyz")


_NUM = re.compile(r"^\d+$")
_CAM = re.compile(r"^cam(\d+)$")


class HanCo:
    """A HanCo root: sequences, cameras and frames discovered from ``rgb/`` (or a background variant)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise CvsuiteError(f"{self.root}: HanCo root not found (expected rgb/, calib/, xyz/ ...)")
        self.variants = [v for v in ("rgb",) + BACKGROUND_VARIANTS if (self.root / v).is_dir()]
        if not self.variants:
            raise CvsuiteError(f"{self.root}: no rgb/ (or rgb_merged/ ...) folder; not a HanCo root")
        base = self.root / self.variants[0]
        self._has: dict[tuple[str, str], bool] = {}
        self.sequences: list[str] = sorted(p.name for p in base.iterdir() if p.is_dir() and _NUM.match(p.name))
        if not self.sequences:
            raise CvsuiteError(f"{base}: no sequence folders (SSSS)")
        self.cameras: dict[str, list[int]] = {}
        self.frames: dict[str, list[int]] = {}
        for seq in self.sequences:
            cams = sorted(int(m.group(1)) for p in (base / seq).iterdir() if (m := _CAM.match(p.name)))
            if not cams:
                raise CvsuiteError(f"{base / seq}: no camC folders")
            self.cameras[seq] = cams
            frames = sorted(int(p.stem) for p in (base / seq / f"cam{cams[0]}").iterdir()
                            if p.suffix.lower() in (".jpg", ".png") and _NUM.match(p.stem))
            self.frames[seq] = frames
        meta = self.root / "meta.json"
        self.meta: dict[str, Any] = read_json(meta, "meta.json") if meta.is_file() else {}
        if not isinstance(self.meta, dict):
            raise CvsuiteError(f"{meta}: meta.json must be a JSON object")
        for key in META_FLAGS:
            if key in self.meta and not isinstance(self.meta[key], list):
                raise CvsuiteError(f"{meta}: '{key}' must be a list with one list of per-frame flags per sequence")

    def flag(self, key: str, seq: str, frame: int, default: bool = True) -> bool:
        """``meta.json``'s ``key`` (is_train / is_valid / has_fit) for one frame; ``default`` when absent."""
        table = self.meta.get(key)
        if table is None:
            return default
        i = int(seq)
        if i >= len(table) or not isinstance(table[i], list) or frame >= len(table[i]):
            raise CvsuiteError(f"{self.root / 'meta.json'}: '{key}' has no entry for sequence {seq} frame {frame}")
        return bool(table[i][frame])

    def samples(self, sequences: list[str] | None = None, labelled: bool = False,
                split: str = "all") -> list[tuple[str, int, int]]:
        """Every (sequence, camera, frame) of ``sequences`` (default all). ``labelled``: only frames with
        a valid fit (``has_fit`` and ``is_valid`` in meta.json); ``split`` "train" / "eval": only frames
        with ``is_train`` true / false ("all": both)."""
        if split not in ("all", "train", "eval"):
            raise CvsuiteError(f"HanCo split must be all, train or eval, got {split!r}")
        out = []
        for s in sequences or self.sequences:
            for f in self.frames[s]:
                if labelled and not (self.flag("has_fit", s, f) and self.flag("is_valid", s, f)):
                    continue
                if split != "all" and self.flag("is_train", s, f) != (split == "train"):
                    continue
                out += [(s, c, f) for c in self.cameras[s]]
        return out

    def has_variant(self, seq: str, variant: str) -> bool:
        """Whether ``variant/`` holds this sequence (sequences without green screen only have ``rgb/``)."""
        key = (seq, variant)
        if key not in self._has:
            self._has[key] = (self.root / variant / seq).is_dir()
        return self._has[key]

    def image_path(self, seq: str, cam: int, frame: int, variant: str = "rgb") -> Path:
        """The image of ``variant``; ``rgb/`` for a sequence that has no such variant."""
        if variant != "rgb" and not self.has_variant(seq, variant):
            variant = "rgb" if self.has_variant(seq, "rgb") else self.variants[0]
        return self.root / variant / seq / f"cam{cam}" / f"{frame:08d}.jpg"

    def has_mask(self, seq: str) -> bool:
        return self.has_variant(seq, "mask_hand") and self.has_variant(seq, "rgb")

    def mask_path(self, seq: str, cam: int, frame: int) -> Path:
        return self.root / "mask_hand" / seq / f"cam{cam}" / f"{frame:08d}.jpg"

    def read_image(self, seq: str, cam: int, frame: int, variant: str = "rgb") -> np.ndarray:
        """uint8 RGB (H, W, 3)."""
        from shared.data.images import read_image

        return np.round(read_image(self.image_path(seq, cam, frame, variant)).rgb * 255).astype(np.uint8)

    def read_mask(self, seq: str, cam: int, frame: int) -> np.ndarray:
        """bool (H, W): hand pixels (JPEG masks thresholded at 50 %)."""
        from shared.data.images import read_image

        return read_image(self.mask_path(seq, cam, frame)).rgb[..., 0] > 0.5

    def calib(self, seq: str, frame: int) -> Calib:
        return _cached_calib(str(self.root / "calib" / seq / f"{frame:08d}.json"))

    def xyz(self, seq: str, frame: int) -> np.ndarray:
        """21 x 3 world keypoints (metres)."""
        return read_xyz(self.root / "xyz" / seq / f"{frame:08d}.json")

    def shape(self, seq: str, frame: int) -> dict[str, Any]:
        path = self.root / "shape" / seq / f"{frame:08d}.json"
        data = read_json(path, "shape file")
        if not isinstance(data, dict):
            raise CvsuiteError(f"{path}: shape must be a JSON object")
        return data

    def mano_fit(self, seq: str, frame: int) -> dict[str, np.ndarray] | None:
        """The frame's MANO fit from ``shape/`` (world frame: ``poses`` 48, ``shapes`` 10, ``global_t`` 3,
        as HanCo ships them); None without a ``shape/`` file or when it holds no MANO fit (our synthetic
        hand's files hold bone lengths instead)."""
        from .mano import read_fit

        path = self.root / "shape" / seq / f"{frame:08d}.json"
        return read_fit(self.shape(seq, frame), path) if path.is_file() else None

    def is_left(self, seq: str, frame: int) -> bool:
        """True for a left hand: the frame's ``shape/`` file says ``"side": "left"`` (the synthetic data
        writes it); a frame without that entry counts as a right hand."""
        path = self.root / "shape" / seq / f"{frame:08d}.json"
        return path.is_file() and self.shape(seq, frame).get("side") == "left"

    def camera_view(self, seq: str, cam: int, frame: int) -> dict[str, np.ndarray]:
        """Keypoints of one image: ``uv`` (21, 2) pixels, ``xyz_cam`` (21, 3) metres, ``K`` (3, 3)."""
        calib = self.calib(seq, frame)
        if cam >= len(calib.K):
            raise CvsuiteError(f"{self.root / 'calib' / seq / f'{frame:08d}.json'}: no calibration for camera {cam} "
                               f"(holds {len(calib.K)})")
        uv, cam_xyz = project(self.xyz(seq, frame), calib.K[cam], calib.M[cam])
        return {"uv": uv, "xyz_cam": cam_xyz, "K": calib.K[cam]}


@lru_cache(maxsize=4096)
def _cached_calib(path: str) -> Calib:
    return read_calib(path)


# ---- FreiHAND ---------------------------------------------------------------------------------------

class FreiHAND:
    """A FreiHAND root, one split (``training`` or ``evaluation``); annotations are read on demand.

    ``training/rgb`` holds 4 versions of every annotated frame (green screen + 3 backgrounds):
    image ``i`` uses annotation ``i % N``.
    """

    def __init__(self, root: str | Path, split: str = "evaluation") -> None:
        if split not in ("training", "evaluation"):
            raise CvsuiteError(f"FreiHAND split must be training or evaluation, got {split!r}")
        self.root, self.split = Path(root), split
        if not self.root.is_dir():
            raise CvsuiteError(f"{self.root}: FreiHAND root not found")
        self._cache: dict[str, Any] = {}

    def _path(self, kind: str) -> Path:
        return self.root / f"{self.split}_{kind}.json"

    def has(self, kind: str) -> bool:
        return self._path(kind).is_file()

    def _list(self, kind: str, shape: tuple[int | None, ...]) -> np.ndarray:
        if kind not in self._cache:
            path = self._path(kind)
            data = read_json(path, f"FreiHAND {kind} file")
            if not isinstance(data, list) or not data:
                raise CvsuiteError(f"{path}: expected a non-empty list with one entry per frame")
            self._cache[kind] = as_array(data, (len(data),) + shape, path, kind)
        return self._cache[kind]

    def xyz(self) -> np.ndarray:
        """(N, 21, 3) camera-frame keypoints (metres)."""
        return self._list("xyz", (NUM_KP, 3))

    def K(self) -> np.ndarray:
        return self._check_len(self._list("K", (3, 3)), "K")

    def verts(self) -> np.ndarray:
        """(N, V, 3) mesh vertices (V = 778 for MANO; any V is accepted, as by the official eval)."""
        return self._check_len(self._list("verts", (None, 3)), "verts")

    def scale(self) -> np.ndarray:
        return self._check_len(self._list("scale", ()), "scale")

    def mano(self) -> np.ndarray:
        """(N, 61) MANO parameters (48 pose, 10 shape, 3 translation), stored as [[...]] per frame."""
        path = self._path("mano")
        data = read_json(path, "FreiHAND mano file")
        if not isinstance(data, list) or not data:
            raise CvsuiteError(f"{path}: expected a non-empty list with one entry per frame")
        return self._check_len(as_array(data, (len(data), 1, 61), path, "mano")[:, 0], "mano")

    def _check_len(self, arr: np.ndarray, kind: str) -> np.ndarray:
        n = len(self.xyz()) if self.has("xyz") else len(arr)
        if len(arr) != n:
            raise CvsuiteError(f"{self._path(kind)}: {len(arr)} entries, but {self._path('xyz').name} has {n}")
        return arr

    def __len__(self) -> int:
        for kind in ("xyz", "K", "verts", "scale"):
            if self.has(kind):
                return len(self._list(kind, {"xyz": (NUM_KP, 3), "K": (3, 3), "verts": (None, 3),
                                             "scale": ()}[kind]))
        raise CvsuiteError(f"{self.root}: no {self.split}_xyz.json / _K.json / _verts.json / _scale.json")

    def image_paths(self) -> list[Path]:
        folder = self.root / self.split / "rgb"
        if not folder.is_dir():
            raise CvsuiteError(f"{folder}: FreiHAND image folder not found")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png") and _NUM.match(p.stem))

    def image_path(self, index: int) -> Path:
        return self.root / self.split / "rgb" / f"{index:08d}.jpg"

    def mask_path(self, index: int) -> Path:
        return self.root / self.split / "mask" / f"{index % len(self):08d}.jpg"

    def annotation_index(self, image_index: int) -> int:
        return image_index % len(self)

    def view(self, image_index: int) -> dict[str, np.ndarray]:
        """``uv`` (21, 2), ``xyz_cam`` (21, 3), ``K`` for image ``image_index``."""
        i = self.annotation_index(image_index)
        xyz, K = self.xyz()[i], self.K()[i]
        uv, _ = project(xyz, K)
        return {"uv": uv, "xyz_cam": xyz, "K": K}
