"""The hand app's objectives, built from :mod:`shared.losses` (no loss is defined here).

* pretraining: MoCo v2 = :class:`shared.losses.InfoNCE` of queries vs momentum-encoder keys and a
  :class:`shared.losses.MoCoQueue` of past keys, symmetrised over the two views;
* fine-tuning: L1 on 2-D keypoints (crop units) + L1 on root-relative 3-D keypoints (ref-bone units);
* the MANO head (``--mano``): against HanCo's MANO fits (:func:`mano_fit_loss`) where a frame has one,
  else against the keypoints (:func:`mano_joint_loss`).
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from shared.losses import InfoNCE
from shared.losses.heatmap import GaussianHeatmapCE
from shared.losses.limb_heatmap import LimbHeatmapCE

from .data import BONES


@lru_cache(maxsize=None)
def _heatmap_ce(sigma: float) -> GaussianHeatmapCE:
    """One heatmap loss per target width (1 cell on stride-4 maps, 2 on stride-2), built once."""
    return GaussianHeatmapCE(sigma=sigma)


_HEATMAP_CE = _heatmap_ce(1.0)  # the stride-4 heatmap loss
_LIMB_CE = LimbHeatmapCE(BONES, sigma=1.0)  # the 20 bones (parent, child) of the hand skeleton


def moco_loss(temperature: float) -> InfoNCE:
    return InfoNCE(temperature)


def symmetric_moco(loss_fn: InfoNCE, q: tuple[torch.Tensor, torch.Tensor], k: tuple[torch.Tensor, torch.Tensor],
                   negatives: torch.Tensor) -> torch.Tensor:
    """Mean of loss(q0, k1) and loss(q1, k0) against the shared queue."""
    return 0.5 * (loss_fn(q[0], k[1], negatives) + loss_fn(q[1], k[0], negatives))


def keypoint_loss(pred: dict[str, torch.Tensor], uv: torch.Tensor, xyz: torch.Tensor,
                  w2d: float = 1.0, w3d: float = 1.0, has_hand: torch.Tensor | None = None,
                  wpresence: float = 0.1, wheat: float = 1.0, wbone: float = 0.0,
                  heat_sigma: float = 1.0) -> dict[str, torch.Tensor]:
    """L1 on keypoints of the crops that hold a hand (``has_hand``, default all); with a ``heatmap``
    prediction also ``wheat`` x the Gaussian-target heatmap cross-entropy (dense supervision: the
    soft-argmax head learns far faster; targets of ``heat_sigma`` cells: 1 on stride-4 maps, 2 on stride-2 maps,
    i.e. the same 4 px of a 64-px crop), with ``bone_logits`` (B, 20, h, w; the training-only limb-map
    head) ``wbone`` x the limb-map cross-entropy (:class:`shared.losses.LimbHeatmapCE` along the 20 bones:
    which finger covers which cells), with a ``presence`` prediction binary cross-entropy of hand
    presence (hand-free crops teach "no hand here")."""
    if has_hand is None:
        has_hand = torch.ones(len(uv), dtype=uv.dtype, device=uv.device)
    w = has_hand.to(uv.dtype)
    n = w.sum().clamp_min(1.0)
    l2d = ((pred["uv"] - uv).abs().mean((1, 2)) * w).sum() / n
    l3d = ((pred["xyz"] - xyz).abs().mean((1, 2)) * w).sum() / n
    out = {"loss": w2d * l2d + w3d * l3d, "loss_2d": l2d, "loss_3d": l3d}
    for part in ("xyz_maps", "xyz_lifter"):  # with a lifter, each 3-D source is supervised on its own too
        if part in pred and pred[part] is not pred["xyz"]:
            out[f"loss_3d_{part[4:]}"] = ((pred[part] - xyz).abs().mean((1, 2)) * w).sum() / n
            out["loss"] = out["loss"] + w3d * out[f"loss_3d_{part[4:]}"]
    if "heatmap" in pred and wheat > 0:
        out["loss_heatmap"] = _heatmap_ce(float(heat_sigma))(pred["heatmap"], uv.clamp(0, 1), w)
        out["loss"] = out["loss"] + wheat * out["loss_heatmap"]
    if "bone_logits" in pred and wbone > 0:
        out["loss_bone"] = _LIMB_CE(pred["bone_logits"], uv.clamp(0, 1), w)
        out["loss"] = out["loss"] + wbone * out["loss_bone"]
    if "presence" in pred:
        out["loss_presence"] = F.binary_cross_entropy_with_logits(pred["presence"], w)
        out["loss"] = out["loss"] + wpresence * out["loss_presence"]
    return out


def mano_joint_loss(joints: torch.Tensor, xyz: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 between MANO joints (metres, made root-relative and divided by their own middle MCP->PIP
    length, so scale free) and the root-relative ref-bone-unit targets; ``weight`` (B,) selects items
    (default all): the MANO head's objective on keypoint labels without a MANO fit."""
    rel = joints - joints[:, :1]
    bone = (rel[:, 10] - rel[:, 9]).norm(dim=-1).clamp_min(1e-4)
    per_item = (rel / bone[:, None, None] - xyz).abs().mean((1, 2))
    if weight is None:
        return per_item.mean()
    return (per_item * weight).sum() / weight.sum().clamp_min(1.0)


# weights of the MANO-fit terms (vertex / joint L1 in reference-bone units dominate; parameters regularise)
MANO_FIT_WEIGHTS = {"verts": 1.0, "joints": 1.0, "pose": 1.0, "rot": 1.0, "shape": 0.1, "cam": 1.0}


def mano_fit_loss(pred: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], layer: torch.nn.Module
                  ) -> dict[str, torch.Tensor]:
    """The MANO head against a MANO fit (HanCo ``shape/``, moved into the image's camera frame), on the
    items with ``has_fit``: L1 of root-relative vertices and joints (both divided by the fit's middle
    MCP->PIP length; the prediction keeps its metric size, so shape errors count), squared error of the 45
    articulation values and 10 shape values, of the global rotation matrix and L1 of the 3 camera values.
    The fit's mesh comes from ``layer`` itself (the same MANO file)."""
    from .mano import rodrigues

    w = batch["has_fit"].to(pred["verts"].dtype)
    n = w.sum().clamp_min(1.0)
    b = len(w)
    with torch.no_grad():
        pose = torch.cat([batch["fit_pose"].new_zeros(b, 3), batch["fit_pose"]], 1)
        gt_verts, gt_joints = layer(pose, batch["fit_shape"], global_rot=batch["fit_rot"])
        bone = (gt_joints[:, 10] - gt_joints[:, 9]).norm(dim=-1).clamp_min(1e-4)[:, None, None]
        gv, gj = (gt_verts - gt_joints[:, :1]) / bone, (gt_joints - gt_joints[:, :1]) / bone
    params = pred["mano"]
    root = pred["joints"][:, :1]
    terms = {
        "verts": ((pred["verts"] - root) / bone - gv).abs().mean((1, 2)),
        "joints": ((pred["joints"] - root) / bone - gj).abs().mean((1, 2)),
        "pose": ((params[:, 3:48] - batch["fit_pose"]) ** 2).mean(1),
        "rot": ((rodrigues(params[:, :3]) - batch["fit_rot"]) ** 2).sum((1, 2)),
        "shape": ((params[:, 48:58] - batch["fit_shape"]) ** 2).mean(1),
        "cam": (params[:, 58:] - batch["fit_cam"]).abs().mean(1),
    }
    out = {f"loss_mano_{k}": (v * w).sum() / n for k, v in terms.items()}
    out["loss_mano_fit"] = sum(MANO_FIT_WEIGHTS[k] * out[f"loss_mano_{k}"] for k in terms)
    return out
