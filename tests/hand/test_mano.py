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
