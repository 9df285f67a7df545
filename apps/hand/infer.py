"""Keypoint inference on hand crops, skeleton drawing, HanCo keypoint evaluation and FreiHAND ``pred.json``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.errors import CvsuiteError
from shared.guard import write_atomic

from .data import BONES, KEYPOINT_NAMES, FreiHAND, HanCo, reference_scale
from .evaluate import KeypointStats, align_w_scale
from .model import KeypointNet, absolute_xyz, normalise
from .train import HanCoImages, resize_u8

FINGER_COLOURS = [(255, 60, 60), (255, 170, 0), (60, 200, 60), (0, 170, 255), (170, 80, 255)]


@torch.no_grad()
def predict(net: KeypointNet, images: np.ndarray, batch: int = 128, with_mesh: bool = False):
    """uint8 (N, S, S, 3) -> uv (N, 21, 2) in crop units, root-relative xyz (N, 21, 3) in ref-bone units
    (+ with ``with_mesh``, MANO vertices (N, 778, 3) root-relative in the same units)."""
    net.eval()
    uvs, xyzs, meshes = [], [], []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).permute(0, 3, 1, 2)
        out = net(normalise(x))
        uvs.append(out["uv"].numpy())
        xyzs.append(out["xyz"].numpy())
        if with_mesh:
            joints, verts = out["joints"], out["verts"]
            bone = (joints[:, 10] - joints[:, 9]).norm(dim=-1).clamp_min(1e-6)[:, None, None]
            meshes.append(((verts - joints[:, :1]) / bone).numpy())
    uv, xyz = np.concatenate(uvs).astype(np.float64), np.concatenate(xyzs).astype(np.float64)
    if with_mesh:
        return uv, xyz, np.concatenate(meshes).astype(np.float64)
    return uv, xyz


def evaluate_hanco(net: KeypointNet, images: HanCoImages) -> dict[str, float]:
    """PA keypoint error (mm; official similarity alignment) and its AUC over 0-50 mm, raw root-relative
    error (mm, metric scale from the ground truth) and 2-D error (pixels of the original image)."""
    uv, xyz = predict(net, images.images)
    ds = images.ds
    side = ds.read_image(*images.samples[0], images.variant).shape[1]
    pa, rel = KeypointStats(), KeypointStats()
    err2d = []
    for i, sample in enumerate(images.samples):
        view = ds.camera_view(*sample)
        gt = view["xyz_cam"] - view["xyz_cam"][0]
        pred = xyz[i] * reference_scale(view["xyz_cam"])
        pa.feed(gt, align_w_scale(gt, pred))
        rel.feed(gt, pred)
        err2d.append(np.linalg.norm(uv[i] * side - view["uv"], axis=1).mean())
    m, r = pa.measures(), rel.measures()
    return {"pa_mpjpe_mm": 1000 * m["mean"], "pa_auc": m["auc"], "rel_mpjpe_mm": 1000 * r["mean"],
            "rel_auc": r["auc"], "err2d_px": float(np.mean(err2d)), "images": len(images.samples)}


def evaluate_mean_pose(train: HanCoImages, indices: np.ndarray, test: HanCoImages) -> dict[str, float]:
    """Image-blind reference: every test image gets the labelled images' mean root-relative pose and
    mean 2-D keypoints (what a regressor that learnt nothing from the pixels would score)."""
    rel, uvs = [], []
    side_tr = train.ds.read_image(*train.samples[0], train.variant).shape[1]
    for i in indices:
        view = train.ds.camera_view(*train.samples[int(i)])
        rel.append((view["xyz_cam"] - view["xyz_cam"][0]) / reference_scale(view["xyz_cam"]))
        uvs.append(view["uv"] / side_tr)
    mean_rel, mean_uv = np.mean(rel, 0), np.mean(uvs, 0)
    side = test.ds.read_image(*test.samples[0], test.variant).shape[1]
    pa, err2d = KeypointStats(), []
    for sample in test.samples:
        view = test.ds.camera_view(*sample)
        gt = view["xyz_cam"] - view["xyz_cam"][0]
        pa.feed(gt, align_w_scale(gt, mean_rel * reference_scale(view["xyz_cam"])))
        err2d.append(np.linalg.norm(mean_uv * side - view["uv"], axis=1).mean())
    m = pa.measures()
    return {"pa_mpjpe_mm": 1000 * m["mean"], "pa_auc": m["auc"], "err2d_px": float(np.mean(err2d)),
            "images": len(test.samples)}


def draw_skeleton(img: np.ndarray, uv_px: np.ndarray) -> np.ndarray:
    """The 21-keypoint skeleton over an RGB uint8 image (fingers coloured, wrist white)."""
    import cv2

    out = np.ascontiguousarray(img.copy())
    thick = max(1, round(out.shape[0] / 160))
    for parent, child in BONES:
        colour = FINGER_COLOURS[(child - 1) // 4]
        p, c = tuple(int(round(v)) for v in uv_px[parent]), tuple(int(round(v)) for v in uv_px[child])
        cv2.line(out, p, c, colour, thick, cv2.LINE_AA)
    for k, (u, v) in enumerate(uv_px):
        cv2.circle(out, (int(round(u)), int(round(v))), thick + 1,
                   (255, 255, 255) if k == 0 else FINGER_COLOURS[(k - 1) // 4], -1, cv2.LINE_AA)
    return out


def read_rgb_u8(path: Path) -> np.ndarray:
    from shared.data.images import read_image

    return np.round(read_image(path).rgb * 255).astype(np.uint8)


def infer_images(net: KeypointNet, size: int, paths: list[Path], out_dir: Path, guard) -> list[dict[str, Any]]:
    """Keypoints of hand crops: ``OUT/<stem>.json`` (uv in pixels, root-relative 3-D in ref-bone units)
    and ``OUT/<stem>_skeleton.png``; returns the records."""
    from shared.data.images import write_image

    images = [read_rgb_u8(p) for p in paths]  # read (and validate) all before writing anything
    targets = []
    for p in paths:
        targets.append((guard.file(out_dir / f"{p.stem}.json"), guard.file(out_dir / f"{p.stem}_skeleton.png")))
    mesh = net.mano_head is not None
    pred = predict(net, np.stack([resize_u8(img, size) for img in images]), with_mesh=mesh)
    uv, xyz = pred[0], pred[1]
    records = []
    for k, (img, p, (j, png), u, x) in enumerate(zip(images, paths, targets, uv, xyz)):
        uv_px = u * np.array([img.shape[1], img.shape[0]])
        record = {"image": str(p), "width": img.shape[1], "height": img.shape[0], "keypoints": KEYPOINT_NAMES,
                  "uv_px": uv_px.round(2).tolist(), "xyz_root_relative_refbone": x.round(4).tolist()}
        if mesh:
            record["mano_verts_root_relative_refbone"] = pred[2][k].round(5).tolist()
        write_atomic(j, json.dumps(record) + "\n")
        write_image(png, draw_skeleton(img, uv_px))
        records.append(record)
    return records


def predict_freihand(net: KeypointNet, size: int, root: Path, split: str = "evaluation") -> tuple[list, list]:
    """Official submission lists for a FreiHAND split: absolute camera-frame keypoints from ``K`` and
    ``scale``; ``verts`` = the 778 MANO vertices for a regressor with a MANO head, else the keypoints
    (not MANO topology: the official eval aligns them with the keypoint transform, mesh_* = -1)."""
    ds = FreiHAND(root, split)
    K, scale = ds.K(), ds.scale()
    paths = [ds.image_path(i) for i in range(len(K))]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise CvsuiteError(f"{missing[0]}: image not found ({len(missing)} of {len(paths)} missing)")
    mesh = net.mano_head is not None
    xyz_list, verts_list = [], []
    for start in range(0, len(paths), 256):
        chunk = paths[start:start + 256]
        imgs = [read_rgb_u8(p) for p in chunk]
        pred = predict(net, np.stack([resize_u8(im, size) for im in imgs]), with_mesh=mesh)
        for k, (im, u, r) in enumerate(zip(imgs, pred[0], pred[1])):
            i = start + k
            xyz = absolute_xyz(u * np.array([im.shape[1], im.shape[0]]), r * scale[i], K[i])
            xyz_list.append(xyz.tolist())
            verts_list.append((pred[2][k] * scale[i] + xyz[0]).tolist() if mesh else xyz.tolist())
    return xyz_list, verts_list


def write_freihand_eval(root: Path, hanco: HanCo, sequences: list[str], guard) -> int:
    """Re-package HanCo images (rgb_merged) as a FreiHAND ``evaluation`` split (rgb + xyz/K/scale/verts;
    ``verts`` = the 21 keypoints since the synthetic hand has no MANO mesh). Returns the frame count."""

    variant = "rgb_merged" if "rgb_merged" in hanco.variants else hanco.variants[0]
    xyz, K, scale = [], [], []
    samples = hanco.samples(sequences)
    for i, s in enumerate(samples):
        view = hanco.camera_view(*s)
        write_atomic(guard.file(root / "evaluation" / "rgb" / f"{i:08d}.jpg"), Path(hanco.image_path(*s, variant)).read_bytes())
        xyz.append(view["xyz_cam"].tolist())
        K.append(view["K"].tolist())
        scale.append(reference_scale(view["xyz_cam"]))
    for name, obj in (("xyz", xyz), ("K", K), ("scale", scale), ("verts", xyz)):
        write_atomic(guard.file(root / f"evaluation_{name}.json"), json.dumps(obj))
    return len(samples)
