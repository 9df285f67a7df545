"""MOTChallenge data: sequence layout, annotation/detection/result text files, frames and videos.

Layout (MOT15/16/17/20)::

    SEQ/seqinfo.ini          [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
    SEQ/img1/000001.jpg ...  1-based frame numbers
    SEQ/gt/gt.txt            frame,id,left,top,w,h,mark,class,visibility   (MOT16/17/20, 9 columns)
                             frame,id,left,top,w,h,conf,x,y,z              (MOT15, 10 columns)
    SEQ/det/det.txt          frame,-1,left,top,w,h,conf[,x,y,z]
    RES/SEQ.txt              frame,id,left,top,w,h,conf,-1,-1,-1           (tracker output)

Every malformed line raises :class:`CvsuiteError` naming the file and the 1-based line, because a
silently skipped row changes MOTA/IDF1 without anyone noticing.
"""
from __future__ import annotations

import configparser
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from shared.errors import CvsuiteError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass
class MOTTable:
    """Rows of one MOTChallenge text file as parallel arrays (one entry per box).

    ``boxes`` are ``(N, 4)`` float64 ``left, top, width, height`` in pixels; ``mark`` is the MOT16+
    "consider" flag (1 when absent), ``cls`` the class (-1 when absent), ``vis`` the visibility
    (-1 when absent), ``conf`` the confidence column.
    """

    frame: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    vis: np.ndarray
    mark: np.ndarray
    num_columns: int = 10

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @classmethod
    def empty(cls) -> "MOTTable":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0),
                   np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))

    @classmethod
    def from_rows(cls, frame, ids, boxes, conf=None, cls_=None, vis=None, mark=None) -> "MOTTable":
        """Build a table from array-likes; missing optional columns get their "absent" value."""
        n = len(frame)
        return cls(
            frame=np.asarray(frame, np.int64).reshape(n),
            ids=np.asarray(ids, np.int64).reshape(n),
            boxes=np.asarray(boxes, np.float64).reshape(n, 4),
            conf=np.ones(n) if conf is None else np.asarray(conf, np.float64).reshape(n),
            cls=np.full(n, -1, np.int64) if cls_ is None else np.asarray(cls_, np.int64).reshape(n),
            vis=np.full(n, -1.0) if vis is None else np.asarray(vis, np.float64).reshape(n),
            mark=np.ones(n, np.int64) if mark is None else np.asarray(mark, np.int64).reshape(n),
        )

    def select(self, mask: np.ndarray) -> "MOTTable":
        """Rows where ``mask`` is true (boolean mask or index array)."""
        return MOTTable(self.frame[mask], self.ids[mask], self.boxes[mask], self.conf[mask],
                        self.cls[mask], self.vis[mask], self.mark[mask], self.num_columns)

    def frame_rows(self) -> dict[int, np.ndarray]:
        """Map frame number -> row indices (in file order)."""
        order = np.argsort(self.frame, kind="stable")
        frames = self.frame[order]
        starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]]) if len(frames) else []
        out: dict[int, np.ndarray] = {}
        bounds = list(starts) + [len(frames)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            out[int(frames[a])] = order[a:b]
        return out


ALLOWED_COLUMNS = (6, 7, 8, 9, 10)


def read_mot_txt(path: str | Path, kind: str = "gt", num_frames: int | None = None) -> MOTTable:
    """Parse a MOTChallenge ``gt.txt`` / ``det.txt`` / result file, validating every line.

    ``kind`` only changes how 9/10-column files are read: for ``gt`` a 9-column file is MOT16+
    (mark, class, visibility) and a 10-column one MOT15 (conf, x, y, z). ``num_frames`` (from
    seqinfo.ini) turns frames outside ``1..num_frames`` into errors.
    """
    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CvsuiteError(f"{path}: not a text file ({exc.reason})") from None
    rows: list[list[float]] = []
    linenos: list[int] = []
    ncols: int | None = None
    first_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in line.replace(";", ",").replace("\t", ",").split(",")]
        if len(parts) == 1:
            parts = line.split()
        parts = [p.strip() for p in parts]
        if parts and parts[-1] == "":  # trailing comma
            parts = parts[:-1]
        where = f"{path}:{lineno}"
        if len(parts) not in ALLOWED_COLUMNS:
            raise CvsuiteError(f"{where}: expected 6-10 comma-separated columns "
                               f"(frame,id,left,top,width,height,...), got {len(parts)}")
        if ncols is None:
            ncols, first_line = len(parts), lineno
        elif len(parts) != ncols:
            raise CvsuiteError(f"{where}: {len(parts)} columns but line {first_line} has {ncols}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise CvsuiteError(f"{where}: value {bad!r} is not a number") from None
        _check_row(values, parts, where, kind, num_frames)
        rows.append(values)
        linenos.append(lineno)
    if not rows:
        table = MOTTable.empty()
        table.num_columns = ncols or 10
        return table
    arr = np.asarray(rows, np.float64)
    n, c = arr.shape
    conf = arr[:, 6] if c > 6 else np.ones(n)
    mark = np.ones(n, np.int64)
    cls_ = np.full(n, -1, np.int64)
    vis = np.full(n, -1.0)
    if kind == "gt" and c in (8, 9):
        mark = arr[:, 6].astype(np.int64)
        conf = np.ones(n)
        cls_ = arr[:, 7].astype(np.int64)
        if c == 9:
            vis = arr[:, 8]
    elif kind == "gt" and c >= 7:  # MOT15: column 7 is the "consider" flag (0 = ignore), as TrackEval reads it
        mark = arr[:, 6].astype(np.int64)
    table = MOTTable(arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2:6].copy(),
                     conf, cls_, vis, mark, num_columns=c)
    if kind in ("gt", "res"):
        _check_unique_ids(table, path, linenos)
    return table


MAX_COORD = 1e6  # pixels; larger boxes are corrupt values (and 1e308 overflows every IoU)
MOT_CLASSES = range(1, 14)  # MOTChallenge gt classes 1 (pedestrian) .. 13 (crowd)


def _check_row(values: list[float], parts: list[str], where: str, kind: str, num_frames: int | None) -> None:
    """Validate one parsed row (raises CvsuiteError naming ``file:line``)."""
    if not all(math.isfinite(v) for v in values):
        raise CvsuiteError(f"{where}: NaN or infinite value in {','.join(parts)!r}")
    frame = values[0]
    if frame != int(frame) or frame < 1:
        raise CvsuiteError(f"{where}: frame {parts[0]} must be an integer >= 1 (frames are 1-based)")
    if num_frames is not None and frame > num_frames:
        raise CvsuiteError(f"{where}: frame {int(frame)} is out of range (seqLength is {num_frames})")
    if values[1] != int(values[1]):
        raise CvsuiteError(f"{where}: id {parts[1]} is not an integer")
    if values[4] <= 0 or values[5] <= 0:
        raise CvsuiteError(f"{where}: box width/height must be positive, got {parts[4]},{parts[5]}")
    if max(abs(v) for v in values[2:6]) > MAX_COORD:
        raise CvsuiteError(f"{where}: box {','.join(parts[2:6])} is out of range (|value| <= {MAX_COORD:.0e} pixels)")
    if kind == "gt" and len(values) in (8, 9):  # MOT16/17/20: mark, class, visibility
        if values[6] not in (0.0, 1.0):
            raise CvsuiteError(f"{where}: mark (column 7) must be 0 or 1, got {parts[6]}")
        if values[7] != int(values[7]) or int(values[7]) not in MOT_CLASSES:
            raise CvsuiteError(f"{where}: class (column 8) must be an integer 1-13 (MOTChallenge classes), "
                               f"got {parts[7]}")
        if len(values) == 9 and not 0.0 <= values[8] <= 1.0:
            raise CvsuiteError(f"{where}: visibility (column 9) must be in [0, 1], got {parts[8]}")


def _check_unique_ids(table: MOTTable, path: Path, linenos: list[int]) -> None:
    """Each id at most once per frame (TrackEval refuses such files too); names the repeated line."""
    key = table.frame * (int(table.ids.max()) - int(table.ids.min()) + 1) + (table.ids - int(table.ids.min()))
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(key[order][1:] == key[order][:-1])
    if len(dup):
        k = int(np.argmin(order[dup + 1]))  # the earliest line that repeats an earlier (frame, id)
        first, second = int(order[dup[k]]), int(order[dup[k] + 1])
        raise CvsuiteError(f"{path}:{linenos[second]}: id {table.ids[second]} appears twice in frame "
                           f"{table.frame[second]} (also line {linenos[first]})")


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_mot_txt(path: str | Path, table: MOTTable, kind: str = "res") -> None:
    """Write ``table`` sorted by (frame, id): ``res``/``det`` use 10 columns, ``gt`` the MOT16+ 9."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.lexsort((table.ids, table.frame))
    lines = []
    for i in order:
        left, top, w, h = table.boxes[i]
        head = f"{table.frame[i]},{table.ids[i]},{left:.2f},{top:.2f},{w:.2f},{h:.2f}"
        if kind == "gt":
            lines.append(f"{head},{table.mark[i]},{table.cls[i]},{table.vis[i]:.3f}")
        else:
            lines.append(f"{head},{table.conf[i]:.4f},-1,-1,-1")
    from shared.guard import write_atomic

    write_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


@dataclass
class SeqInfo:
    """Contents of ``seqinfo.ini``."""

    name: str
    im_dir: str = "img1"
    frame_rate: float = 30.0
    length: int = 0
    width: int = 0
    height: int = 0
    im_ext: str = ".jpg"


def read_seqinfo(seq_dir: str | Path) -> SeqInfo:
    """Read ``SEQ/seqinfo.ini``; a missing file or key is an error naming the file."""
    path = Path(seq_dir) / "seqinfo.ini"
    if not path.is_file():
        raise CvsuiteError(f"{path}: missing seqinfo.ini (not a MOTChallenge sequence directory)")
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise CvsuiteError(f"{path}: cannot parse ({str(exc).splitlines()[0]})") from None
    if "Sequence" not in parser:
        raise CvsuiteError(f"{path}: no [Sequence] section")
    sec = parser["Sequence"]
    try:
        info = SeqInfo(
            name=sec.get("name", Path(seq_dir).name),
            im_dir=sec.get("imDir", "img1"),
            frame_rate=float(sec.get("frameRate", "30")),
            length=int(sec["seqLength"]),
            width=int(sec.get("imWidth", "0")),
            height=int(sec.get("imHeight", "0")),
            im_ext=sec.get("imExt", ".jpg"),
        )
    except KeyError as exc:
        raise CvsuiteError(f"{path}: missing key {exc.args[0]} in [Sequence]") from None
    except ValueError as exc:
        raise CvsuiteError(f"{path}: bad value in [Sequence] ({exc})") from None
    if info.length < 1:
        raise CvsuiteError(f"{path}: seqLength must be >= 1, got {info.length}")
    return info


def write_seqinfo(seq_dir: str | Path, info: SeqInfo) -> None:
    """Write ``SEQ/seqinfo.ini`` in the MOTChallenge key spelling."""
    path = Path(seq_dir) / "seqinfo.ini"
    from shared.guard import write_atomic

    write_atomic(
        path,
        "[Sequence]\n"
        f"name={info.name}\nimDir={info.im_dir}\nframeRate={info.frame_rate:g}\n"
        f"seqLength={info.length}\nimWidth={info.width}\nimHeight={info.height}\nimExt={info.im_ext}\n",
    )


@dataclass
class MOTSequence:
    """A MOTChallenge sequence directory: frames plus optional ground truth and detections."""

    root: Path
    info: SeqInfo
    _gt: MOTTable | None = field(default=None, repr=False)
    _det: MOTTable | None = field(default=None, repr=False)

    @classmethod
    def open(cls, seq_dir: str | Path) -> "MOTSequence":
        root = Path(seq_dir)
        if not root.is_dir():
            raise CvsuiteError(f"{root}: sequence directory not found")
        return cls(root, read_seqinfo(root))

    @property
    def name(self) -> str:
        return self.info.name

    def __len__(self) -> int:
        return self.info.length

    @property
    def gt_path(self) -> Path:
        return self.root / "gt" / "gt.txt"

    @property
    def det_path(self) -> Path:
        return self.root / "det" / "det.txt"

    def gt(self) -> MOTTable:
        if self._gt is None:
            self._gt = read_mot_txt(self.gt_path, "gt", self.info.length)
        return self._gt

    def det(self) -> MOTTable:
        if self._det is None:
            self._det = read_mot_txt(self.det_path, "det", self.info.length)
        return self._det

    def frame_path(self, frame: int) -> Path:
        return self.root / self.info.im_dir / f"{frame:06d}{self.info.im_ext}"

    def read_frame(self, frame: int) -> np.ndarray:
        """Frame ``frame`` (1-based) as an RGB uint8 array.

        Read through :func:`shared.data.images.read_image` (one error line for missing, corrupt or
        truncated files); a frame whose size differs from seqinfo.ini's imWidth x imHeight is an error.
        """
        from shared.data.images import read_image

        path = self.frame_path(frame)
        if not path.is_file():
            raise CvsuiteError(f"{path}: missing frame {frame} of {self.root}")
        rgb = read_image(path).rgb
        h, w = rgb.shape[:2]
        if self.info.width > 0 and self.info.height > 0 and (w, h) != (self.info.width, self.info.height):
            raise CvsuiteError(f"{path}: frame is {w}x{h} but {self.root / 'seqinfo.ini'} says "
                               f"{self.info.width}x{self.info.height}")
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)

    def has_images(self) -> bool:
        """True when the first frame file exists (sequences shipped without img1/ are common)."""
        return self.frame_path(1).is_file()

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for f in range(1, self.info.length + 1):
            yield f, self.read_frame(f)


class FrameFolder:
    """A plain folder of frames (no ``seqinfo.ini``): images sorted by name, 1-based frame numbers.

    People often have a video already split into ``000001.jpg, ...``; the frame rate (used for the
    drawn video and ``max_lost`` in frames) comes from ``--fps``. Every frame must have the first
    frame's size (a tracker's boxes live in one pixel grid).
    """

    def __init__(self, path: str | Path, frame_rate: float = 30.0):
        from shared.data.images import list_images

        self.path = Path(path)
        self.files = list_images(self.path)
        if not self.files:
            raise CvsuiteError(f"{self.path}: no seqinfo.ini and no image files: not a MOTChallenge sequence "
                               f"or a folder of frames")
        if not (math.isfinite(frame_rate) and frame_rate > 0):
            raise CvsuiteError(f"--fps must be a positive number, got {frame_rate}")
        self.frame_rate = float(frame_rate)
        self._size: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.path.resolve().name

    def __len__(self) -> int:
        return len(self.files)

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        from shared.data.images import read_image

        for index, path in enumerate(self.files, start=1):
            rgb = np.clip(np.rint(read_image(path).rgb * 255.0), 0, 255).astype(np.uint8)
            size = rgb.shape[1], rgb.shape[0]
            if self._size is None:
                self._size = size
            elif size != self._size:
                raise CvsuiteError(f"{path}: frame is {size[0]}x{size[1]} but {self.files[0].name} is "
                                   f"{self._size[0]}x{self._size[1]} (all frames of a folder must have one size)")
            yield index, rgb


class VideoSource:
    """Frames of a video file through ``cv2.VideoCapture`` (RGB, 1-based frame numbers)."""

    def __init__(self, path: str | Path):
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise CvsuiteError(f"{self.path}: video file not found")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise CvsuiteError(f"{self.path}: cannot open video (unsupported codec or not a video)")
        self.frame_rate = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.length_hint = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()

    @property
    def name(self) -> str:
        return self.path.stem

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                index += 1
                yield index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
        if index == 0:
            raise CvsuiteError(f"{self.path}: video has no decodable frames")


def open_source(path: str | Path, fps: float = 30.0) -> MOTSequence | FrameFolder | VideoSource:
    """A sequence directory (with seqinfo.ini), a plain folder of frames (frame rate ``fps``) or a video file."""
    path = Path(path)
    if path.is_dir():
        if (path / "seqinfo.ini").is_file():
            return MOTSequence.open(path)
        return FrameFolder(path, fps)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path)
    if not path.exists():
        raise CvsuiteError(f"{path}: not found (expected a sequence directory or a video file)")
    raise CvsuiteError(f"{path}: not a sequence directory or a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")


def list_sequences(root: str | Path) -> list[Path]:
    """Sequence directories under ``root`` (those holding seqinfo.ini or gt/gt.txt), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise CvsuiteError(f"{root}: directory not found")
    if (root / "seqinfo.ini").is_file():
        return [root]
    seqs = sorted(p for p in root.iterdir() if p.is_dir() and ((p / "seqinfo.ini").is_file() or (p / "gt" / "gt.txt").is_file()))
    if not seqs:
        raise CvsuiteError(f"{root}: no MOTChallenge sequences (SEQ/seqinfo.ini) found")
    return seqs


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between ``(N, 4)`` and ``(M, 4)`` boxes in ``left, top, width, height`` -> ``(N, M)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0:1], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1:2], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
