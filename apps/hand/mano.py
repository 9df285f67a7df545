"""MANO without chumpy: a restricted unpickler for the legacy ``MANO_RIGHT.pkl`` and our own LBS layer.

The official model file is a Python 2 pickle whose arrays are chumpy objects and whose
``J_regressor`` is a scipy sparse matrix. Unpickling it normally would import chumpy and could
run any code a tampered file carries. :class:`RestrictedMANOUnpickler` resolves only numpy's array
and dtype reconstructors; chumpy arrays (``Ch``) and ``Select`` reorderings and scipy sparse matrices resolve to inert
placeholder classes that just store their pickled state (sets, as every chumpy state holds one, are
allowed as plain containers), and are rebuilt as numpy arrays afterwards (a ``Select`` from its
``a`` and ``idxs``). Every
other global (``os.system``, ``builtins.eval``, ...) is refused before anything is called.

:class:`MANOLayer` is linear blend skinning from the file's ``v_template``, ``shapedirs``,
``posedirs``, ``J_regressor``, ``weights`` and ``kintree_table``: 778 vertices and 21 joints
(16 regressed joints + 5 fingertip vertices) in the FreiHAND keypoint order.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.errors import CvsuiteError
from shared.safe_pickle import ArrayUnpickler, numpy_globals

REQUIRED = {"v_template": (778, 3), "shapedirs": (778, 3, None), "posedirs": (778, 3, 135),
            "J_regressor": (16, 778), "weights": (778, 16), "kintree_table": (2, 16), "f": (None, 3)}
# fingertip vertices (thumb, index, middle, ring, pinky): contra-hand's manopth (HanCo) and FreiHAND's
# utils/mano_utils.py pick neighbouring vertices; the joint order is the same in both
TIP_VERTICES = (745, 317, 444, 556, 673)
FREIHAND_TIP_VERTICES = (744, 320, 443, 555, 672)
# MANO joints: 0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb; tips appended as 16-20
TO_FREIHAND = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]


class _Inert:
    """Placeholder for a chumpy array or a scipy sparse matrix: keeps the pickled state, runs nothing."""

    kind = "object"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyArray(_Inert):
    kind = "chumpy"


class _ChumpySelect(_Inert):
    """``chumpy.reordering.Select`` (MANO's ``shapedirs``): ``a.x.ravel()[idxs].reshape(preferred_shape)``."""

    kind = "chumpy select"


class _SparseMatrix(_Inert):
    kind = "sparse"


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copy_reg._reconstructor`` for our placeholders only."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)) or base is not object:
        raise pickle.UnpicklingError(f"refused reconstruction of {getattr(cls, '__name__', cls)!r}")
    return cls()


class RestrictedMANOUnpickler(ArrayUnpickler):
    """Resolves numpy arrays, chumpy arrays (-> placeholders) and scipy sparse matrices; nothing else."""

    table = {**numpy_globals(),
             ("copy_reg", "_reconstructor"): _safe_reconstructor, ("copyreg", "_reconstructor"): _safe_reconstructor,
             ("__builtin__", "object"): object, ("builtins", "object"): object,
             # every chumpy object's state carries a set (``_dirty_vars``): sets are inert containers
             ("__builtin__", "set"): set, ("builtins", "set"): set,
             ("__builtin__", "frozenset"): frozenset, ("builtins", "frozenset"): frozenset}
    refusal = "refused global"

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "chumpy" and name == "Select":
            return _ChumpySelect
        if module.split(".")[0] == "chumpy" and name in ("Ch", "array"):
            return _ChumpyArray
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _SparseMatrix
        return super().find_class(module, name)


def _dense_sparse(obj: _SparseMatrix, key: str, path: Path) -> np.ndarray:
    state = obj.state if isinstance(obj.state, dict) else {}
    try:
        data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        shape = tuple(int(s) for s in state.get("_shape", state.get("shape")))
    except (KeyError, TypeError, ValueError):
        raise CvsuiteError(f"{path}: {key} is a sparse matrix without data/indices/indptr/shape") from None
    csc = state.get("format", "csc") != "csr" and len(indptr) == shape[1] + 1
    dense = np.zeros(shape)
    for j in range(len(indptr) - 1):
        rows = indices[indptr[j]:indptr[j + 1]]
        vals = data[indptr[j]:indptr[j + 1]]
        if csc:
            dense[rows, j] = vals
        else:
            dense[j, rows] = vals
    return dense


def _as_plain(value: Any, key: str, path: Path) -> Any:
    if isinstance(value, _ChumpySelect):
        state = value.state if isinstance(value.state, dict) else {}
        if "a" not in state or "idxs" not in state:
            raise CvsuiteError(f"{path}: {key} is a chumpy Select without 'a' and 'idxs'")
        base = np.asarray(_as_plain(state["a"], f"{key}.a", path), np.float64).ravel()
        idxs = np.asarray(state["idxs"]).ravel()
        if idxs.dtype.kind not in "iu" or (len(idxs) and (idxs.min() < 0 or idxs.max() >= len(base))):
            raise CvsuiteError(f"{path}: {key}.idxs are not indices into its {len(base)} values")
        out = base[idxs]
        if state.get("preferred_shape") is not None:
            shape = tuple(int(v) for v in np.asarray(state["preferred_shape"]).ravel())
            if int(np.prod(shape)) != out.size:
                raise CvsuiteError(f"{path}: {key}.preferred_shape {shape} does not hold {out.size} values")
            out = out.reshape(shape)
        return out
    if isinstance(value, _ChumpyArray):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            raise CvsuiteError(f"{path}: {key} is a chumpy expression without stored values")
        return np.asarray(state["x"], np.float64)
    if isinstance(value, _SparseMatrix):
        return _dense_sparse(value, key, path)
    if isinstance(value, _Inert):
        raise CvsuiteError(f"{path}: {key} holds an unsupported object")
    return value


def load_mano(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a MANO model file (legacy chumpy pickle or plain-numpy pickle), validated; no code runs."""
    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"{path}: MANO model file not found")
    raw = path.read_bytes()
    try:
        obj = RestrictedMANOUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if msg.startswith("refused"):
            raise CvsuiteError(f"{path}: not loaded: the pickle {msg} (a MANO file holds only arrays)") from None
        raise CvsuiteError(f"{path}: not a MANO pickle ({msg[:80]})") from None
    except Exception as exc:  # truncated / garbage bytes raise many types
        raise CvsuiteError(f"{path}: not a MANO pickle ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CvsuiteError(f"{path}: not a MANO pickle (top level is {type(obj).__name__}, expected a dict)")
    out: dict[str, np.ndarray] = {}
    for key, shape in REQUIRED.items():
        if key not in obj:
            raise CvsuiteError(f"{path}: not a MANO pickle (no '{key}')")
        arr = _as_plain(obj[key], key, path)
        try:
            arr = np.asarray(arr, np.float64)
        except (TypeError, ValueError):
            raise CvsuiteError(f"{path}: '{key}' is not numeric") from None
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            raise CvsuiteError(f"{path}: '{key}' has shape {arr.shape}, expected {shape}")
        out[key] = arr
    for key in ("hands_mean", "hands_components"):
        if key in obj:
            out[key] = np.asarray(_as_plain(obj[key], key, path), np.float64)
    return out


def rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices (differentiable, safe at zero)."""
    theta = rotvec.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    k = rotvec / theta
    kx, ky, kz = k.unbind(-1)
    z = torch.zeros_like(kx)
    K = torch.stack([z, -kz, ky, kz, z, -kx, -ky, kx, z], -1).reshape(*k.shape[:-1], 3, 3)
    t = theta[..., None]
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + torch.sin(t) * K + (1 - torch.cos(t)) * K @ K


class MANOLayer(nn.Module):
    """Linear blend skinning: pose (B, 48) axis-angle (global + 15 joints), betas (B, 10), trans (B, 3)
    -> vertices (B, 778, 3) and joints (B, 21, 3) in FreiHAND order (metres)."""

    def __init__(self, model: dict[str, np.ndarray], add_mean_pose: bool = False,
                 tip_vertices: tuple[int, ...] = TIP_VERTICES) -> None:
        super().__init__()
        self.tip_vertices = list(tip_vertices)
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.register_buffer("v_template", f32(model["v_template"]))
        self.register_buffer("shapedirs", f32(model["shapedirs"]))
        self.register_buffer("posedirs", f32(model["posedirs"]).reshape(778 * 3, 135).t().contiguous())
        self.register_buffer("J_regressor", f32(model["J_regressor"]))
        self.register_buffer("weights", f32(model["weights"]))
        mean = model.get("hands_mean") if add_mean_pose else None
        self.register_buffer("mean_pose", f32(np.zeros(45) if mean is None else mean))
        parents = np.asarray(model["kintree_table"])[0].astype(np.int64)
        parents[0] = -1
        self.parents = parents.tolist()
        self.num_betas = int(model["shapedirs"].shape[2])

    def forward(self, pose: torch.Tensor, betas: torch.Tensor | None = None,
                trans: torch.Tensor | None = None,
                global_rot: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``global_rot`` (B, 3, 3), when given, replaces the rotation of ``pose[:, :3]`` (a fit moved into
        a camera frame keeps its global rotation as a matrix; no axis-angle round trip)."""
        b = pose.shape[0]
        betas = pose.new_zeros(b, self.num_betas) if betas is None else betas
        v_shaped = self.v_template + torch.einsum("vck,bk->bvc", self.shapedirs, betas)
        J = torch.einsum("jv,bvc->bjc", self.J_regressor, v_shaped)
        full = torch.cat([pose[:, :3], pose[:, 3:] + self.mean_pose], 1)
        R = rodrigues(full.reshape(b, 16, 3))
        if global_rot is not None:
            R = torch.cat([global_rot.to(R.dtype)[:, None], R[:, 1:]], 1)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        v_posed = v_shaped + ((R[:, 1:] - eye).reshape(b, 135) @ self.posedirs).reshape(b, 778, 3)
        world: list[torch.Tensor] = []
        for j, p in enumerate(self.parents):
            local = torch.zeros(b, 4, 4, dtype=pose.dtype, device=pose.device)
            local[:, :3, :3] = R[:, j]
            local[:, :3, 3] = J[:, j] - (J[:, p] if p >= 0 else 0)
            local[:, 3, 3] = 1
            world.append(local if p < 0 else world[p] @ local)
        G = torch.stack(world, 1)                                            # (B, 16, 4, 4)
        posed_joints = G[:, :, :3, 3]
        rest = torch.einsum("bjrc,bjc->bjr", G[:, :, :3, :3], J)
        G_rel = G.clone()
        G_rel[:, :, :3, 3] = G[:, :, :3, 3] - rest
        T = torch.einsum("vj,bjrc->bvrc", self.weights, G_rel)
        verts = torch.einsum("bvrc,bvc->bvr", T[:, :, :3, :3], v_posed) + T[:, :, :3, 3]
        joints = torch.cat([posed_joints, verts[:, self.tip_vertices]], 1)[:, TO_FREIHAND]
        if trans is not None:
            verts, joints = verts + trans[:, None], joints + trans[:, None]
        return verts, joints


class MANOHead(nn.Module):
    """Features -> 61 values -> MANO vertices and joints, as contra-hand's MANO regressor: 48 pose
    (global axis-angle + 15 joints, added to the file's ``hands_mean`` like manopth's
    ``flat_hand_mean=False``, the parameterisation of HanCo's ``shape/`` fits), 10 shape, and 3 camera
    values (u, v of the middle MCP in crop units, and the crop fraction that 10 cm spans at its depth:
    contra-hand's uv + scale ``f / z``, made independent of the crop size). Vertices and joints come
    out root-free (the translation is not added), in metres."""

    def __init__(self, in_dim: int, model: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, 61))
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)
        with torch.no_grad():  # start at the image centre and a typical apparent size
            self.fc[-1].bias[58:] = torch.tensor([0.5, 0.5, 0.5])
        self.mano = MANOLayer(model, add_mean_pose=True)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        params = self.fc(features)
        verts, joints = self.mano(params[:, :48], params[:, 48:58])
        return {"mano": params, "verts": verts, "joints": joints}


def read_fit(data: Any, path: str | Path) -> dict[str, np.ndarray] | None:
    """A HanCo ``shape/SSSS/FFFFFFFF.json`` MANO fit (world frame: ``poses`` 48, ``shapes`` 10, ``global_t``
    3, any nesting, as the official show_dataset.py reads them) as flat float64 arrays; None when the file
    holds no MANO fit (e.g. our synthetic hand's parameters). A fit with wrong sizes or NaN is an error."""
    if not isinstance(data, dict) or not {"poses", "shapes", "global_t"} <= set(data):
        return None
    out = {}
    for key, size in (("poses", 48), ("shapes", 10), ("global_t", 3)):
        try:
            arr = np.asarray(data[key], np.float64).ravel()
        except (TypeError, ValueError):
            raise CvsuiteError(f"{path}: MANO fit '{key}' is not numeric") from None
        if arr.size != size:
            raise CvsuiteError(f"{path}: MANO fit '{key}' holds {arr.size} values, expected {size}")
        if not np.isfinite(arr).all():
            raise CvsuiteError(f"{path}: MANO fit '{key}' holds NaN or inf")
        out[key] = arr
    return out


def fit_in_camera(fit: dict[str, np.ndarray], M: np.ndarray) -> dict[str, np.ndarray]:
    """A world-frame fit seen from camera ``M`` (world -> camera 4x4): the global rotation becomes
    ``M[:3, :3] @ R(poses[:3])`` (a 3x3 matrix), articulation and shape are unchanged. The root-relative
    mesh of the camera-frame fit is the world mesh rotated by ``M[:3, :3]`` (tested)."""
    rot = rodrigues(torch.as_tensor(fit["poses"][:3], dtype=torch.float64)[None])[0].numpy()
    return {"rot": M[:3, :3] @ rot, "hand_pose": fit["poses"][3:], "shape": fit["shapes"]}
