"""Unsupervised parts (apps/points/parts.py) and the real-mesh parts benchmark's helpers."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from scipy.spatial.transform import Rotation

from apps.points.evaluate import matched_miou
from apps.points.parts import (PartsConfig, canonical_rotation, connected_ward, relabel_by_size, smooth_on_graph,
                               surface_graph, surface_parts)
from evaluation.bench_points_parts import (brute_force_matched_miou, component_parts, kept_parts, read_obj_groups,
                                           sample_parts)


def dumbbell(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two spheres joined by a thin rod along x: (points, outward normals, part 0/1/2 = left/rod/right)."""
    rng = np.random.default_rng(seed)
    pts, nrm, part = [], [], []
    for cx, label in ((-1.0, 0), (1.0, 2)):
        d = rng.normal(size=(n // 3, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        pts.append(np.array([cx, 0, 0]) + 0.5 * d)
        nrm.append(d)
        part.append(np.full(n // 3, label))
    t = rng.uniform(-0.5, 0.5, n // 3)
    a = rng.uniform(0, 2 * np.pi, n // 3)
    pts.append(np.stack([t, 0.06 * np.cos(a), 0.06 * np.sin(a)], 1))
    nrm.append(np.stack([0 * t, np.cos(a), np.sin(a)], 1))
    part.append(np.full(n // 3, 1))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(part)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the labelings are equal up to a renaming of the labels (a bijection)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_surface_graph_is_connected_even_for_separate_pieces() -> None:
    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.normal(size=(80, 3)) * 0.1, rng.normal(size=(80, 3)) * 0.1 + 5.0,
                          rng.normal(size=(80, 3)) * 0.1 - 4.0])
    graph = surface_graph(pts, np.tile([0.0, 0.0, 1.0], (len(pts), 1)), k=6)
    assert connected_components(graph, directed=False)[0] == 1
    assert (graph != graph.T).nnz == 0


@pytest.mark.parametrize("cfg", [PartsConfig(), PartsConfig(crease=0.3, descriptor_weight=1.0, smoothing_steps=0)])
def test_every_part_is_connected_in_the_surface_graph(cfg: PartsConfig) -> None:
    pts, nrm, _ = dumbbell()
    labels = surface_parts(pts, nrm, 5, cfg)
    assert sorted(np.unique(labels)) == list(range(5))
    from apps.points.data import normalize_cloud

    graph = surface_graph(normalize_cloud(np.asarray(pts, np.float64), np.float64)[0], nrm, cfg.neighbours, cfg.crease)
    for part in range(5):
        members = np.flatnonzero(labels == part)
        assert connected_components(graph[members][:, members], directed=False)[0] == 1


def test_smooth_on_graph_is_a_random_walk_average() -> None:
    pts, nrm, _ = dumbbell(300)
    graph = surface_graph(pts, nrm, 8, 0.1)
    x = np.random.default_rng(0).normal(size=(len(pts), 2))
    # one step by an explicit loop: each row the weight-averaged rows of its graph neighbours
    dense = graph.toarray()
    expected = np.stack([(dense[i][:, None] * x).sum(0) / dense[i].sum() for i in range(len(pts))])
    assert np.allclose(smooth_on_graph(x, graph, 1), expected, atol=1e-12)
    assert np.allclose(smooth_on_graph(np.ones((len(pts), 1)), graph, 5), 1.0)   # constants stay
    assert np.array_equal(smooth_on_graph(x, graph, 0), x)
    assert smooth_on_graph(x, graph, 5).std(0).max() < x.std(0).min()        # noise is averaged out


def test_connected_ward_never_joins_unconnected_points() -> None:
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(200, 3))
    graph = surface_graph(pts, np.tile([1.0, 0.0, 0.0], (200, 1)), k=5)
    labels = connected_ward(rng.normal(size=(200, 4)), graph, 7)   # features unrelated to the graph
    for part in range(7):
        members = np.flatnonzero(labels == part)
        assert connected_components(graph[members][:, members], directed=False)[0] == 1


def test_rotated_copy_gets_the_same_parts() -> None:
    pts, nrm, _ = dumbbell(seed=3)
    rot = Rotation.from_euler("xyz", [37, -81, 152], degrees=True).as_matrix()
    shift = np.array([3.0, -2.0, 0.5])
    base = surface_parts(pts, nrm, 4)
    moved = surface_parts(pts @ rot.T * 2.5 + shift, nrm @ rot.T, 4)   # rotated, scaled, moved
    assert same_partition(base, moved)


def test_rotated_copy_same_parts_when_subsampled() -> None:
    pts, nrm, _ = dumbbell(900, seed=4)
    rot = Rotation.from_euler("zyx", [120, 33, -47], degrees=True).as_matrix()
    cfg = PartsConfig(max_points=400)
    assert same_partition(surface_parts(pts, nrm, 3, cfg, seed=5), surface_parts(pts @ rot.T, nrm @ rot.T, 3, cfg, seed=5))


def test_surface_parts_finds_the_dumbbell_parts_xyz_kmeans_does_not_need_to() -> None:
    pts, nrm, part = dumbbell(seed=6)
    assert matched_miou(surface_parts(pts, nrm, 3), part) > 0.8


def test_canonical_rotation_is_pose_invariant() -> None:
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(300, 3)) * np.array([3.0, 1.5, 0.5]) + rng.exponential(size=(300, 3))
    rot = Rotation.from_euler("xyz", [10, 70, -130], degrees=True).as_matrix()
    a = (pts - pts.mean(0)) @ canonical_rotation(pts)
    moved = pts @ rot.T
    b = (moved - moved.mean(0)) @ canonical_rotation(moved)
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(canonical_rotation(pts)), 1.0, atol=1e-12)


def test_relabel_by_size() -> None:
    np.testing.assert_array_equal(relabel_by_size(np.array([5, 2, 2, 9, 2, 5])), [1, 0, 0, 2, 0, 1])


@pytest.mark.parametrize("seed", range(6))
def test_hungarian_matched_miou_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_clusters, n_parts = rng.integers(1, 5), rng.integers(1, 5)
    clusters, gt = rng.integers(0, n_clusters, 40), rng.integers(0, n_parts, 40)
    assert matched_miou(clusters, gt) == pytest.approx(brute_force_matched_miou(clusters, gt), abs=1e-12)


def test_matched_miou_perfect_and_unmatched_part() -> None:
    gt = np.array([0, 0, 1, 1, 2, 2])
    assert matched_miou(np.array([7, 7, 3, 3, 1, 1]), gt) == 1.0
    # two clusters for three parts: one part is unmatched and scores 0
    assert matched_miou(np.array([0, 0, 1, 1, 1, 1]), gt) == pytest.approx((1 + 0.5 + 0) / 3)


def test_read_obj_groups(tmp_path) -> None:
    obj = tmp_path / "g.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\n"
                   "f 1 2 3\ng legs\nf 1 2 3 4\ng body\nf 1/1 -1/2 2\ng legs\nf 2 3 5\n")
    vertices, faces, groups = read_obj_groups(obj)
    assert len(vertices) == 5
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 1, 2], [0, 2, 3], [0, 4, 1], [1, 2, 4]])
    np.testing.assert_array_equal(groups, [0, 1, 1, 2, 1])


def test_component_parts_merges_duplicated_vertices() -> None:
    # two triangles sharing an edge through duplicated vertices, and a separate triangle
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0],
                         [5, 5, 5], [6, 5, 5], [5, 6, 5]], float)
    faces = np.array([[0, 1, 2], [3, 5, 4], [6, 7, 8]])
    comp = component_parts(vertices, faces)
    assert comp[0] == comp[1] != comp[2]


def test_sample_parts_and_kept_parts() -> None:
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0], [5.1, 0, 0], [5, 0.1, 0]], float)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    face_part = np.array([0, 1])
    pts, nrm, parts = sample_parts(vertices, faces, face_part, 2000, 0)
    assert np.all(pts[parts == 1, 0] >= 5.0 - 1e-12) and np.all(pts[parts == 0, 0] <= 1 + 1e-12)
    assert abs(np.mean(parts == 1) - 0.01 / 1.01) < 0.01                 # area-weighted
    np.testing.assert_allclose(np.abs(nrm[:, 2]), 1.0)
    np.testing.assert_array_equal(kept_parts(vertices, faces, face_part, 0.02), [0])


def test_cli_parts_without_weights_same_parts_for_a_rotated_mesh(tmp_path, run_cli) -> None:
    """`infer --parts` needs no network; an OBJ mesh and its rotated copy get the same vertex parts."""
    pts, _, part = dumbbell(seed=8)
    from scipy.spatial import ConvexHull

    rot = Rotation.from_euler("xyz", [90, 0, 40], degrees=True).as_matrix()
    faces = ConvexHull(pts).simplices   # any triangulation: the parts come from the surface samples
    for name, verts in (("a.obj", pts), ("b.obj", pts @ rot.T)):
        (tmp_path / name).write_text("".join(f"v {x} {y} {z}\n" for x, y, z in verts)
                                     + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces))
    code, _, err = run_cli(["points", "infer", tmp_path / "a.obj", tmp_path / "b.obj", "--parts", "3",
                            "--out", tmp_path / "out", "--render", "matplotlib"])
    assert code == 0, err
    a = np.loadtxt(tmp_path / "out" / "a_vertex_labels.txt", dtype=int)
    b = np.loadtxt(tmp_path / "out" / "b_vertex_labels.txt", dtype=int)
    assert len(a) == len(pts) and set(a) == {0, 1, 2}
    assert same_partition(a, b)
