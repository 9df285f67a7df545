"""Restricted MANO unpickler (chumpy + sparse rebuilt, code refused) and the LBS layer vs an explicit loop."""
from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from apps.hand.mano import MANOLayer, load_mano
from shared.errors import CvsuiteError


def fake_model(rng: np.random.Generator) -> dict:
    """Random arrays with MANO's keys and shapes (never licensed data)."""
    jreg = np.zeros((16, 778))
    for j in range(16):
        jreg[j, rng.choice(778, 20, replace=False)] = 1 / 20
    weights = rng.random((778, 16)) ** 4
    parents = [0, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
    return {"v_template": rng.normal(0, 0.05, (778, 3)), "shapedirs": rng.normal(0, 0.01, (778, 3, 10)),
            "posedirs": rng.normal(0, 0.005, (778, 3, 135)), "J_regressor": jreg,
            "weights": weights / weights.sum(1, keepdims=True),
            "kintree_table": np.array([[4294967295] + parents[1:], list(range(16))]),
            "f": rng.integers(0, 778, (1538, 3)), "hands_mean": rng.normal(0, 0.1, 45)}


@pytest.fixture
def chumpy_pickle(tmp_path, monkeypatch):
    """A legacy-style file: chumpy.ch.Ch objects holding 'x', a scipy csc J_regressor, protocol 2."""
    module = types.ModuleType("chumpy.ch")

    class Ch:  # stands in for chumpy's class only while pickling
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    model = fake_model(np.random.default_rng(0))
    stored = dict(model, shapedirs=Ch(model["shapedirs"]), posedirs=Ch(model["posedirs"]),
                  v_template=Ch(model["v_template"]), J_regressor=scipy.sparse.csc_matrix(model["J_regressor"]),
                  bs_style="lbs")
    paths = []
    for protocol in (0, 2):
        path = tmp_path / f"MANO_RIGHT_p{protocol}.pkl"
        path.write_bytes(pickle.dumps(stored, protocol=protocol))
        paths.append(path)
    return paths, model


@pytest.fixture
def structured_pickle(tmp_path, monkeypatch):
    """The real MANO_RIGHT.pkl's structure with random arrays: ``chumpy.ch.Ch`` objects whose state is
    {x, _dirty_vars (a set), _itr, _depends_on_deps}, ``shapedirs`` a ``chumpy.reordering.Select`` of a
    Ch ({a, idxs, preferred_shape, _dirty_vars, ...}), ``J_regressor`` a scipy csc matrix, protocol 2.
    Returns a writer (payload=None | object placed inside a chumpy state) and the plain model."""
    ch_mod, re_mod = types.ModuleType("chumpy.ch"), types.ModuleType("chumpy.reordering")

    class Ch:
        pass

    class Select:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    ch_mod.Ch, re_mod.Select = Ch, Select
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch_mod)
    monkeypatch.setitem(sys.modules, "chumpy.reordering", re_mod)
    model = fake_model(np.random.default_rng(5))

    def ch(x, extra=None):
        obj = Ch()
        obj.__dict__.update({"x": x, "_dirty_vars": {"x"}, "_itr": None, "_depends_on_deps": extra or {}})
        return obj

    def write(payload=None) -> "Path":
        flat = np.random.default_rng(6).normal(size=model["shapedirs"].size + 50)
        idxs = np.random.default_rng(7).permutation(len(flat))[:model["shapedirs"].size]
        flat[idxs] = model["shapedirs"].ravel()
        select = Select()
        select.__dict__.update({"a": ch(flat, {"r": payload} if payload is not None else None),
                                "idxs": idxs.astype(np.int64), "preferred_shape": (778, 3, 10),
                                "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {}})
        stored = dict(model, v_template=ch(model["v_template"]), posedirs=ch(model["posedirs"]),
                      shapedirs=select, J_regressor=scipy.sparse.csc_matrix(model["J_regressor"]),
                      weights=ch(model["weights"]), bs_style="lbs", bs_type="lrotmin")
        path = tmp_path / ("MANO_RIGHT.pkl" if payload is None else "MANO_payload.pkl")
        path.write_bytes(pickle.dumps(stored, protocol=2))
        return path

    return write, model


def test_structured_mano_pickle_loads_and_payload_is_refused(structured_pickle, tmp_path):
    write, model = structured_pickle
    path = write()
    assert b"chumpy.reordering" in path.read_bytes() and b"set" in path.read_bytes()
    loaded = load_mano(path)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"):
        assert np.allclose(loaded[key], model[key]), key
    marker = tmp_path / "pwned"
    evil = write(_Payload(marker))
    with pytest.raises(CvsuiteError, match=r"MANO_payload.pkl: not loaded: the pickle refused global (posix|os)\.system"):
        load_mano(evil)
    assert not marker.exists()


def test_restricted_unpickler_rebuilds_arrays(chumpy_pickle):
    paths, model = chumpy_pickle
    for path in paths:
        loaded = load_mano(path)
        for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table"):
            assert np.allclose(loaded[key], model[key]), key


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_payload_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = dict(fake_model(np.random.default_rng(1)), hook=_Payload(marker))
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(CvsuiteError, match=r"refused global (posix|os)\.system"):
        load_mano(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"v_template": _Payload(marker)}, protocol=0))
    with pytest.raises(CvsuiteError, match="refused global"):
        load_mano(path)
    assert not marker.exists()


def test_not_a_mano_file(tmp_path):
    (tmp_path / "a.pkl").write_text("hello\n")
    with pytest.raises(CvsuiteError, match="a.pkl: not a MANO pickle"):
        load_mano(tmp_path / "a.pkl")
    (tmp_path / "b.pkl").write_bytes(pickle.dumps({"v_template": np.zeros((778, 3))}))
    with pytest.raises(CvsuiteError, match="b.pkl: not a MANO pickle \\(no 'shapedirs'\\)"):
        load_mano(tmp_path / "b.pkl")


def _rot(v):
    th = np.linalg.norm(v)
    if th < 1e-12:
        return np.eye(3)
    k = v / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def test_mano_layer_matches_explicit_lbs():
    rng = np.random.default_rng(2)
    model = fake_model(rng)
    layer = MANOLayer(model).double()
    pose, betas = rng.normal(0, 0.4, 48), rng.normal(0, 1, 10)
    verts, joints = layer(torch.tensor(pose)[None], torch.tensor(betas)[None])
    # explicit reference: loops over joints and vertices
    v = model["v_template"] + model["shapedirs"] @ betas
    J = model["J_regressor"] @ v
    Rs = [_rot(pose[3 * j:3 * j + 3]) for j in range(16)]
    feat = np.concatenate([(Rs[j] - np.eye(3)).ravel() for j in range(1, 16)])
    v = v + model["posedirs"] @ feat
    parents = model["kintree_table"][0]
    G = []
    for j in range(16):
        A = np.eye(4)
        A[:3, :3] = Rs[j]
        A[:3, 3] = J[j] - (J[parents[j]] if j else 0)
        G.append(A if j == 0 else G[parents[j]] @ A)
    out = np.zeros((778, 3))
    for i in range(778):
        T = np.zeros((4, 4))
        for j in range(16):
            Gj = G[j].copy()
            Gj[:3, 3] -= G[j][:3, :3] @ J[j]
            T += model["weights"][i, j] * Gj
        out[i] = T[:3, :3] @ v[i] + T[:3, 3]
    assert verts.shape == (1, 778, 3) and joints.shape == (1, 21, 3)
    assert np.allclose(verts[0].numpy(), out, atol=1e-6)  # buffers are float32
    assert np.allclose(joints[0, 0].numpy(), G[0][:3, 3], atol=1e-6) and np.allclose(joints[0, 4].numpy(), out[745], atol=1e-6)
    assert np.allclose(joints[0, 5].numpy(), G[1][:3, 3], atol=1e-6)  # index MCP = MANO joint 1
    rest, _ = layer(torch.zeros(1, 48, dtype=torch.float64))
    assert np.allclose(rest[0].numpy(), model["v_template"], atol=1e-6)


def test_cli_train_and_predict_with_mano(tiny_hanco, tmp_path, run_cli):
    """--mano adds a MANO head: predict writes 778 vertices per frame; the MANO arrays are not saved."""
    mano = tmp_path / "MANO_RIGHT.pkl"
    mano.write_bytes(pickle.dumps(fake_model(np.random.default_rng(3)), protocol=2))
    code, _, err = run_cli(["hand", "train", "--data", tiny_hanco, "--mano", mano, "--labels", "0.1", "--out",
                            tmp_path / "ft", "--steps", "1", "image_size=32", "train.batch_size=4",
                            "train.progress=false", "num_threads=1", "lifter_steps=5"])
    assert code == 0, err
    from shared.weights import load_state_dict

    keys = load_state_dict(tmp_path / "ft" / "model.safetensors")
    assert any(k.startswith("mano_head.fc.") for k in keys) and not any(k.startswith("mano_head.mano.") for k in keys)
    assert run_cli(["hand", "synth", "--out", tmp_path / "fh", "--sequences", "1", "--frames", "2", "--size", "32",
                    "--layout", "freihand"])[0] == 0
    code, _, err = run_cli(["hand", "predict", "--data", tmp_path / "fh", "--out", tmp_path / "pred.json",
                            "--weights", tmp_path / "ft" / "model.safetensors", "--mano", mano])
    assert code == 0, err
    import json

    pred = json.loads((tmp_path / "pred.json").read_text())
    assert np.array(pred[1][0]).shape == (778, 3) and np.array(pred[0][0]).shape == (21, 3)
    code, _, err = run_cli(["hand", "predict", "--data", tmp_path / "fh", "--out", tmp_path / "pred2.json",
                            "--weights", tmp_path / "ft" / "model.safetensors"])
    assert code == 0, err  # without --mano the keypoint head still works


# ---- MANO fits (HanCo shape/) and the MANO head trained on them -----------------------------------------

def test_zero_pose_gives_template_with_mean_pose_and_global_rot_override():
    """With the file's hands_mean added (manopth's flat_hand_mean=False, HanCo's fits), the pose that cancels
    the mean with zero shape gives the template; a global rotation matrix equals its axis-angle."""
    from apps.hand.mano import rodrigues

    rng = np.random.default_rng(8)
    model = fake_model(rng)
    layer = MANOLayer(model, add_mean_pose=True).double()
    pose = torch.cat([torch.zeros(1, 3, dtype=torch.float64), -torch.tensor(model["hands_mean"])[None]], 1)
    verts, _ = layer(pose, torch.zeros(1, 10, dtype=torch.float64))
    assert np.allclose(verts[0].numpy(), model["v_template"], atol=1e-6)
    pose = torch.tensor(rng.normal(0, 0.4, (2, 48)))
    betas = torch.tensor(rng.normal(0, 1, (2, 10)))
    a = layer(pose, betas)
    b = layer(torch.cat([torch.zeros(2, 3, dtype=torch.float64), pose[:, 3:]], 1), betas,
              global_rot=rodrigues(pose[:, :3]))
    for x, y in zip(a, b):
        assert torch.allclose(x, y, atol=1e-9)


def test_read_fit_layouts():
    from apps.hand.mano import read_fit

    rng = np.random.default_rng(9)
    nested = {"poses": rng.normal(size=(1, 48)).tolist(), "shapes": rng.normal(size=(1, 10)).tolist(),
              "global_t": rng.normal(size=(1, 1, 3)).tolist()}
    fit = read_fit(nested, "f.json")
    assert fit["poses"].shape == (48,) and fit["shapes"].shape == (10,) and fit["global_t"].shape == (3,)
    assert read_fit({"model": "cvsuite sphere-swept hand (not MANO)", "bone_lengths": [1.0]}, "f.json") is None
    with pytest.raises(CvsuiteError, match="f.json: MANO fit 'shapes' holds 9 values, expected 10"):
        read_fit({**nested, "shapes": [0.0] * 9}, "f.json")
    with pytest.raises(CvsuiteError, match="f.json: MANO fit 'poses' holds NaN"):
        read_fit({**nested, "poses": [float("nan")] * 48}, "f.json")


def test_fit_in_camera_matches_the_world_mesh_seen_from_the_camera():
    """Root-relative mesh of the camera-frame fit == world mesh (with global_t) moved by M, made root-relative."""
    from apps.hand.mano import fit_in_camera

    rng = np.random.default_rng(10)
    model = fake_model(rng)
    layer = MANOLayer(model, add_mean_pose=True).double()
    fit = {"poses": rng.normal(0, 0.5, 48), "shapes": rng.normal(0, 1, 10), "global_t": rng.normal(0, 0.2, 3)}
    R = _rot(rng.normal(0, 1, 3))
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, rng.normal(0, 1, 3)
    wv, wj = layer(torch.tensor(fit["poses"])[None], torch.tensor(fit["shapes"])[None], torch.tensor(fit["global_t"])[None])
    cam_v = wv[0].numpy() @ M[:3, :3].T + M[:3, 3]
    cam_j = wj[0].numpy() @ M[:3, :3].T + M[:3, 3]
    moved = fit_in_camera(fit, M)
    pose = torch.tensor(np.concatenate([np.zeros(3), moved["hand_pose"]]))[None]
    v, j = layer(pose, torch.tensor(moved["shape"])[None], global_rot=torch.tensor(moved["rot"])[None])
    assert np.allclose(v[0].numpy() - j[0, :1].numpy(), cam_v - cam_j[:1], atol=1e-9)
    assert np.allclose(j[0].numpy() - j[0, :1].numpy(), cam_j - cam_j[:1], atol=1e-9)


def _write_fits(root, model, seed: int = 0) -> None:
    """Give a synthetic HanCo root HanCo's MANO fits: shape/ = {poses, shapes, global_t} (world frame, nested as
    HanCo stores them) and xyz/ = the fit's 21 joints (the wrist kept where the synthetic hand had it)."""
    import json

    rng = np.random.default_rng(seed)
    layer = MANOLayer(model, add_mean_pose=True).double()
    for path in sorted((root / "shape").glob("*/*.json")):
        old_wrist = np.array(json.loads((root / "xyz" / path.parent.name / path.name).read_text()))[0]
        poses, shapes = rng.normal(0, 0.3, 48), rng.normal(0, 1, 10)
        _, joints = layer(torch.tensor(poses)[None], torch.tensor(shapes)[None])
        global_t = old_wrist - joints[0, 0].numpy()
        _, joints = layer(torch.tensor(poses)[None], torch.tensor(shapes)[None], torch.tensor(global_t)[None])
        path.write_text(json.dumps({"poses": [poses.tolist()], "shapes": [shapes.tolist()],
                                    "global_t": [[global_t.tolist()]]}))
        (root / "xyz" / path.parent.name / path.name).write_text(json.dumps(joints[0].numpy().tolist()))


@pytest.fixture
def fitted_hanco(tiny_hanco, tmp_path):
    """The tiny synthetic root with HanCo-style MANO fits in shape/ and the fits' joints in xyz/ (right hands)."""
    import json
    import shutil

    root = tmp_path / "hanco_fits"
    shutil.copytree(tiny_hanco, root)
    model = fake_model(np.random.default_rng(11))
    _write_fits(root, model)
    for path in (root / "shape").glob("*/*.json"):
        assert "side" not in json.loads(path.read_text())
    mano = tmp_path / "MANO_RIGHT.pkl"
    mano.write_bytes(pickle.dumps(model, protocol=2))
    return root, model, mano


def test_labelled_items_carry_fits_that_follow_the_augmentation(fitted_hanco):
    """For every augmented item, the mesh of its MANO targets (camera-frame rotation x framing roll, articulation,
    shape) has the same root-relative joints as the item's 3-D keypoint label (the xyz/ files hold the fit's joints)."""
    from apps.hand.train import LabelledHands, open_labelled

    root, model, _ = fitted_hanco
    images = open_labelled(root, 32, with_foreground=True)
    data = LabelledHands(images, np.arange(len(images.samples)), augment=True, negative_rate=0.0, right_hands=True)
    assert data.has_fit.all()
    layer = MANOLayer(model, add_mean_pose=True)
    np.random.seed(0)
    items = [data[i] for i in range(0, len(data), 5)]
    for item in items:
        assert item["has_fit"] == 1
        pose = torch.cat([torch.zeros(1, 3), item["fit_pose"][None]], 1)
        _, j = layer(pose, item["fit_shape"][None], global_rot=item["fit_rot"][None])
        rel = j[0] - j[0, :1]
        rel = rel / (rel[10] - rel[9]).norm()
        assert torch.allclose(rel, item["xyz"], atol=1e-4)
        assert torch.allclose(item["fit_cam"][:2], item["uv"][9]) and 0 < item["fit_cam"][2] < 10
    # a mirrored crop cannot be expressed by a right-hand MANO: no fit target
    mirrored = LabelledHands(images, np.arange(len(images.samples)), augment=True, negative_rate=0.0, right_hands=False)
    np.random.seed(1)
    flags = [float(mirrored[i]["has_fit"]) for i in range(16)]
    assert 0 < sum(flags) < 16


def test_cli_mano_train_on_fits_then_mesh_scores_from_the_predicted_mesh(fitted_hanco, tmp_path, run_cli):
    """`hand train --mano` on a root with MANO fits trains the fit terms (2 steps); `predict --mano` writes the
    778 predicted vertices and `eval` scores them as a mesh (not the keypoint placeholder)."""
    import json

    from apps.hand.evaluate import align_w_scale

    root, model, mano = fitted_hanco
    code, _, err = run_cli(["hand", "train", "--data", root, "--mano", mano, "--out", tmp_path / "ft", "--steps", "2",
                            "image_size=32", "train.batch_size=4", "train.progress=false", "train.log_every=1",
                            "num_threads=1", "lifter_steps=5"])
    assert code == 0, err
    logged = [json.loads(line) for line in (tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 2
    for key in ("loss_mano_verts", "loss_mano_joints", "loss_mano_pose", "loss_mano_rot", "loss_mano_shape", "loss_mano_cam"):
        assert all(np.isfinite(r[key]) and r[key] > 0 for r in logged), key
    # a FreiHAND-layout split whose ground-truth mesh has MANO topology (778 vertices)
    fh = tmp_path / "fh"
    assert run_cli(["hand", "synth", "--out", fh, "--sequences", "1", "--frames", "2", "--size", "32",
                    "--layout", "freihand"])[0] == 0
    n = len(json.loads((fh / "evaluation_xyz.json").read_text()))
    gt_verts = np.random.default_rng(12).normal(0, 0.03, (n, 778, 3))
    (fh / "evaluation_verts.json").write_text(json.dumps(gt_verts.tolist()))
    code, _, err = run_cli(["hand", "predict", "--data", fh, "--out", tmp_path / "pred.json",
                            "--weights", tmp_path / "ft" / "model.safetensors", "--mano", mano])
    assert code == 0, err
    pred_verts = np.array(json.loads((tmp_path / "pred.json").read_text())[1])
    assert pred_verts.shape == (n, 778, 3)
    code, _, err = run_cli(["hand", "eval", "--gt", fh, "--pred", tmp_path / "pred.json", "--json", tmp_path / "s.json"])
    assert code == 0, err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["shape_is_mano"] is True
    # mesh error after alignment recomputed from the predicted mesh (cm, mean over vertices and frames)
    errs = [np.linalg.norm(align_w_scale(g, p) - g, axis=1).mean() for g, p in zip(gt_verts, pred_verts)]
    assert scores["mesh_al_mean3d"] == pytest.approx(100 * np.mean(errs), rel=1e-4)
    assert 0 <= scores["f_al_score_5"] <= 1 and scores["f_al_score_15"] >= scores["f_al_score_5"]
    # `hand infer --mano` writes the predicted mesh beside the keypoints
    img = root / "rgb_merged" / "0000" / "cam2" / "00000001.jpg"
    code, _, err = run_cli(["hand", "infer", img, "--out", tmp_path / "inf", "--weights", tmp_path / "ft" / "model.safetensors",
                            "--mano", mano])
    assert code == 0, err
    record = json.loads((tmp_path / "inf" / "00000001.json").read_text())
    assert np.array(record["mano_verts_root_relative_refbone"]).shape == (778, 3)


def test_freihand_training_mano_are_fit_targets(tmp_path, run_cli):
    """FreiHAND's training_mano.json (48 pose, 10 shape, uv root + scale; camera frame, mean pose added as in
    FreiHAND's utils/model.py) are MANO targets: each item's target mesh rebuilds its 3-D keypoint label."""
    import json
    import shutil

    from apps.hand.train import LabelledHands, open_labelled

    assert run_cli(["hand", "synth", "--out", tmp_path / "src", "--sequences", "1", "--frames", "2", "--size", "32",
                    "--layout", "freihand"])[0] == 0
    root = tmp_path / "fh"
    shutil.copytree(tmp_path / "src" / "evaluation" / "rgb", root / "training" / "rgb")
    for kind in ("K", "scale"):
        shutil.copy(tmp_path / "src" / f"evaluation_{kind}.json", root / f"training_{kind}.json")
    old = np.array(json.loads((tmp_path / "src" / "evaluation_xyz.json").read_text()))
    model = fake_model(np.random.default_rng(13))
    layer = MANOLayer(model, add_mean_pose=True).double()
    rng = np.random.default_rng(14)
    thetas, xyz = [], []
    for wrist in old[:, 0]:
        poses, shapes = rng.normal(0, 0.3, 48), rng.normal(0, 1, 10)
        _, j = layer(torch.tensor(poses)[None], torch.tensor(shapes)[None])
        j = j[0].numpy() - j[0, 0].numpy() + wrist
        thetas.append([np.concatenate([poses, shapes, [16.0, 16.0, 500.0]]).tolist()])
        xyz.append(j.tolist())
    (root / "training_mano.json").write_text(json.dumps(thetas))
    (root / "training_xyz.json").write_text(json.dumps(xyz))
    images = open_labelled(root, 32)
    data = LabelledHands(images, np.arange(len(images.samples)), augment=True, negative_rate=0.0, right_hands=True)
    assert data.has_fit.all()
    np.random.seed(2)
    for i in range(0, len(data), 3):
        item = data[i]
        pose = torch.cat([torch.zeros(1, 3), item["fit_pose"][None]], 1)
        _, j = MANOLayer(model, add_mean_pose=True)(pose, item["fit_shape"][None], global_rot=item["fit_rot"][None])
        rel = j[0] - j[0, :1]
        assert torch.allclose(rel / (rel[10] - rel[9]).norm(), item["xyz"], atol=1e-4)


def test_fingertip_vertex_conventions():
    """HanCo's (contra-hand manopth) and FreiHAND's fingertip vertices, in the same keypoint slots."""
    from apps.hand.mano import FREIHAND_TIP_VERTICES, TIP_VERTICES

    model = fake_model(np.random.default_rng(15))
    pose = torch.tensor(np.random.default_rng(16).normal(0, 0.3, (1, 48)))
    for tips in (TIP_VERTICES, FREIHAND_TIP_VERTICES):
        verts, joints = MANOLayer(model, tip_vertices=tips).double()(pose)
        assert torch.equal(joints[0, [4, 8, 12, 16, 20]], verts[0, list(tips)])
