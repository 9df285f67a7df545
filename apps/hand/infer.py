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
from .evaluate import KeypointStats
from .model import KeypointNet, absolute_xyz, normalise
from .train import HanCoImages

FINGER_COLOURS = [(255, 60, 60), (255, 170, 0), (60, 200, 60), (0, 170, 255), (170, 80, 255)]


@torch.no_grad()
def predict(net: KeypointNet, images: np.ndarray, batch: int = 128, with_mesh: bool = False,
            with_confidence: bool = False):
    """uint8 (N, S, S, 3) -> uv (N, 21, 2) in crop units, root-relative xyz (N, 21, 3) in ref-bone units
    (+ with ``with_mesh``, MANO vertices (N, 778, 3) root-relative in the same units; + with
    ``with_confidence`` a dict: ``hand_score`` (N,) presence probability and ``joint_confidence`` (N, 21),
    the heatmap mass near each predicted joint; NaN for a regressor without a heatmap head)."""
    from .model import joint_confidence

    net.eval()
    uvs, xyzs, meshes, scores, confs = [], [], [], [], []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch])).permute(0, 3, 1, 2)
        out = net(normalise(x))
        uvs.append(out["uv"].numpy())
        xyzs.append(out["xyz"].numpy())
        if "heatmap" in out:
            scores.append(torch.sigmoid(out["presence"]).numpy())
            confs.append(joint_confidence(out["heatmap"], out["uv"], 1.5 * 4 / getattr(net.head, "stride", 4)).numpy())
        else:
            scores.append(np.full(len(x), np.nan))
            confs.append(np.full((len(x), 21), np.nan))
        if with_mesh:
            joints, verts = out["joints"], out["verts"]
            bone = (joints[:, 10] - joints[:, 9]).norm(dim=-1).clamp_min(1e-6)[:, None, None]
            meshes.append(((verts - joints[:, :1]) / bone).numpy())
    result = [np.concatenate(uvs).astype(np.float64), np.concatenate(xyzs).astype(np.float64)]
    if with_mesh:
        result.append(np.concatenate(meshes).astype(np.float64))
    if with_confidence:
        result.append({"hand_score": np.concatenate(scores).astype(np.float64),
                       "joint_confidence": np.concatenate(confs).astype(np.float64)})
    return tuple(result)


def hanco_targets(images: HanCoImages) -> dict[str, np.ndarray]:
    """Ground truth of held images: root-relative 3-D (N, 21, 3) metres, 2-D (N, 21, 2) pixels of the
    stored image, the reference-bone scale (N,) and the original side."""
    ds = images.ds
    side = ds.read_image(*images.samples[0], images.variant).shape[1]
    rel, uv, scale = [], [], []
    for sample in images.samples:
        view = ds.camera_view(*sample)
        rel.append(view["xyz_cam"] - view["xyz_cam"][0])
        uv.append((view["uv"] + 0.5) * images.size / side - 0.5)  # pixel centres at integers in both
        scale.append(reference_scale(view["xyz_cam"]))
    return {"rel": np.stack(rel), "uv": np.stack(uv), "scale": np.array(scale), "side": side}


def right_handed_view(images: HanCoImages, gt: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The held images and their truth with every left hand mirrored to a right one (what a user of a
    right-hand estimator does with ``hand infer --left``): images flipped, ``u -> S-1-u``, ``x -> -x``."""
    from .train import left_flags

    left = left_flags(images)
    imgs = images.images.copy()
    imgs[left] = imgs[left][:, :, ::-1]
    gt = {**gt, "uv": gt["uv"].copy(), "rel": gt["rel"].copy()}
    gt["uv"][left, :, 0] = images.size - 1 - gt["uv"][left, :, 0]
    gt["rel"][left, :, 0] *= -1
    return imgs, gt


def evaluate_hanco(net: KeypointNet, images: HanCoImages, shuffled: bool = False) -> dict[str, float]:
    """PA keypoint error (mm; official similarity alignment) and its AUC over 0-50 mm, raw root-relative
    error (mm, metric scale from the ground truth), 2-D error and PCK@3.2 px (pixels of the network's
    input, ``images.size``); with ``shuffled`` also the shuffled-image control (``shuffled_*``). A
    right-hand estimator sees left hands mirrored (:func:`right_handed_view`)."""
    from .evaluate import pose_scores, shuffled_scores

    gt = hanco_targets(images)
    pixels = images.images
    if getattr(net, "hands", "both") == "right":
        pixels, gt = right_handed_view(images, gt)
    uv, xyz = predict(net, pixels)
    pred_rel = xyz * gt["scale"][:, None, None]
    pred_uv = uv * images.size
    out = pose_scores(gt["rel"], pred_rel, gt["uv"], pred_uv)
    raw = KeypointStats()
    for g, p in zip(gt["rel"], pred_rel):
        raw.feed(g, p)
    r = raw.measures()
    out.update(rel_mpjpe_mm=1000 * r["mean"], rel_auc=r["auc"], images=len(images.samples))
    if shuffled:
        out.update({f"shuffled_{k}": v for k, v in shuffled_scores(gt["rel"], pred_rel, gt["uv"], pred_uv).items()})
    return out


def evaluate_controls(train: HanCoImages, indices: np.ndarray, test: HanCoImages,
                      right_hands: bool = False) -> dict[str, dict[str, float]]:
    """Image-blind references on ``test``: ``aligned_mean`` (the labelled poses' Procrustes mean for every
    image, with the labelled mean 2-D layout), ``fixed_pose`` (one open hand, the synthetic model's rest
    pose, for every image) and ``camera_mean`` (the old, weaker camera-frame average). ``right_hands``:
    left hands of both sets mirrored first, as a right-hand estimator is scored."""
    from .evaluate import pose_scores, procrustes_mean
    from .synth import BONE_LENGTHS, forward_kinematics

    tr = hanco_targets(train)
    idx = np.asarray(indices)
    te = hanco_targets(test)
    if right_hands:
        tr, te = right_handed_view(train, tr)[1], right_handed_view(test, te)[1]
    n = len(te["rel"])
    mean_uv = np.broadcast_to(tr["uv"][idx].mean(0), te["uv"].shape)
    rest = forward_kinematics(BONE_LENGTHS, np.zeros((1, 5, 4)))[0]
    cam_mean = (tr["rel"][idx] / tr["scale"][idx, None, None]).mean(0)
    return {"aligned_mean": pose_scores(te["rel"], np.broadcast_to(procrustes_mean(tr["rel"][idx]), (n, 21, 3)),
                                        te["uv"], mean_uv),
            "fixed_pose": pose_scores(te["rel"], np.broadcast_to(rest - rest[0], (n, 21, 3))),
            "camera_mean": pose_scores(te["rel"], cam_mean[None] * te["scale"][:, None, None], te["uv"], mean_uv)}


def draw_skeleton(img: np.ndarray, uv_px: np.ndarray, thickness: int | None = None) -> np.ndarray:
    """The 21-keypoint skeleton over an RGB uint8 image (fingers coloured, wrist white, dark outline so
    it stays visible on any background); ``thickness`` defaults to the image height / 160."""
    import cv2

    out = np.ascontiguousarray(img.copy())
    thick = thickness or max(1, round(out.shape[0] / 160))
    pts = [tuple(int(round(v)) for v in p) for p in uv_px]
    for parent, child in BONES:
        cv2.line(out, pts[parent], pts[child], (0, 0, 0), thick + 2, cv2.LINE_AA)
    for parent, child in BONES:
        cv2.line(out, pts[parent], pts[child], FINGER_COLOURS[(child - 1) // 4], thick, cv2.LINE_AA)
    for k, p in enumerate(pts):
        cv2.circle(out, p, thick + 2, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(out, p, thick + 1, (255, 255, 255) if k == 0 else FINGER_COLOURS[(k - 1) // 4], -1, cv2.LINE_AA)
    return out


def read_rgb_u8(path: Path) -> np.ndarray:
    from shared.data.images import read_image

    return np.round(read_image(path).rgb * 255).astype(np.uint8)


def crop_square(img: np.ndarray, box: tuple[float, float, float, float] | None, size: int,
                margin: float = 1.3) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A ``size`` x ``size`` crop of ``img`` (any size) and its frame ``(x0, y0, side)`` in input pixels.

    ``box`` = (x, y, w, h): a square of side ``margin * max(w, h)`` centred on it (1.3: the hand fills the
    crop about as the training crops do, 75-110 % of the rendered hand's size); None: the whole image
    (its longer side). The aspect ratio is kept: what lies outside the image is padded grey, never
    squashed. Large images are first reduced with area averaging (no aliasing). Input pixel centres
    are at integers; crop pixel ``j`` covers input ``x0 + [j, j + 1) * side / size``.
    """
    import cv2

    h, w = img.shape[:2]
    if box is None:
        side = float(max(h, w))
        x0, y0 = (w - side) / 2, (h - side) / 2
    else:
        bx, by, bw, bh = box
        side = margin * max(bw, bh)
        x0, y0 = bx + bw / 2 - side / 2, by + bh / 2 - side / 2
    reduce = max(1.0, side / (2 * size))
    small = img if reduce == 1.0 else cv2.resize(img, (max(1, round(w / reduce)), max(1, round(h / reduce))),
                                                 interpolation=cv2.INTER_AREA)
    sx, sy = w / small.shape[1], h / small.shape[0]
    step = side / size
    # crop pixel j -> input x0 + (j + 0.5) * step - 0.5 -> reduced image (x + 0.5) / sx - 0.5
    A = np.array([[step / sx, 0.0, (x0 + 0.5 * step) / sx - 0.5],
                  [0.0, step / sy, (y0 + 0.5 * step) / sy - 0.5]])
    crop = cv2.warpAffine(small, A, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(114, 114, 114))
    return crop, (x0, y0, side)


def crop_to_input(uv: np.ndarray, frame: tuple[float, float, float], size: int) -> np.ndarray:
    """Crop-unit keypoints (pixel centres at integers of the crop) -> input image pixels."""
    x0, y0, side = frame
    step = side / size
    return np.stack([x0 + (uv[:, 0] * size + 0.5) * step - 0.5, y0 + (uv[:, 1] * size + 0.5) * step - 0.5], 1)


def parse_box(text: str) -> tuple[float, float, float, float]:
    from shared.errors import UsageError

    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0 or not all(np.isfinite(vals)):
        raise UsageError(f"--box must be x,y,w,h in pixels with w, h > 0, got {text!r}")
    return vals  # type: ignore[return-value]


def check_box(box: tuple[float, float, float, float], path: Path, img: np.ndarray) -> None:
    h, w = img.shape[:2]
    x, y, bw, bh = box
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        raise CvsuiteError(f"{path}: --box {x:g},{y:g},{bw:g},{bh:g} lies outside the image ({w}x{h})")


def render_overlay(img: np.ndarray, uv_px: np.ndarray, frame: tuple[float, float, float] | None,
                   min_side: int = 384) -> np.ndarray:
    """The skeleton drawn over the input image, upscaled (nearest) when small so it stays legible; line
    width follows the hand's crop size, not the photo's. ``frame``: the crop square drawn in grey."""
    import cv2

    factor = max(1, int(np.ceil(min_side / max(img.shape[:2]))))
    big = np.kron(img, np.ones((factor, factor, 1), np.uint8)) if factor > 1 else img.copy()
    pts = (uv_px + 0.5) * factor - 0.5
    hand_side = frame[2] * factor if frame else max(big.shape[:2])
    thick = max(1, round(hand_side / 120))
    if frame:
        x0, y0, side = (v * factor for v in frame)
        cv2.rectangle(big, (int(x0), int(y0)), (int(x0 + side), int(y0 + side)), (160, 160, 160), max(1, thick // 2))
    return draw_skeleton(big, pts, thick)


def infer_images(net: KeypointNet, size: int, paths: list[Path], out_dir: Path, guard,
                 box: tuple[float, float, float, float] | None = None, min_confidence: float = 0.5,
                 warn=print, left: bool = False) -> list[dict[str, Any]]:
    """Keypoints of hands in photos of any size: ``OUT/<stem>.json`` (uv in input pixels, root-relative
    3-D in ref-bone units, confidences) and ``OUT/<stem>_skeleton.png``; returns the records.

    The hand crop is ``box`` (x, y, w, h; enlarged to a square) or the whole image (padded square);
    ``warn`` gets one line per image whose hand score or keypoint confidence is below ``min_confidence``.
    ``left``: the hands are left hands; a right-hand estimator sees the crops mirrored and its keypoints
    are mirrored back (2-D ``u -> (S-1)/S - u`` in crop units, 3-D ``x -> -x``).
    """
    from shared.data.images import write_image

    images = [read_rgb_u8(p) for p in paths]  # read (and validate) all before writing anything
    if box is not None:
        for p, img in zip(paths, images):
            check_box(box, p, img)
    targets = []
    for p in paths:
        targets.append((guard.file(out_dir / f"{p.stem}.json"), guard.file(out_dir / f"{p.stem}_skeleton.png")))
    crops, frames = zip(*(crop_square(img, box, size) for img in images))
    mesh = net.mano_head is not None
    mirrored = left and getattr(net, "hands", "both") == "right"
    batch = np.stack(crops)
    pred = predict(net, np.ascontiguousarray(batch[:, :, ::-1]) if mirrored else batch, with_mesh=mesh, with_confidence=True)
    uv, xyz, conf = pred[0], pred[1], pred[-1]
    if mirrored:
        uv = np.stack([(size - 1) / size - uv[..., 0], uv[..., 1]], -1)
        xyz = xyz * np.array([-1.0, 1.0, 1.0])
    records = []
    for k, (img, p, (j, png), u, x, frame) in enumerate(zip(images, paths, targets, uv, xyz, frames)):
        uv_px = crop_to_input(u, frame, size)
        score, joints = float(conf["hand_score"][k]), conf["joint_confidence"][k]
        keypoint_conf = float(np.mean(joints)) if np.isfinite(joints).all() else float("nan")
        record = {"image": str(p), "width": img.shape[1], "height": img.shape[0], "keypoints": KEYPOINT_NAMES,
                  "uv_px": uv_px.round(2).tolist(), "xyz_root_relative_refbone": x.round(4).tolist(),
                  "crop_xy_side_px": [round(v, 2) for v in frame],
                  "hand_score": round(score, 4) if np.isfinite(score) else None,       # None: no presence head
                  "keypoint_confidence": round(keypoint_conf, 4) if np.isfinite(keypoint_conf) else None,
                  "joint_confidence": [round(float(c), 4) for c in joints] if np.isfinite(joints).all() else None}
        if mesh:
            record["mano_verts_root_relative_refbone"] = pred[2][k].round(5).tolist()
        if score < min_confidence:
            hint = "" if box is not None else "; give --box x,y,w,h around the hand"
            warn(f"cvsuite: warning: {p}: no hand found (hand score {score:.2f}); keypoints are a guess{hint}")
        elif keypoint_conf < min_confidence * 0.5:
            warn(f"cvsuite: warning: {p}: low keypoint confidence ({keypoint_conf:.2f}); check the drawing")
        write_atomic(j, json.dumps(record) + "\n")
        write_image(png, render_overlay(img, uv_px, frame if box is not None else None))
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
        crops, frames = zip(*(crop_square(read_rgb_u8(p), None, size) for p in chunk))  # padded, never squashed
        pred = predict(net, np.stack(crops), with_mesh=mesh)
        for k, (frame, u, r) in enumerate(zip(frames, pred[0], pred[1])):
            i = start + k
            xyz = absolute_xyz(crop_to_input(u, frame, size), r * scale[i], K[i])
            xyz_list.append(xyz.tolist())
            verts_list.append((pred[2][k] * scale[i] + xyz[0]).tolist() if mesh else xyz.tolist())
    return xyz_list, verts_list


def write_freihand_eval(root: Path, hanco: HanCo, sequences: list[str], guard) -> int:
    """Re-package HanCo images (rgb_merged) as a FreiHAND ``evaluation`` split (rgb + xyz/K/scale/verts;
    ``verts`` = the 21 keypoints since the synthetic hand has no MANO mesh; left hands mirrored to right
    ones as FreiHAND stores them). Returns the frame count."""

    from shared.data.images import write_image

    variant = "rgb_merged" if "rgb_merged" in hanco.variants else hanco.variants[0]
    xyz, K, scale = [], [], []
    samples = hanco.samples(sequences)
    for i, s in enumerate(samples):
        view = hanco.camera_view(*s)
        target = guard.file(root / "evaluation" / "rgb" / f"{i:08d}.jpg")
        if hanco.is_left(s[0], s[2]):  # FreiHAND holds right hands only: a left hand is stored mirrored
            img = read_rgb_u8(hanco.image_path(*s, variant))[:, ::-1]
            width = img.shape[1]
            view["xyz_cam"] = view["xyz_cam"] * np.array([-1.0, 1.0, 1.0])
            view["K"] = view["K"].copy()
            view["K"][0, 2] = width - 1 - view["K"][0, 2]
            write_image(target, np.ascontiguousarray(img))
        else:
            write_atomic(target, Path(hanco.image_path(*s, variant)).read_bytes())
        xyz.append(view["xyz_cam"].tolist())
        K.append(view["K"].tolist())
        scale.append(reference_scale(view["xyz_cam"]))
    for name, obj in (("xyz", xyz), ("K", K), ("scale", scale), ("verts", xyz)):
        write_atomic(guard.file(root / f"evaluation_{name}.json"), json.dumps(obj))
    return len(samples)
