"""Readers for the point-cloud datasets' official layouts and for any cloud/mesh file.

* ShapeNetPart HDF5 (``shapenet_part_seg_hdf5_data``): ``ply_data_{train,val,test}N.h5`` with ``data``
  (S, 2048, 3), ``label`` (S, 1) category index and ``pid`` (S, 2048) global part id, listed in
  ``{train,val,test}_hdf5_file_list.txt``. No normals (an optional ``normal`` dataset is used when
  present); normals are estimated with open3d otherwise.
* ShapeNetPart normal-txt (``shapenetcore_partanno_segmentation_benchmark_v0_normal``):
  ``<synset>/<id>.txt`` rows ``x y z nx ny nz part``, ``synsetoffset2category.txt`` and
  ``train_test_split/shuffled_{train,val,test}_file_list.json`` (entries ``shape_data/<synset>/<id>``).
* ModelNet40 HDF5 (``modelnet40_ply_hdf5_2048``): ``ply_data_{train,test}N.h5`` with ``data``, ``label``,
  listed in ``{train,test}_files.txt``.
* Any cloud (``.ply .pcd .xyz .xyzn .pts .txt``) or mesh (``.obj .off .stl .ply`` with faces, ``.glb``)
  through open3d (trimesh for ``.glb``/``.gltf`` and as a fallback).

Every problem a user's file can cause raises :class:`shared.errors.CvsuiteError` naming the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import CvsuiteError, UsageError

# The 16 ShapeNetPart categories: (name, synset, global part ids); the h5 ``label`` is the row index.
CATEGORIES: list[tuple[str, str, tuple[int, ...]]] = [
    ("Airplane", "02691156", (0, 1, 2, 3)), ("Bag", "02773838", (4, 5)), ("Cap", "02954340", (6, 7)),
    ("Car", "02958343", (8, 9, 10, 11)), ("Chair", "03001627", (12, 13, 14, 15)),
    ("Earphone", "03261776", (16, 17, 18)), ("Guitar", "03467517", (19, 20, 21)), ("Knife", "03624134", (22, 23)),
    ("Lamp", "03636649", (24, 25, 26, 27)), ("Laptop", "03642806", (28, 29)),
    ("Motorbike", "03790512", (30, 31, 32, 33, 34, 35)), ("Mug", "03797390", (36, 37)),
    ("Pistol", "03948459", (38, 39, 40)), ("Rocket", "04099429", (41, 42, 43)),
    ("Skateboard", "04225987", (44, 45, 46)), ("Table", "04379243", (47, 48, 49)),
]
# Part names by global id, in each category's id order (the part folders of the ShapeNet part
# annotation, Yi et al. 2016, as the public loaders list them).
PART_NAMES: tuple[str, ...] = (
    "body", "wing", "tail", "engine", "handle", "body", "panels", "peak", "roof", "hood", "wheel", "body",
    "back", "seat", "leg", "arm", "earphone", "headband", "data_wire", "head", "body", "neck", "blade", "handle",
    "base", "lampshade", "canopy", "tube", "keyboard", "screen", "gas_tank", "seat", "wheel", "handle", "light",
    "frame", "handle", "body", "barrel", "handle", "trigger_and_guard", "body", "fin", "nose", "wheel", "deck",
    "belt_for_foot", "desktop", "leg", "support")
NUM_CATEGORIES = len(CATEGORIES)
NUM_PARTS = 50
CATEGORY_INDEX = {name: i for i, (name, _, _) in enumerate(CATEGORIES)}
SYNSET_INDEX = {synset: i for i, (_, synset, _) in enumerate(CATEGORIES)}
TXT_ROOT = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
CLOUD_SUFFIXES = (".ply", ".pcd", ".xyz", ".xyzn", ".xyzrgb", ".pts", ".txt")
MESH_SUFFIXES = (".obj", ".off", ".stl", ".glb", ".gltf", ".ply")


def category_parts(category: int) -> tuple[int, ...]:
    return CATEGORIES[category][2]


def part_mask(categories: list[int] | None = None) -> np.ndarray:
    """(16, 50) bool: which global part ids belong to each category."""
    mask = np.zeros((NUM_CATEGORIES, NUM_PARTS), bool)
    for c, (_, _, parts) in enumerate(CATEGORIES):
        mask[c, list(parts)] = True
    return mask


@dataclass
class Shape:
    """One labelled shape: points (N, 3), normals (N, 3), global part ids (N,), category index, source."""

    points: np.ndarray
    normals: np.ndarray
    parts: np.ndarray
    category: int
    source: str


# ---- validation and normals ----------------------------------------------------------------------

def check_points(points: np.ndarray, source: str | Path, min_points: int = 2) -> np.ndarray:
    """(N, 3) float32 finite points with at least ``min_points`` rows, else CvsuiteError naming ``source``."""
    points = np.asarray(points)
    if np.iscomplexobj(points) or not np.issubdtype(points.dtype, np.number) or points.dtype == bool:
        raise CvsuiteError(f"{source}: coordinates must be real numbers, got {points.dtype}")
    if points.ndim != 2 or points.shape[1] != 3:
        raise CvsuiteError(f"{source}: expected N x 3 coordinates, got shape {points.shape}")
    if len(points) == 0:
        raise CvsuiteError(f"{source}: the point cloud is empty")
    if len(points) < min_points:
        raise CvsuiteError(f"{source}: only {len(points)} point(s); need at least {min_points}")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise CvsuiteError(f"{source}: {int(bad.sum())} point(s) have NaN/inf coordinates (first: point {int(np.argmax(bad))})")
    huge = (np.abs(points) > MAX_COORDINATE).any(axis=1)
    if huge.any():  # float32 overflows (1e308 -> inf) and normalising squares the coordinates
        raise CvsuiteError(f"{source}: {int(huge.sum())} point(s) have coordinates beyond ±{MAX_COORDINATE:g} "
                           f"(first: point {int(np.argmax(huge))})")
    return points.astype(np.float32)


MAX_COORDINATE = 1e12


def whole_numbers(values: np.ndarray, source: str | Path, what: str) -> np.ndarray:
    """``values`` as int64 when every entry is a real whole number (labels, part ids), else CvsuiteError."""
    values = np.asarray(values)
    if np.iscomplexobj(values) or not np.issubdtype(values.dtype, np.number):
        raise CvsuiteError(f"{source}: {what} must be whole numbers, got {values.dtype}")
    if np.issubdtype(values.dtype, np.floating):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2 ** 31)
        if bad.any():
            first = np.flatnonzero(bad.reshape(-1))[0]
            raise CvsuiteError(f"{source}: {what} must be whole numbers, got {values.reshape(-1)[first]!r}")
    return values.astype(np.int64)


def estimate_normals(points: np.ndarray, k: int = 20) -> np.ndarray:
    """Unit normals from open3d's PCA over ``k`` neighbours, flipped to point away from the centroid."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=min(k, max(len(points) - 1, 1))))
    normals = np.asarray(cloud.normals, np.float32)
    if len(normals) != len(points):  # open3d leaves them empty for degenerate input
        normals = np.zeros_like(points)
    outward = ((points - points.mean(0)) * normals).sum(1) < 0
    normals[outward] *= -1
    return normals


def normalize_cloud(points: np.ndarray, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre at the centroid and scale into the unit sphere; returns (points as ``dtype``, centre, scale)."""
    centre = points.mean(0)
    scale = float(np.linalg.norm(points - centre, axis=1).max())
    scale = scale if scale > 1e-12 else 1.0
    return ((points - centre) / scale).astype(dtype), centre, scale


UP_AXES = ("x", "y", "z")
# proper rotations (det +1) taking the named up axis onto +y, ShapeNetPart's up axis
_UP_ROTATION = {"y": np.eye(3), "z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
                "x": np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])}


def model_frame(points: np.ndarray, normals: np.ndarray, up: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """THE one normalisation every network input gets (train, eval, probe, infer): rotate the ``up``
    axis onto +y (ShapeNetPart is y-up), centre at the centroid and scale into the unit sphere (the
    public ShapeNetPart/ModelNet loaders' ``pc_normalize``). Normals are rotated alongside."""
    if up not in _UP_ROTATION:
        raise UsageError(f"up axis must be one of {', '.join(UP_AXES)}, got {up!r}")
    rot = _UP_ROTATION[up]
    pts, _, _ = normalize_cloud(np.asarray(points, np.float64) @ rot.T)
    return pts, (np.asarray(normals, np.float64) @ rot.T).astype(np.float32)


def check_parts(parts: np.ndarray, category: int, source: str, line_of: np.ndarray | None = None) -> np.ndarray:
    """Part ids must belong to the category (ShapeNetPart ids are global); error names file (and line)."""
    allowed = np.asarray(category_parts(category))
    bad = ~np.isin(parts, allowed)
    if bad.any():
        i = int(np.argmax(bad))
        where = f"line {int(line_of[i])}" if line_of is not None else f"point {i}"
        raise CvsuiteError(f"{source}: {where}: part id {int(parts[i])} is not a part of category "
                           f"{CATEGORIES[category][0]} (allowed {allowed.min()}-{allowed.max()})")
    return parts.astype(np.int64)


# ---- ShapeNetPart HDF5 ---------------------------------------------------------------------------

def _open_h5(path: Path):
    import h5py

    if not path.is_file():
        raise CvsuiteError(f"{path}: HDF5 file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CvsuiteError(f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0][:120]})") from None


def _h5_dataset(handle, path: Path, name: str, required: bool = True) -> np.ndarray | None:
    if name not in handle:
        if required:
            raise CvsuiteError(f"{path}: HDF5 file has no '{name}' dataset (has: {', '.join(sorted(handle.keys())) or 'nothing'})")
        return None
    try:
        return np.asarray(handle[name][()])
    except (OSError, TypeError, ValueError) as exc:
        raise CvsuiteError(f"{path}: cannot read dataset '{name}' ({exc})") from None


def read_h5_file(path: str | Path, with_parts: bool = True) -> list[Shape]:
    """Shapes of one ShapeNetPart (``with_parts``) or ModelNet40 HDF5 file."""
    path = Path(path)
    with _open_h5(path) as handle:
        data = _h5_dataset(handle, path, "data")
        label = _h5_dataset(handle, path, "label")
        pid = _h5_dataset(handle, path, "pid", required=with_parts)
        normal = _h5_dataset(handle, path, "normal", required=False)
    if data.ndim != 3 or data.shape[2] != 3 or data.shape[0] == 0 or data.shape[1] == 0:
        raise CvsuiteError(f"{path}: 'data' must be S x N x 3 with S, N > 0, got {data.shape}")
    label = whole_numbers(label, path, "'label'").reshape(-1)
    if pid is not None:
        pid = whole_numbers(pid, path, "'pid'")
    if normal is not None and (np.iscomplexobj(normal) or not np.isfinite(np.asarray(normal, np.float64)).all()):
        raise CvsuiteError(f"{path}: 'normal' must hold finite real numbers")
    if len(label) != len(data):
        raise CvsuiteError(f"{path}: 'label' has {len(label)} entries for {len(data)} shapes")
    if with_parts:
        if pid.shape != data.shape[:2]:
            raise CvsuiteError(f"{path}: 'pid' must be {data.shape[:2]}, got {pid.shape}")
        if label.min() < 0 or label.max() >= NUM_CATEGORIES:
            raise CvsuiteError(f"{path}: category label {int(label.max())} outside 0-{NUM_CATEGORIES - 1}")
    if normal is not None and normal.shape != data.shape:
        raise CvsuiteError(f"{path}: 'normal' must have the shape of 'data' {data.shape}, got {normal.shape}")
    shapes = []
    for s in range(len(data)):
        source = f"{path} (shape {s})"
        pts = check_points(data[s], source)
        nrm = normal[s].astype(np.float32) if normal is not None else estimate_normals(pts)
        pts, nrm = model_frame(pts, nrm)
        parts = check_parts(pid[s], int(label[s]), source) if with_parts else np.zeros(0, np.int64)
        shapes.append(Shape(pts, nrm, parts, int(label[s]), source))
    return shapes


def _read_list(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise CvsuiteError(f"{path}: not a text file list") from None


def _resolve_listed(root: Path, entry: str, list_file: Path) -> Path:
    """File lists of the official downloads hold paths like ``data/hdf5_data/ply_data_train0.h5``."""
    for candidate in (root / entry, root / Path(entry).name):
        if candidate.is_file():
            return candidate
    raise CvsuiteError(f"{list_file}: listed file {entry} not found under {root}")


H5_FOLDER = "hdf5_data"  # what shapenet_part_seg_hdf5_data.zip unzips to


def h5_root(root: str | Path) -> Path:
    """The folder holding the ``*_hdf5_file_list.txt`` files: ``root`` itself or its ``hdf5_data/`` child."""
    root = Path(root)
    child = root / H5_FOLDER
    if not any((root / f"{s}_hdf5_file_list.txt").is_file() for s in ("train", "val", "test")) and child.is_dir():
        return child
    return root


def read_shapenetpart_h5(root: str | Path, split: str) -> list[Shape]:
    """All shapes of ``split`` (train/val/test/trainval) of a ShapeNetPart HDF5 folder (or its parent)."""
    root = h5_root(root)
    shapes: list[Shape] = []
    for part in (("train", "val") if split == "trainval" else (split,)):
        list_file = root / f"{part}_hdf5_file_list.txt"
        if not list_file.is_file():
            raise CvsuiteError(f"{root}: no {list_file.name} (not a ShapeNetPart HDF5 folder?)")
        for entry in _read_list(list_file):
            shapes += read_h5_file(_resolve_listed(root, entry, list_file))
    return shapes


def read_modelnet40_h5(root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ModelNet40 HDF5: (points (S, N, 3), normals (S, N, 3), labels (S,)) of ``split`` (train/test) from
    ``{split}_files.txt``; the files' ``normal`` dataset is kept when present, else normals are estimated."""
    root = Path(root)
    list_file = root / f"{split}_files.txt"
    if not list_file.is_file():
        raise CvsuiteError(f"{root}: no {list_file.name} (not a ModelNet40 HDF5 folder?)")
    points, normals, labels = [], [], []
    for entry in _read_list(list_file):
        for shape in read_h5_file(_resolve_listed(root, entry, list_file), with_parts=False):
            points.append(shape.points)
            normals.append(shape.normals)
            labels.append(shape.category)
    if not points:
        raise CvsuiteError(f"{list_file}: lists no shapes")
    return np.stack(points), np.stack(normals), np.asarray(labels)


# ---- ShapeNetPart normal txt ---------------------------------------------------------------------

def read_synset_map(path: Path) -> dict[str, str]:
    """``synsetoffset2category.txt``: ``Name<TAB>synset`` per line -> {synset: name}."""
    if not path.is_file():
        raise CvsuiteError(f"{path}: not found (not a ShapeNetPart txt folder?)")
    out = {}
    for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise CvsuiteError(f"{path}: line {i}: expected 'Name synset', got {line.strip()!r}")
        out[fields[1]] = fields[0]
    return out


def read_txt_shape(path: str | Path, category: int | None = None) -> Shape:
    """One ``x y z nx ny nz part`` file; ``category`` from the parent folder's synset when None."""
    path = Path(path)
    if category is None:
        if path.parent.name not in SYNSET_INDEX:
            raise CvsuiteError(f"{path}: parent folder {path.parent.name!r} is not a ShapeNetPart synset")
        category = SYNSET_INDEX[path.parent.name]
    rows = read_numeric_rows(path)
    if rows.shape[1] != 7:
        raise CvsuiteError(f"{path}: line 1: expected 7 columns (x y z nx ny nz part), got {rows.shape[1]}")
    pts = check_points(rows[:, :3], path)
    raw_parts = rows[:, 6]
    if not np.all(raw_parts == np.round(raw_parts)):
        i = int(np.argmax(raw_parts != np.round(raw_parts)))
        raise CvsuiteError(f"{path}: line {i + 1}: part id {raw_parts[i]} is not an integer")
    parts = check_parts(raw_parts.astype(np.int64), category, str(path), np.arange(1, len(rows) + 1))
    pts, nrm = model_frame(pts, rows[:, 3:6])
    return Shape(pts, nrm, parts, category, str(path))


def read_shapenetpart_txt(root: str | Path, split: str) -> list[Shape]:
    """All shapes of ``split`` of the normal-txt layout (``root`` is the benchmark folder or its parent)."""
    root = Path(root)
    if (root / TXT_ROOT).is_dir():
        root = root / TXT_ROOT
    synsets = read_synset_map(root / "synsetoffset2category.txt")
    shapes = []
    for part in (("train", "val") if split == "trainval" else (split,)):
        split_file = root / "train_test_split" / f"shuffled_{part}_file_list.json"
        if not split_file.is_file():
            raise CvsuiteError(f"{root}: no train_test_split/{split_file.name}")
        try:
            entries = json.loads(split_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CvsuiteError(f"{split_file}: not valid JSON ({exc})") from None
        if not isinstance(entries, list):
            raise CvsuiteError(f"{split_file}: expected a JSON list of shape_data/<synset>/<id> entries")
        for entry in entries:
            bits = str(entry).split("/")
            if len(bits) < 2:
                raise CvsuiteError(f"{split_file}: bad entry {entry!r}")
            synset, shape_id = bits[-2], bits[-1]
            if synset not in synsets or synset not in SYNSET_INDEX:
                raise CvsuiteError(f"{split_file}: entry {entry!r}: synset {synset} is not in "
                                   f"synsetoffset2category.txt / ShapeNetPart")
            shapes.append(read_txt_shape(root / synset / f"{shape_id}.txt", SYNSET_INDEX[synset]))
    return shapes


def detect_layout(root: str | Path) -> str:
    """``h5`` or ``txt`` for a ShapeNetPart folder, else CvsuiteError."""
    root = Path(root)
    if not root.exists():
        raise CvsuiteError(f"{root}: dataset folder not found")
    root = h5_root(root)
    if (root / "train_hdf5_file_list.txt").is_file() or (root / "test_hdf5_file_list.txt").is_file():
        return "h5"
    if (root / TXT_ROOT).is_dir() or (root / "synsetoffset2category.txt").is_file():
        return "txt"
    raise CvsuiteError(f"{root}: neither a ShapeNetPart HDF5 folder (*_hdf5_file_list.txt) nor the "
                       f"normal-txt layout (synsetoffset2category.txt)")


def read_shapenetpart(root: str | Path, split: str) -> list[Shape]:
    """Shapes of ``split`` in whichever ShapeNetPart layout ``root`` holds."""
    if split not in ("train", "val", "test", "trainval"):
        raise UsageError(f"unknown split {split!r}")
    layout = detect_layout(root)
    shapes = read_shapenetpart_h5(root, split) if layout == "h5" else read_shapenetpart_txt(root, split)
    if not shapes:
        raise CvsuiteError(f"{root}: split {split} lists no shapes")
    return shapes


# ---- any cloud or mesh ---------------------------------------------------------------------------

def read_numeric_rows(path: Path) -> np.ndarray:
    """Whitespace/comma separated numeric text -> (rows, cols) float64; errors name file and line.

    numpy's C parser reads well-formed files (100k rows in well under a second); only when it
    refuses a file does the line-by-line parser run, to name the offending line.
    """
    import io

    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise CvsuiteError(f"{path}: not a text point file (not UTF-8)") from None
    except OSError as exc:
        raise CvsuiteError(f"{path}: cannot read ({exc.strerror})") from None
    if "," in text:
        text = text.replace(",", " ")
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an empty file warns; treat it like any other refusal
            rows = np.loadtxt(io.StringIO(text), dtype=np.float64, comments="#", ndmin=2)
        if rows.size:
            return rows
    except (ValueError, UserWarning):
        pass
    return _parse_rows_slowly(path, text)


def _parse_rows_slowly(path: Path, text: str) -> np.ndarray:
    rows: list[list[float]] = []
    width = None
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split("#")[0].split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise CvsuiteError(f"{path}: line {i}: not numeric: {line[:60]!r}") from None
        if width is None:
            width = len(values)
        elif (len(rows) == 1 and width == 1 and len(values) >= 3 and path.suffix.lower() == ".pts"
              and float(rows[0][0]).is_integer()):
            rows, width = [], len(values)  # a .pts file may start with its point count
        elif len(values) != width:
            raise CvsuiteError(f"{path}: line {i}: {len(values)} columns, expected {width} like line 1")
        rows.append(values)
    if not rows:
        raise CvsuiteError(f"{path}: the point cloud is empty")
    return np.asarray(rows, np.float64)


@dataclass
class LoadedCloud:
    """Points and normals of a user file, in the file's own frame; ``from_mesh`` when they were
    sampled from a mesh surface, whose ``vertices`` (file order) and triangulated ``faces`` are kept."""

    points: np.ndarray
    normals: np.ndarray
    from_mesh: bool
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None

    def model_input(self, up: str = "y") -> tuple[np.ndarray, np.ndarray]:
        """Points and normals as every network sees them (:func:`model_frame`)."""
        return model_frame(self.points, self.normals, up)


_PLY_SIZES = {"char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
              "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def check_ply_complete(path: Path) -> None:
    """Refuse a PLY file whose data is shorter than its header promises (a cut download, a header
    with no data): Open3D's reader prints an "RPly" line and returns the points it got so far."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise CvsuiteError(f"{path}: not a PLY file (no 'ply' ... 'end_header' header)")
    body_start = head.index(b"\n", end) + 1 if b"\n" in head[end:] else len(head)
    fmt, elements = "", []  # [name, count, fixed bytes per item, minimum bytes per list]
    for raw in head[:end].splitlines():
        bits = raw.decode("ascii", "replace").split()
        if len(bits) >= 2 and bits[0] == "format":
            fmt = bits[1]
        elif len(bits) >= 3 and bits[0] == "element":
            try:
                elements.append([bits[1], int(bits[2]), 0, 0])
            except ValueError:
                raise CvsuiteError(f"{path}: PLY header line {raw.decode('ascii', 'replace')!r} has no count") from None
        elif len(bits) >= 3 and bits[0] == "property" and elements:
            if bits[1] == "list" and len(bits) >= 5:
                elements[-1][3] += _PLY_SIZES.get(bits[2], 1)
            else:
                elements[-1][2] += _PLY_SIZES.get(bits[1], 4)
    if any(count < 0 for _, count, _, _ in elements):
        raise CvsuiteError(f"{path}: PLY header has a negative element count")
    data_size = path.stat().st_size - body_start
    if fmt.startswith("binary"):
        needed = sum(count * (fixed + lists) for _, count, fixed, lists in elements)
        if data_size < needed:
            raise CvsuiteError(f"{path}: truncated PLY file: the header promises at least {needed} bytes of data, "
                               f"the file holds {max(data_size, 0)}")
    elif fmt == "ascii":
        needed = sum(count for _, count, _, _ in elements)
        with path.open("rb") as handle:
            handle.seek(body_start)
            lines = sum(1 for line in handle if line.strip())
        if lines < needed:
            raise CvsuiteError(f"{path}: truncated PLY file: the header promises {needed} data lines, "
                               f"the file holds {lines}")


def _ply_has_faces(path: Path) -> bool:
    head = path.open("rb").read(4096).split(b"end_header")[0]
    for line in head.splitlines():
        bits = line.split()
        if len(bits) >= 3 and bits[0] == b"element" and bits[1] == b"face":
            return int(bits[2]) > 0
    return False


def area_weighted_samples(vertices: np.ndarray, faces: np.ndarray, n: int,
                          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` seeded points uniform over a triangle mesh's surface: (points, face normals, face index).

    Faces are drawn with probability proportional to their area, then a uniform point inside each
    (the folded barycentric square). float64 throughout; the mesh must have a positive total area.
    """
    tri = vertices[faces].astype(np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    rng = np.random.default_rng(seed)
    face = rng.choice(len(faces), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[face]
    points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
    normals = cross[face] / np.maximum(area[face, None], 1e-12)
    return points, normals, face


def _sample_mesh(vertices: np.ndarray, faces: np.ndarray, n: int, path: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted uniform surface samples with face normals (numpy, seeded)."""
    if len(faces) == 0:
        raise CvsuiteError(f"{path}: the mesh has no faces")
    check_points(vertices, path, min_points=3)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise CvsuiteError(f"{path}: face indices outside the {len(vertices)} vertices")
    tri = vertices[faces].astype(np.float64)
    if np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum() <= 0:
        raise CvsuiteError(f"{path}: the mesh has zero surface area")
    pts, normals, _ = area_weighted_samples(vertices, faces, n, seed)
    return pts.astype(np.float32), normals.astype(np.float32)


def fan_triangulate(polygons: list[list[int]]) -> np.ndarray:
    """(F, 3) triangles of polygons given as vertex-index lists: (v0, vi, vi+1) fans, so a quad gives
    2 triangles and an n-gon n - 2 (exact for the convex polygons meshes are made of)."""
    tris = [(poly[0], poly[i], poly[i + 1]) for poly in polygons for i in range(1, len(poly) - 1)]
    return np.asarray(tris, np.int64).reshape(-1, 3)


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) in file order, triangles (F, 3)) of a Wavefront OBJ; every face — triangle,
    quad or n-gon, ``v``, ``v/vt``, ``v//vn``, ``v/vt/vn`` and negative (relative) indices — is kept
    and fan-triangulated. (open3d's reader drops non-triangle faces silently.)"""
    vertices: list[list[float]] = []
    polygons: list[list[int]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise CvsuiteError(f"{path}: cannot read ({exc.strerror})") from None
    for line_no, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "v":
            try:
                vertices.append([float(v) for v in fields[1:4]])
            except ValueError:
                raise CvsuiteError(f"{path}: line {line_no}: vertex is not numeric: {line.strip()[:60]!r}") from None
            if len(vertices[-1]) != 3:
                raise CvsuiteError(f"{path}: line {line_no}: a vertex needs x y z")
        elif fields[0] == "f":
            try:
                idx = [int(f.split("/")[0]) for f in fields[1:]]
            except ValueError:
                raise CvsuiteError(f"{path}: line {line_no}: face indices are not integers: {line.strip()[:60]!r}") from None
            if len(idx) < 3:
                raise CvsuiteError(f"{path}: line {line_no}: a face needs at least 3 vertices, got {len(idx)}")
            if any(i == 0 for i in idx):
                raise CvsuiteError(f"{path}: line {line_no}: OBJ face indices start at 1 (got 0)")
            polygons.append([i - 1 if i > 0 else len(vertices) + i for i in idx])
    if not vertices:
        raise CvsuiteError(f"{path}: no vertices ('v' lines) in the OBJ file")
    return np.asarray(vertices, np.float64), fan_triangulate(polygons)


def read_mesh(path: Path, n: int, seed: int = 0) -> LoadedCloud:
    """Sample ``n`` surface points (with normals) from a mesh file; vertices and triangles are kept.

    OBJ: our own reader (every polygon triangulated). OFF/PLY/STL: open3d, which triangulates
    polygons in these formats. glTF/GLB: trimesh.
    """
    suffix = path.suffix.lower()
    if suffix in (".glb", ".gltf"):
        import trimesh

        try:
            mesh = trimesh.load(str(path), force="mesh", process=False)
        except Exception as exc:  # trimesh raises many types for bad files
            raise CvsuiteError(f"{path}: cannot read mesh ({type(exc).__name__}: {str(exc)[:100]})") from None
        vertices, faces = np.asarray(mesh.vertices), np.asarray(getattr(mesh, "faces", np.zeros((0, 3))), np.int64)
    elif suffix == ".obj":
        vertices, faces = read_obj(path)
    else:
        import open3d as o3d

        mesh = o3d.io.read_triangle_mesh(str(path))
        vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.triangles, np.int64)
        if len(vertices) == 0:
            raise CvsuiteError(f"{path}: no vertices could be read (empty or malformed mesh)")
    faces = faces.reshape(-1, 3)
    pts, normals = _sample_mesh(vertices, faces, n, path, seed)
    return LoadedCloud(pts, normals, True, np.asarray(vertices, np.float32), faces)


def read_cloud_file(path: str | Path, mesh_points: int = 2048, seed: int = 0, min_points: int = 2) -> LoadedCloud:
    """Points (+ normals: read or estimated) of any supported cloud file; meshes are surface-sampled."""
    import open3d as o3d

    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise CvsuiteError(f"{path}: the point cloud is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix == ".ply":
        check_ply_complete(path)
    if suffix in (".obj", ".off", ".stl", ".glb", ".gltf") or (suffix == ".ply" and _ply_has_faces(path)):
        return read_mesh(path, mesh_points, seed)
    if suffix in (".xyz", ".xyzn", ".pts", ".txt"):
        rows = read_numeric_rows(path)
        if suffix == ".pts" and rows.shape[1] == 1 and len(rows) > 1:
            rows = rows[1:]  # a .pts file may start with its point count
        if rows.shape[1] < 3:
            raise CvsuiteError(f"{path}: line 1: {rows.shape[1]} column(s); need at least x y z")
        points = check_points(rows[:, :3], path, min_points)
        normals = rows[:, 3:6].astype(np.float32) if rows.shape[1] >= 6 else None
    elif suffix in (".ply", ".pcd"):
        if suffix == ".ply" and b"element vertex 0" in path.open("rb").read(4096):
            raise CvsuiteError(f"{path}: the point cloud is empty")
        cloud = o3d.io.read_point_cloud(str(path))
        points = np.asarray(cloud.points)
        if len(points) == 0:
            raise CvsuiteError(f"{path}: no points could be read (empty or malformed {suffix} file)")
        points = check_points(points, path, min_points)
        normals = np.asarray(cloud.normals, np.float32) if cloud.has_normals() else None
    else:
        raise CvsuiteError(f"{path}: unsupported file type {suffix!r} (clouds: {' '.join(CLOUD_SUFFIXES)}; "
                           f"meshes: {' '.join(MESH_SUFFIXES)})")
    if normals is not None and not np.isfinite(normals).all():
        raise CvsuiteError(f"{path}: NaN/inf normals")
    if normals is None or not np.any(normals):
        normals = estimate_normals(points)
    return LoadedCloud(points, normals, False)


def list_inputs(items: list[str]) -> list[Path]:
    """Expand folders into their cloud/mesh files (sorted); files are kept as given."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in set(CLOUD_SUFFIXES + MESH_SUFFIXES))
            if not found:
                raise CvsuiteError(f"{p}: folder holds no point-cloud or mesh files")
            out += found
        elif not p.exists():
            raise CvsuiteError(f"{p}: file not found")
        else:
            out.append(p)
    return out


# ---- tensors for training ------------------------------------------------------------------------

def resample(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` points: a random subset, or all points plus random repeats when fewer."""
    if n_total >= n:
        return rng.choice(n_total, n, replace=False)
    return np.concatenate([rng.permutation(n_total), rng.choice(n_total, n - n_total, replace=True)])


def shape_features(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """(6, N) network input: xyz + normals."""
    return np.concatenate([points, normals], axis=1).T.astype(np.float32)
