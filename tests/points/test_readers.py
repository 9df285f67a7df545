"""Readers: both ShapeNetPart layouts round-trip the synthetic set; ModelNet40 HDF5; any cloud/mesh file."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from apps.points.data import (CATEGORIES, CATEGORY_INDEX, TXT_ROOT, category_parts, detect_layout, read_cloud_file,
                              read_modelnet40_h5, read_shapenetpart)
from apps.points.synth import SYNTH_CATEGORIES, make_dataset, make_shape
from shared.errors import CvsuiteError

from .conftest import TINY_POINTS, TINY_SEED, TINY_SHAPES


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_both_layouts_round_trip_the_generated_shapes(tiny_sets, split):
    expected = [row for row in make_dataset(TINY_SHAPES, TINY_SEED, TINY_POINTS) if row[0] == split]
    h5 = read_shapenetpart(tiny_sets["h5"], split)
    txt = read_shapenetpart(tiny_sets["txt"], split)
    assert detect_layout(tiny_sets["h5"]) == "h5" and detect_layout(tiny_sets["txt"]) == "txt"
    assert len(h5) == len(txt) == len(expected) > 0
    agreement = []
    for (_, name, pts, nrm, pid, _), a, b in zip(expected, h5, txt):
        assert a.category == b.category == CATEGORY_INDEX[name]
        np.testing.assert_allclose(a.points, pts, atol=1e-6)       # float32 HDF5
        np.testing.assert_allclose(b.points, pts, atol=2e-6)       # 6 decimals in the txt files
        np.testing.assert_allclose(b.normals, nrm, atol=2e-6)      # txt layout carries normals
        assert np.array_equal(a.parts, pid) and np.array_equal(b.parts, pid)
        assert set(np.unique(pid)) <= set(category_parts(a.category))
        assert np.allclose(np.linalg.norm(a.normals, axis=1), 1, atol=1e-4)
        agreement.append(np.abs((a.normals * nrm).sum(1)).mean())
    # the HDF5 layout has no normals: open3d estimates them (only 128 points per tiny shape, so loosely)
    assert np.mean(agreement) > 0.6


def test_synthetic_categories_have_consistent_parts():
    rng = np.random.default_rng(0)
    for name in SYNTH_CATEGORIES:
        pts, nrm, pid = make_shape(name, rng, 512)
        assert pts.shape == (512, 3) and np.abs(np.linalg.norm(pts, axis=1).max() - 1) < 1e-5
        assert np.allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-5)
        assert set(np.unique(pid)) <= set(category_parts(CATEGORY_INDEX[name]))
        assert len(np.unique(pid)) >= 2


def test_txt_split_lists_use_the_official_entry_format(tiny_sets):
    root = tiny_sets["txt"] / TXT_ROOT
    entries = json.loads((root / "train_test_split" / "shuffled_train_file_list.json").read_text())
    synsets = {s for _, s, _ in CATEGORIES}
    assert all(e.startswith("shape_data/") and e.split("/")[1] in synsets for e in entries)
    assert (root / entries[0].split("/", 1)[1]).with_suffix(".txt").is_file()


def test_modelnet40_hdf5_reader(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(6, 64, 3)).astype(np.float32)
    with h5py.File(tmp_path / "ply_data_train0.h5", "w") as f:
        f["data"], f["label"] = data, np.arange(6, dtype=np.uint8).reshape(-1, 1) % 3
    (tmp_path / "train_files.txt").write_text("data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\n")
    points, normals, labels = read_modelnet40_h5(tmp_path, "train")
    assert labels.tolist() == [0, 1, 2, 0, 1, 2] and normals.shape == data.shape
    for got, raw in zip(points, data):  # the one normalisation: centred, unit sphere
        centred = raw - raw.mean(0)
        np.testing.assert_allclose(got, centred / np.linalg.norm(centred, axis=1).max(), atol=1e-6)


def _write_cloud_formats(tmp_path, pts, nrm):
    import open3d as o3d

    np.savetxt(tmp_path / "a.xyz", pts)
    np.savetxt(tmp_path / "b.txt", np.concatenate([pts, nrm], 1))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts.astype(np.float64)))
    cloud.normals = o3d.utility.Vector3dVector(nrm.astype(np.float64))
    o3d.io.write_point_cloud(str(tmp_path / "c.ply"), cloud)
    o3d.io.write_point_cloud(str(tmp_path / "d.pcd"), cloud)


def test_point_cloud_files_keep_order_and_estimate_missing_normals(tmp_path):
    pts, nrm, _ = make_shape("Table", np.random.default_rng(1), 300)
    _write_cloud_formats(tmp_path, pts, nrm)
    for name in ("a.xyz", "b.txt", "c.ply", "d.pcd"):
        cloud = read_cloud_file(tmp_path / name)
        np.testing.assert_allclose(cloud.points, pts, atol=1e-5, err_msg=name)
        assert not cloud.from_mesh
        if name == "a.xyz":  # no normals in the file: open3d estimates them
            assert np.abs((cloud.normals * nrm).sum(1)).mean() > 0.8
        else:
            np.testing.assert_allclose(cloud.normals, nrm, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("suffix", [".obj", ".off", ".stl", ".ply", ".glb"])
def test_meshes_are_surface_sampled(tmp_path, suffix):
    import trimesh

    mesh = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    path = tmp_path / f"box{suffix}"
    mesh.export(path)
    cloud = read_cloud_file(path, mesh_points=500)
    assert cloud.from_mesh and cloud.points.shape == (500, 3)
    assert np.allclose(np.abs(cloud.points).max(0), [1.0, 0.5, 0.25], atol=1e-4)
    # every sample lies on a face, with that face's (axis-aligned) unit normal
    assert np.allclose(np.abs(cloud.normals).max(1), 1, atol=1e-5)


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    cases = {
        "empty.xyz": "",
        "one.xyz": "0 0 0\n",
        "nan.xyz": "0 0 0\n1 nan 0\n2 2 2\n",
        "inf.xyz": "0 0 0\n1 inf 0\n2 2 2\n",
        "two_cols.xyz": "0 0\n1 1\n",
        "ragged.xyz": "0 0 0\n1 1\n",
        "words.xyz": "0 0 0\nhello world x\n",
        "mesh.off": "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(CvsuiteError, match=name.replace(".", r"\.")):
            read_cloud_file(tmp_path / name)


def test_bad_datasets_raise_errors_naming_the_file(tmp_path, tiny_sets):
    bad = tmp_path / "bad_h5"
    bad.mkdir()
    with h5py.File(bad / "ply_data_train0.h5", "w") as f:
        f["data"] = np.zeros((2, 16, 3), np.float32)
        f["label"] = np.zeros((2, 1), np.uint8)
    (bad / "train_hdf5_file_list.txt").write_text("ply_data_train0.h5\n")
    with pytest.raises(CvsuiteError, match="ply_data_train0.h5.*'pid'"):
        read_shapenetpart(bad, "train")
    # a part id outside the category (Airplane owns 0-3) -> file and line
    txt = tmp_path / "txt"
    import shutil

    shutil.copytree(tiny_sets["txt"], txt)
    root = txt / TXT_ROOT
    entry = json.loads((root / "train_test_split" / "shuffled_train_file_list.json").read_text())[0]
    shape_file = (root / entry.split("/", 1)[1]).with_suffix(".txt")
    lines = shape_file.read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:6] + ["49.0"])
    shape_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(CvsuiteError, match=rf"{shape_file.name}: line 5: part id 49"):
        read_shapenetpart(txt, "train")


def test_open3d_imports_through_the_compat_libusb_preload():
    """open3d 0.20 needs libusb-1.0; shared.compat preloads libusb-package's copy when the system lacks it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", "import shared, open3d; print(open3d.__version__)"],
                         capture_output=True, text=True, cwd=root, timeout=120,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0 and res.stdout.strip().startswith("0.20"), res.stderr[-500:]
