"""What users hit on their own files (issue 21): polygon meshes read whole, one normalisation for
train/eval/infer, the up axis, readable outputs, KD-tree propagation, dataset-folder variants."""
from __future__ import annotations

import json
import h5py
import numpy as np
import pytest
import torch

from apps.points.data import (CATEGORY_INDEX, PART_NAMES, TXT_ROOT, category_parts, fan_triangulate, model_frame,
                              read_cloud_file, read_modelnet40_h5, read_numeric_rows, read_shapenetpart)
from apps.points.evaluate import shape_iou
from apps.points.infer import best_view, propagate, visible_pixels
from apps.points.model import EncoderConfig, SegNet, save_model
from apps.points.synth import write_dataset
from shared.errors import CvsuiteError

CUBE_V = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
CUBE_QUADS = [(1, 4, 3, 2), (5, 6, 7, 8), (1, 2, 6, 5), (2, 3, 7, 6), (3, 4, 8, 7), (4, 1, 5, 8)]


def _obj(path, vertices, faces, extra: str = "") -> None:
    lines = [f"v {x} {y} {z}" for x, y, z in vertices] + ["vt 0 0", "vn 0 0 1", extra]
    lines += ["f " + " ".join(f"{i}/1/1" for i in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")


def test_all_quad_obj_is_read_whole(tmp_path):
    path = tmp_path / "cube.obj"
    _obj(path, CUBE_V, CUBE_QUADS)
    cloud = read_cloud_file(path, mesh_points=3000)
    assert cloud.from_mesh and len(cloud.vertices) == 8 and len(cloud.faces) == 12
    np.testing.assert_allclose(cloud.points.min(0), 0, atol=0.02)
    np.testing.assert_allclose(cloud.points.max(0), 1, atol=0.02)
    # every one of the 6 faces carries about 1/6 of the area-weighted samples
    on_face = [np.isclose(cloud.points[:, a], v, atol=1e-6).sum() for a in range(3) for v in (0.0, 1.0)]
    assert min(on_face) > 3000 / 6 * 0.8


def test_mixed_triangle_quad_ngon_obj_keeps_every_face(tmp_path):
    """Like the real mug: a triangle fan base plus quad walls (and a hexagon lid, negative indices)."""
    ring = [(np.cos(a), np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7)[:-1]]
    vertices = [(0.0, 0.0, 0.0)] + [(x, y, 0.0) for x, y in ring] + [(x, y, 2.0) for x, y in ring]
    base = [(1, 2 + i, 2 + (i + 1) % 6) for i in range(6)]
    walls = [(2 + i, 2 + (i + 1) % 6, 8 + (i + 1) % 6, 8 + i) for i in range(6)]
    lid = [tuple(range(-6, 0))]
    path = tmp_path / "mug.obj"
    _obj(path, vertices, base + walls + lid)
    cloud = read_cloud_file(path, mesh_points=4000)
    assert len(cloud.vertices) == 13 and len(cloud.faces) == 6 + 12 + 4
    assert cloud.points[:, 2].max() > 1.99 and (cloud.points[:, 2] > 0.1).mean() > 0.6  # walls are there


def test_fan_triangulation_and_bad_obj_faces(tmp_path):
    assert fan_triangulate([[0, 1, 2, 3, 4]]).tolist() == [[0, 1, 2], [0, 2, 3], [0, 3, 4]]
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n")
    with pytest.raises(CvsuiteError, match=r"bad\.obj: line 4: a face needs at least 3"):
        read_cloud_file(bad)
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(CvsuiteError, match=r"bad\.obj: face indices outside"):
        read_cloud_file(bad)


def _tiny_segmenter(path, seed: int = 0) -> None:
    torch.manual_seed(seed)
    net = SegNet(EncoderConfig(k=8, width=8, global_dim=16))
    net.eval()
    save_model(net, path, "segmenter", net.encoder.cfg, {"categories": [0, 4, 8, 11, 15]})


def _scaled_txt_set(tmp_path, scale: float, shift: float):
    data = tmp_path / "data"
    write_dataset(data, "txt", 10, 5, 96)
    root = data / TXT_ROOT
    test_entries = json.loads((root / "train_test_split" / "shuffled_test_file_list.json").read_text())
    entry = test_entries[0]
    (root / "train_test_split" / "shuffled_test_file_list.json").write_text(json.dumps([entry]))
    shape_file = (root / entry.split("/", 1)[1]).with_suffix(".txt")
    rows = np.loadtxt(shape_file)
    rows[:, :3] = rows[:, :3] * scale + shift           # stored like the real files: radius 0.5, off-centre
    np.savetxt(shape_file, rows, fmt="%.6f")
    return data, shape_file, rows


def test_eval_miou_equals_infer_labels_miou_on_the_same_file(tmp_path, run_cli):
    data, shape_file, rows = _scaled_txt_set(tmp_path, 0.5, 0.3)
    shape = read_shapenetpart(data, "test")[0]
    assert abs(np.linalg.norm(shape.points, axis=1).max() - 1) < 1e-5 and np.abs(shape.points.mean(0)).max() < 1e-5
    # a briefly trained segmenter: its labels depend on the geometry (and so on the scale), unlike a
    # freshly initialised one, which gives every point the same part
    code, _, err = run_cli(["points", "train", "--mode", "finetune", "--data", data, "--out", tmp_path / "seg",
                            "--steps", "25", "points=96", "encoder.k=8", "encoder.width=8", "encoder.global_dim=16",
                            "train.batch_size=8", "train.lr=0.01", "train.warmup_steps=0", "train.progress=false",
                            "train.tensorboard=false"])
    assert code == 0, err
    weights = tmp_path / "seg" / "segmenter.safetensors"
    code, _, err = run_cli(["points", "eval", "--data", data, "--weights", weights, "--json", tmp_path / "e.json"])
    assert code == 0, err
    eval_miou = json.loads((tmp_path / "e.json").read_text())["instance_miou"]
    from apps.points.data import CATEGORIES

    name = CATEGORIES[shape.category][0]
    code, _, err = run_cli(["points", "infer", shape_file, "--out", tmp_path / "res", "--weights", weights,
                            "--category", name, "--points", "2048", "--render", "matplotlib"])
    assert code == 0, err
    labels = np.loadtxt(tmp_path / "res" / f"{shape_file.stem}_labels.txt", dtype=int)
    infer_miou = shape_iou(labels, rows[:, 6].astype(int), category_parts(shape.category))
    assert infer_miou == pytest.approx(eval_miou, abs=1e-12)


def test_up_axis_and_category_probability(tmp_path, run_cli):
    from apps.points.synth import make_shape

    pts, nrm, _ = make_shape("Chair", np.random.default_rng(4), 400)
    y_up = tmp_path / "in" / "chair_y.xyzn"
    y_up.parent.mkdir()
    np.savetxt(y_up, np.concatenate([pts, nrm], 1))
    to_z = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # y axis -> z axis
    z_up = tmp_path / "in" / "chair_z.xyzn"
    np.savetxt(z_up, np.concatenate([pts @ to_z.T, nrm @ to_z.T], 1))
    np.testing.assert_allclose(model_frame(pts @ to_z.T, nrm @ to_z.T, "z")[0], model_frame(pts, nrm)[0], atol=1e-6)
    weights = tmp_path / "seg.safetensors"
    _tiny_segmenter(weights)
    out = tmp_path / "res"
    common = ["--out", out, "--weights", weights, "--points", "512", "--render", "matplotlib"]
    code, _, err = run_cli(["points", "infer", y_up, *common])
    assert code == 0, err
    code, _, err = run_cli(["points", "infer", z_up, "--up", "z", "--min-probability", "1.0", *common])
    assert code == 0, err
    a = np.loadtxt(out / "chair_y_labels.txt", dtype=int)
    b = np.loadtxt(out / "chair_z_labels.txt", dtype=int)
    assert (a == b).mean() > 0.99
    record = json.loads((out / "chair_z.json").read_text())
    assert record["up"] == "z" and record["probability_source"] == "classifier"
    assert 0 < record["probability"] <= 1 and abs(sum(record["category_probabilities"].values()) - 1) < 1e-5
    warning = [line for line in err.splitlines() if "uncertain" in line]
    assert len(warning) == 1 and "--category" in warning[0] and "--up" in warning[0]
    code, _, err = run_cli(["points", "infer", z_up, "--up", "w", *common])
    assert code == 2 and err.count("\n") <= 3


def test_outputs_name_parts_and_label_mesh_vertices(tmp_path, run_cli):
    import open3d as o3d

    path = tmp_path / "in" / "cube.obj"
    path.parent.mkdir()
    _obj(path, CUBE_V, CUBE_QUADS)
    weights = tmp_path / "seg.safetensors"
    _tiny_segmenter(weights)
    out = tmp_path / "res"
    code, stdout, err = run_cli(["points", "infer", path, "--out", out, "--weights", weights, "--category", "Chair",
                                 "--points", "256", "--render", "matplotlib"])
    assert code == 0, err
    header = [line for line in (out / "cube_labels.txt").read_text().splitlines() if line.startswith("#")]
    assert any("12=back" in line and "13=seat" in line and "14=leg" in line for line in header)
    record = json.loads((out / "cube.json").read_text())
    assert record["category"] == "Chair" and record["parts"]["12"]["name"] == "back"
    assert sum(p["points"] for p in record["parts"].values()) == 256
    vlabels = np.loadtxt(out / "cube_vertex_labels.txt", dtype=int)
    assert vlabels.shape == (8,) and set(vlabels.tolist()) <= set(category_parts(CATEGORY_INDEX["Chair"]))
    mesh = o3d.io.read_triangle_mesh(str(out / "cube_mesh.ply"))
    assert len(mesh.vertices) == 8 and len(mesh.triangles) == 12 and mesh.has_vertex_colors()
    assert (out / "cube.png").read_bytes()[:4] == b"\x89PNG"


def test_part_names_follow_the_global_ids():
    assert len(PART_NAMES) == 50
    assert [PART_NAMES[p] for p in category_parts(CATEGORY_INDEX["Chair"])] == ["back", "seat", "leg", "arm"]
    assert [PART_NAMES[p] for p in category_parts(CATEGORY_INDEX["Mug"])] == ["handle", "body"]


def test_best_view_shows_a_part_hidden_behind_a_wall():
    rng = np.random.default_rng(0)
    wall = np.c_[rng.uniform(-1, 1, (40000, 2)), np.zeros(40000)]     # faces +z (azimuth 0), dense
    hidden = rng.normal(scale=0.1, size=(300, 3)) + [0, 0, -0.4]       # right behind it
    pts = np.concatenate([wall, hidden])
    labels = np.r_[np.zeros(40000, int), np.ones(300, int)]
    assert visible_pixels(pts, labels, 0.0, 0.0).get(1, 0) <= 2       # the front view hides it
    az, el = best_view(pts, labels)
    assert visible_pixels(pts, labels, az, el).get(1, 0) > 20


def test_kdtree_propagation_equals_brute_force():
    rng = np.random.default_rng(7)
    pts = rng.normal(size=(3000, 3)).astype(np.float32)
    covered = rng.random(3000) < 0.2
    values = rng.integers(0, 50, 3000)
    out = propagate(pts, covered, values)
    src = np.flatnonzero(covered)
    d = ((pts[:, None, :].astype(np.float64) - pts[None, src, :]) ** 2).sum(2)
    np.testing.assert_array_equal(out, values[src[d.argmin(1)]])


def test_hdf5_data_parent_folder_is_accepted(tmp_path):
    write_dataset(tmp_path / "shapenet_part_seg_hdf5_data" / "hdf5_data", "h5", 10, 2, 64)
    parent = tmp_path / "shapenet_part_seg_hdf5_data"
    direct = read_shapenetpart(parent / "hdf5_data", "train")
    via_parent = read_shapenetpart(parent, "train")
    assert len(direct) == len(via_parent) > 0
    assert np.array_equal(direct[0].points, via_parent[0].points)


def test_modelnet40_normals_are_kept(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(3, 64, 3)).astype(np.float32)
    normal = rng.normal(size=(3, 64, 3)).astype(np.float32)
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    with h5py.File(tmp_path / "ply_data_test0.h5", "w") as f:
        f["data"], f["normal"], f["label"] = data, normal, np.zeros((3, 1), np.uint8)
    (tmp_path / "test_files.txt").write_text("data/modelnet40_ply_hdf5_2048/ply_data_test0.h5\n")
    _, normals, _ = read_modelnet40_h5(tmp_path, "test")
    np.testing.assert_allclose(normals, normal, atol=1e-6)


def test_fast_txt_parser_matches_and_still_names_bad_lines(tmp_path):
    rows = np.random.default_rng(2).normal(size=(500, 6))
    path = tmp_path / "c.txt"
    np.savetxt(path, rows, delimiter=",", header="x,y,z,nx,ny,nz")
    np.testing.assert_allclose(read_numeric_rows(path), rows, rtol=1e-15)
    text = path.read_text().splitlines()
    text[7] = "1,2,oops,4,5,6"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(CvsuiteError, match=r"c\.txt: line 8: not numeric"):
        read_numeric_rows(path)
