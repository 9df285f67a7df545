"""Synthetic ShapeNetPart-style shapes built from primitives, written in both official layouts.

Five categories with ShapeNetPart's own synsets and global part ids, random proportions:

=========  ==========================================================
Airplane   body 0 (ellipsoid), wings 1 (slabs), tail 2 (fin + stabiliser), engines 3 (cylinders)
Chair      back 12, seat 13, legs 14 (4 boxes), arms 15 (present in ~half the chairs)
Lamp       base 24 (disc), shade 25 (cone frustum), canopy 26 (small disc), pole 27 (cylinder)
Mug        handle 36 (half torus), body 37 (open cylinder + bottom)
Table      top 47, legs 48 (4 boxes), shelf/stretcher 49 (present in ~half the tables)
=========  ==========================================================

Points are sampled uniformly over the surface (area-weighted across primitives) with exact normals,
jittered, centred and scaled into the unit sphere. Repeated parts (legs, wings, engines) share a
part id, which is what self-similarity should discover.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from shared.guard import atomic_output, write_atomic

from .data import CATEGORIES, CATEGORY_INDEX, TXT_ROOT, normalize_cloud

Surface = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
SYNTH_CATEGORIES = ("Airplane", "Chair", "Lamp", "Mug", "Table")


# ---- primitives: each returns (area, sampler(rng, n) -> (points, normals)) -------------------------

def box(centre, size) -> tuple[float, Surface]:
    c, s = np.asarray(centre, float), np.asarray(size, float)
    face_areas = np.array([s[1] * s[2], s[1] * s[2], s[0] * s[2], s[0] * s[2], s[0] * s[1], s[0] * s[1]])

    def sample(rng: np.random.Generator, n: int):
        face = rng.choice(6, n, p=face_areas / face_areas.sum())
        local = (rng.random((n, 3)) - 0.5) * s
        axis, sign = face // 2, np.where(face % 2 == 0, -1.0, 1.0)
        local[np.arange(n), axis] = sign * s[axis] / 2
        normals = np.zeros((n, 3))
        normals[np.arange(n), axis] = sign
        return local + c, normals

    return float(face_areas.sum()), sample


def _frame(axis: int) -> np.ndarray:
    """Permutation matrix mapping local (u, v, along) to world axes with ``along`` = ``axis``."""
    order = [(axis + 1) % 3, (axis + 2) % 3, axis]
    m = np.zeros((3, 3))
    for local, world in enumerate(order):
        m[world, local] = 1.0
    return m


def frustum(centre, r_bottom: float, r_top: float, height: float, axis: int = 1, caps: str = "") -> tuple[float, Surface]:
    """Side of a cone frustum (cylinder when radii match) along ``axis``; ``caps`` 'b'/'t' adds discs."""
    c = np.asarray(centre, float)
    rot = _frame(axis)
    slant = np.hypot(height, r_bottom - r_top)
    side = np.pi * (r_bottom + r_top) * slant
    areas = [side] + [np.pi * r_bottom ** 2] * ("b" in caps) + [np.pi * r_top ** 2] * ("t" in caps)
    kinds = ["side"] + ["b"] * ("b" in caps) + ["t"] * ("t" in caps)

    def sample(rng: np.random.Generator, n: int):
        kind = rng.choice(len(areas), n, p=np.asarray(areas) / sum(areas))
        pts, nrm = np.zeros((n, 3)), np.zeros((n, 3))
        theta = rng.random(n) * 2 * np.pi
        for k, name in enumerate(kinds):
            sel = kind == k
            m, th = int(sel.sum()), theta[sel]
            if name == "side":
                # uniform in area: radius varies linearly along the height
                w = rng.random(m)
                if abs(r_bottom - r_top) > 1e-9:
                    t = (np.sqrt(r_bottom ** 2 + w * (r_top ** 2 - r_bottom ** 2)) - r_bottom) / (r_top - r_bottom)
                else:
                    t = w
                r = r_bottom + t * (r_top - r_bottom)
                pts[sel] = np.stack([r * np.cos(th), r * np.sin(th), (t - 0.5) * height], 1)
                nz = (r_bottom - r_top) / slant
                nr = height / slant
                nrm[sel] = np.stack([nr * np.cos(th), nr * np.sin(th), np.full(m, nz)], 1)
            else:
                radius = r_bottom if name == "b" else r_top
                r = radius * np.sqrt(rng.random(m))
                z = -height / 2 if name == "b" else height / 2
                pts[sel] = np.stack([r * np.cos(th), r * np.sin(th), np.full(m, z)], 1)
                nrm[sel, 2] = -1.0 if name == "b" else 1.0
        return pts @ rot.T + c, nrm @ rot.T

    return float(sum(areas)), sample


def ellipsoid(centre, radii) -> tuple[float, Surface]:
    c, r = np.asarray(centre, float), np.asarray(radii, float)
    p = 1.6075
    area = 4 * np.pi * (((r[0] * r[1]) ** p + (r[0] * r[2]) ** p + (r[1] * r[2]) ** p) / 3) ** (1 / p)

    def sample(rng: np.random.Generator, n: int):
        # x = r * d maps the unit sphere onto the ellipsoid with area factor prod(r) * |d / r|, so
        # accepting directions with probability |d / r| * min(r) makes the density uniform in area
        out = np.zeros((0, 3))
        while len(out) < n:
            d = rng.normal(size=(2 * n, 3))
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            keep = rng.random(2 * n) < np.linalg.norm(d / r, axis=1) * r.min()
            out = np.concatenate([out, d[keep]])
        d = out[:n]
        nrm = d / r
        return d * r + c, nrm / np.linalg.norm(nrm, axis=1, keepdims=True)

    return float(area), sample


def half_torus(centre, major: float, minor: float) -> tuple[float, Surface]:
    """Half torus in the x-y plane bulging towards +x (a mug handle)."""
    c = np.asarray(centre, float)
    area = 2 * np.pi ** 2 * major * minor  # half of the full torus' 4 pi^2 R r

    def sample(rng: np.random.Generator, n: int):
        out_u, out_v = np.zeros(0), np.zeros(0)
        while len(out_u) < n:
            u = (rng.random(2 * n) - 0.5) * np.pi  # along the handle, -90..90 degrees
            v = rng.random(2 * n) * 2 * np.pi      # around the tube
            keep = rng.random(2 * n) < (major + minor * np.cos(v)) / (major + minor)
            out_u, out_v = np.concatenate([out_u, u[keep]]), np.concatenate([out_v, v[keep]])
        u, v = out_u[:n], out_v[:n]
        ring = np.stack([np.cos(u), np.sin(u), np.zeros(n)], 1)
        nrm = ring * np.cos(v)[:, None] + np.array([0, 0, 1.0]) * np.sin(v)[:, None]
        pts = ring * major + nrm * minor
        return pts + c, nrm

    return float(area), sample


# ---- categories ----------------------------------------------------------------------------------

def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def build_airplane(rng):
    length, radius = _u(rng, 1.6, 2.2), _u(rng, 0.12, 0.18)
    span, chord, wz = _u(rng, 1.4, 2.0), _u(rng, 0.25, 0.4), _u(rng, -0.2, 0.2)
    parts = [(0, ellipsoid((0, 0, 0), (radius, radius, length / 2)))]
    parts += [(1, box((side * (span / 4 + radius / 2), 0, wz), (span / 2, 0.03, chord))) for side in (-1, 1)]
    tail_z = -length / 2 + 0.12
    parts += [(2, box((0, radius + 0.15, tail_z), (0.03, 0.3, 0.2))), (2, box((0, 0.05, tail_z), (0.6, 0.03, 0.15)))]
    er = _u(rng, 0.05, 0.08)
    parts += [(3, frustum((side * span / 4, -0.1, wz + 0.05), er, er, 0.3, axis=2, caps="bt")) for side in (-1, 1)]
    return parts


def build_chair(rng):
    w, d, h = _u(rng, 0.8, 1.1), _u(rng, 0.8, 1.1), _u(rng, 0.7, 1.0)
    back_h, leg = _u(rng, 0.7, 1.1), _u(rng, 0.05, 0.09)
    parts = [(13, box((0, h, 0), (w, 0.08, d))), (12, box((0, h + back_h / 2, -d / 2 + 0.04), (w, back_h, 0.08)))]
    parts += [(14, box((sx * (w / 2 - leg), h / 2, sz * (d / 2 - leg)), (leg, h, leg))) for sx in (-1, 1) for sz in (-1, 1)]
    if rng.random() < 0.5:
        parts += [(15, box((sx * (w / 2 + 0.04), h + 0.25, 0), (0.08, 0.06, d * 0.8))) for sx in (-1, 1)]
    return parts


def build_lamp(rng):
    pole_h, base_r, shade_h = _u(rng, 1.2, 2.0), _u(rng, 0.3, 0.5), _u(rng, 0.3, 0.5)
    parts = [(24, frustum((0, 0.03, 0), base_r, base_r, 0.06, axis=1, caps="bt")),
             (27, frustum((0, pole_h / 2, 0), 0.03, 0.03, pole_h, axis=1)),
             (26, frustum((0, pole_h + 0.02, 0), 0.1, 0.1, 0.04, axis=1, caps="bt")),
             (25, frustum((0, pole_h - shade_h / 3, 0), _u(rng, 0.35, 0.55), _u(rng, 0.12, 0.25), shade_h, axis=1))]
    return parts


def build_mug(rng):
    r, h = _u(rng, 0.35, 0.5), _u(rng, 0.7, 1.1)
    return [(37, frustum((0, h / 2, 0), r, r, h, axis=1, caps="b")),
            (36, half_torus((r, h / 2, 0), _u(rng, 0.18, 0.28), 0.04))]


def build_table(rng):
    w, d, h, leg = _u(rng, 1.2, 2.0), _u(rng, 0.8, 1.2), _u(rng, 0.7, 1.0), _u(rng, 0.06, 0.1)
    parts = [(47, box((0, h, 0), (w, 0.07, d)))]
    parts += [(48, box((sx * (w / 2 - leg), h / 2, sz * (d / 2 - leg)), (leg, h, leg))) for sx in (-1, 1) for sz in (-1, 1)]
    if rng.random() < 0.5:
        parts += [(49, box((0, h * 0.3, 0), (w - 3 * leg, 0.04, d - 3 * leg)))]
    return parts


BUILDERS = {"Airplane": build_airplane, "Chair": build_chair, "Lamp": build_lamp, "Mug": build_mug, "Table": build_table}


def make_shape(category: str, rng: np.random.Generator, n_points: int = 2048,
               noise: float = 0.005) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points, normals, global part ids) of one random shape of ``category``, unit-sphere normalised."""
    parts = BUILDERS[category](rng)
    areas = np.array([area for _, (area, _) in parts])
    counts = rng.multinomial(n_points, areas / areas.sum())
    pts, nrm, pid = [], [], []
    for (part, (_, sampler)), m in zip(parts, counts):
        if m == 0:
            continue
        p, q = sampler(rng, int(m))
        pts.append(p)
        nrm.append(q)
        pid.append(np.full(int(m), part))
    points, normals, parts_arr = np.concatenate(pts), np.concatenate(nrm), np.concatenate(pid)
    order = rng.permutation(n_points)
    points, normals, parts_arr = points[order], normals[order], parts_arr[order]
    points = points + rng.normal(scale=noise, size=points.shape) * np.linalg.norm(points - points.mean(0), axis=1).max()
    points, _, _ = normalize_cloud(points)
    normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return points.astype(np.float32), normals.astype(np.float32), parts_arr.astype(np.int64)


def make_dataset(n_shapes: int, seed: int, n_points: int = 2048, categories=SYNTH_CATEGORIES):
    """``n_shapes`` shapes (categories cycled), split 70/10/20 into train/val/test (deterministic)."""
    rng = np.random.default_rng(seed)
    shapes = []
    for i in range(n_shapes):
        name = categories[i % len(categories)]
        pts, nrm, pid = make_shape(name, rng, n_points)
        shapes.append((name, pts, nrm, pid))
    n_train, n_val = int(round(0.7 * n_shapes)), int(round(0.1 * n_shapes))
    split = ["train"] * n_train + ["val"] * n_val + ["test"] * (n_shapes - n_train - n_val)
    order = rng.permutation(n_shapes)
    return [(split[rank], *shapes[i], i) for rank, i in enumerate(order)]


def planned_files(out: Path, layout: str) -> list[Path]:
    """Top-level files/folders ``write_dataset`` will create (claimed through the output guard first)."""
    if layout == "h5":
        return [out / f"{s}_hdf5_file_list.txt" for s in ("train", "val", "test")] + [out / "all_object_categories.txt"]
    return [out / TXT_ROOT]


def write_dataset(out: str | Path, layout: str, n_shapes: int, seed: int, n_points: int = 2048,
                  claim: Callable[[Path], Path] = lambda p: p) -> dict[str, int]:
    """Write the synthetic set in ``layout`` (h5 | txt) under ``out``; ``claim`` checks each file first."""
    import h5py

    out = Path(out)
    user_claim = claim

    def claim(path: Path) -> Path:  # noqa: F811  (wraps the caller's check, then makes the folder)
        path = Path(user_claim(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    shapes = make_dataset(n_shapes, seed, n_points)
    counts = {s: sum(1 for row in shapes if row[0] == s) for s in ("train", "val", "test")}
    if layout == "h5":
        for split in ("train", "val", "test"):
            rows = [r for r in shapes if r[0] == split]
            names = []
            for chunk in range(max(1, -(-len(rows) // 2048))):
                block = rows[chunk * 2048:(chunk + 1) * 2048]
                name = f"ply_data_{split}{chunk}.h5"
                path = claim(out / name)
                with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
                    handle.create_dataset("data", data=np.stack([r[2] for r in block]) if block else np.zeros((0, n_points, 3), np.float32))
                    handle.create_dataset("label", data=np.array([[CATEGORY_INDEX[r[1]]] for r in block], np.uint8).reshape(-1, 1))
                    handle.create_dataset("pid", data=np.stack([r[4] for r in block]).astype(np.uint8) if block else np.zeros((0, n_points), np.uint8))
                names.append(name)
            write_atomic(claim(out / f"{split}_hdf5_file_list.txt"), "".join(f"{n}\n" for n in names))
        write_atomic(claim(out / "all_object_categories.txt"), "".join(f"{name}\t{synset}\n" for name, synset, _ in CATEGORIES))
    elif layout == "txt":
        root = out / TXT_ROOT
        synsets = {name: synset for name, synset, _ in CATEGORIES}
        lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for split, name, pts, nrm, pid, index in shapes:
            shape_id = f"synth{seed:04d}{index:06d}"
            rows = np.concatenate([pts, nrm, pid[:, None].astype(np.float32)], 1)
            path = claim(root / synsets[name] / f"{shape_id}.txt")
            with atomic_output(path) as tmp:
                np.savetxt(tmp, rows, fmt=["%.6f"] * 6 + ["%.1f"])
            lists[split].append(f"shape_data/{synsets[name]}/{shape_id}")
        write_atomic(
            claim(root / "synsetoffset2category.txt"), "".join(f"{name}\t{synset}\n" for name, synset, _ in CATEGORIES))
        for split, entries in lists.items():
            write_atomic(claim(root / "train_test_split" / f"shuffled_{split}_file_list.json"), json.dumps(entries))
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return counts
