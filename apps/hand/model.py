"""Networks: a small CPU ResNet backbone, the MoCo v2 encoder (backbone + MLP projector) and the
keypoint regressor (backbone -> 21 x 2-D in the crop + 21 x 3-D root-relative), plus absolute 3-D.

The keypoint regressor predicts ``uv`` in crop units (pixel / image side) and root-relative 3-D
keypoints in units of the reference bone (FreiHAND's scale: middle MCP->PIP), so it is scale free;
with the camera ``K`` and the metric scale known, :func:`absolute_xyz` recovers the root position
by linear least squares on the 2-D/3-D pairs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.backbones import BACKBONES, build_backbone
from shared.errors import CvsuiteError

from .data import NUM_KP

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class SmallResNet(nn.Module):
    """ResNet-10 layout (one BasicBlock per stage, widths w, 2w, 4w, 8w) with a stride-2 3x3 stem,
    sized for 64-px hand crops on a CPU; pooled ``(B, 8w)`` features."""

    def __init__(self, in_channels: int = 3, width: int = 16, pooled: bool = True) -> None:
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        layers, channels = [], width
        for i, w in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or channels != w:
                down = nn.Sequential(nn.Conv2d(channels, w, 1, stride, bias=False), nn.BatchNorm2d(w))
            layers.append(BasicBlock(channels, w, stride, down))
            channels = w
        self.layers = nn.Sequential(*layers)
        self.pooled = pooled
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1) if self.pooled else x

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after every stage (strides 2, 4, 8, 16 of the input)."""
        x = self.stem(x)
        maps = []
        for layer in self.layers:
            x = layer(x)
            maps.append(x)
        return maps


if "resnet10_small" not in BACKBONES:
    @BACKBONES.register("resnet10_small")
    def resnet10_small(in_channels: int = 3, width: int = 16, pooled: bool = True) -> nn.Module:
        """ResNet-10 with widths (w, 2w, 4w, 8w) for 64-px crops (hand app)."""
        return SmallResNet(in_channels, width, pooled)


def make_backbone(name: str, width: int, pooled: bool = True) -> nn.Module:
    if name == "resnet10_small":
        return build_backbone(name, width=width, pooled=pooled)
    return build_backbone(name, pooled=pooled)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float (B, 3, H, W) -> ImageNet-normalised float."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    return (x - MEAN.to(x.device)) / STD.to(x.device)


class MoCoNet(nn.Module):
    """Encoder + MoCo v2 MLP projector (out_dim -> out_dim -> proj_dim)."""

    def __init__(self, backbone: str = "resnet10_small", width: int = 16, proj_dim: int = 128) -> None:
        super().__init__()
        self.encoder = make_backbone(backbone, width)
        d = int(self.encoder.out_dim)
        self.projector = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, proj_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(x))


class SpatialHead(nn.Module):
    """Last feature map -> 1x1 conv (32 channels) -> flatten -> MLP: keeps *where* features are, which a
    global average pool throws away (coordinates regress far better from 64-px crops)."""

    def __init__(self, channels: int, out: int, hidden: int, grid: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(channels, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.mlp = nn.Sequential(nn.Linear(32 * grid * grid, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.flatten(self.pool(self.reduce(fmap)), 1))


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def soft_argmax(prob: torch.Tensor) -> torch.Tensor:
    """Expected position (B, K, 2) in crop units of per-joint distributions ``prob`` (B, K, h, w) over the
    cells, cell ``j`` at ``(j + 0.5) / w``: the same grid as :class:`shared.losses.heatmap.GaussianHeatmapCE`'s
    targets, so a target's own expectation is its label (away from the border). Labels use pixel centres at
    integers, so a cell's own pixels are centred half a pixel lower: a constant offset the network learns
    (it memorises augmented crops to 1.0 px, `python -m evaluation.hand_diag overfit`)."""
    h, w = prob.shape[-2:]
    ys = (torch.arange(h, dtype=prob.dtype, device=prob.device) + 0.5) / h
    xs = (torch.arange(w, dtype=prob.dtype, device=prob.device) + 0.5) / w
    return torch.stack([(prob.sum(-2) * xs).sum(-1), (prob.sum(-1) * ys).sum(-1)], -1)


class HeatmapHead(nn.Module):
    """Integral keypoint head on a :class:`SmallResNet` pyramid (stride 16 -> 4, skips from strides 8, 4; with
    ``stride=2`` one more residual step to stride 2 with a skip from the stride-2 features, its last convolution
    zero-initialised so that it starts as the bilinear upsampling of the stride-4 maps).

    Per joint a heatmap and three location maps at stride 4; ``softmax(heatmap)`` is the joint's
    position distribution: ``uv`` = its expectation over pixel centres (soft-argmax, differentiable,
    sub-pixel), root-relative 3-D = the location maps averaged under it (each joint's 3-D is read
    where the joint is seen); ``features`` = the decoder's last map (``mid`` channels) that the
    training-only limb-map head reads (``wbone``). A hand-presence logit from the pooled deepest features says whether a
    hand is in the crop at all.
    """

    def __init__(self, widths: tuple[int, int, int, int], mid: int = 48, stride: int = 4) -> None:
        super().__init__()
        if stride not in (2, 4):
            raise CvsuiteError(f"heatmap stride must be 2 or 4, got {stride}")
        w1, w2, w3, w4 = widths
        self.up8 = _conv_bn(w4 + w3, mid)
        self.up4 = _conv_bn(mid + w2, mid)
        self.refine = _conv_bn(mid, mid)
        self.up2 = None
        if stride == 2:  # finer maps: a residual step to stride 2 with a skip from the stride-2 features
            self.up2 = nn.Sequential(_conv_bn(mid + w1, mid // 2), nn.Conv2d(mid // 2, mid, 1))
            nn.init.zeros_(self.up2[1].weight)  # starts as the bilinear upsampling: a stride-4 head's weights carry over
            nn.init.zeros_(self.up2[1].bias)
        self.heat = nn.Conv2d(mid, NUM_KP, 1)
        self.loc = nn.Conv2d(mid, NUM_KP * 3, 1)
        self.presence = nn.Linear(w4, 1)
        self.mid, self.stride = mid, stride

    def forward(self, maps: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        f2, f4, f8, f16 = maps
        up = nn.functional.interpolate
        x = self.up8(torch.cat([up(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False), f8], 1))
        x = self.up4(torch.cat([up(x, size=f4.shape[-2:], mode="bilinear", align_corners=False), f4], 1))
        x = self.refine(x)
        if self.up2 is not None:
            x = up(x, size=f2.shape[-2:], mode="bilinear", align_corners=False)
            x = x + self.up2(torch.cat([x, f2], 1))
        logits = self.heat(x)                                        # (B, 21, h, w)
        b, k, h, w = logits.shape
        prob = torch.softmax(logits.flatten(2), -1)                  # (B, 21, h*w)
        uv = soft_argmax(prob.reshape(b, k, h, w))
        loc = self.loc(x).reshape(b, k, 3, h * w)
        xyz = (loc * prob[:, :, None]).sum(-1)
        presence = self.presence(torch.flatten(nn.functional.adaptive_avg_pool2d(f16, 1), 1))[:, 0]
        return {"uv": uv, "xyz": xyz, "heatmap": prob.reshape(b, k, h, w), "presence": presence,
                "features": x}  # the decoder's stride-4 features (training-only heads such as limb maps read them)


def joint_confidence(heatmap: torch.Tensor, uv: torch.Tensor, radius: float = 1.5) -> torch.Tensor:
    """Per joint the probability mass of its heatmap within ``radius`` cells of the predicted position
    (B, 21): near 1 for a sharp single peak, low for a spread or multi-modal map."""
    b, k, h, w = heatmap.shape
    ys = torch.arange(h, dtype=heatmap.dtype) + 0.5
    xs = torch.arange(w, dtype=heatmap.dtype) + 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    du = gx[None, None] - uv[..., 0, None, None] * w
    dv = gy[None, None] - uv[..., 1, None, None] * h
    near = (du * du + dv * dv) <= radius * radius
    return (heatmap * near).sum((-2, -1))


class KeypointNet(nn.Module):
    """Encoder -> head -> ``uv`` (B, 21, 2) in crop units and ``xyz`` (B, 21, 3) root-relative / ref bone.
    ``head``: ``pooled`` (default, MLP on globally pooled features) or ``spatial`` (:class:`SpatialHead` on
    the 4x4 map; it did not generalise better on the synthetic benchmark) or ``heatmap`` (default;
    :class:`HeatmapHead`, soft-argmax + location maps + hand presence; ``resnet10_small`` only). With
    ``lifter`` (heatmap head only) the 3-D output comes from :class:`apps.hand.lifting.Lifter` applied to
    the predicted 2-D keypoints (the location maps' 3-D stays available as ``xyz_maps``)."""

    def __init__(self, backbone: str = "resnet10_small", width: int = 16, hidden: int = 256,
                 mano_model: dict[str, np.ndarray] | None = None, head: str = "heatmap", lifter: bool = False,
                 hands: str = "both", lifter_weight: float = 1.0, heatmap_stride: int = 4) -> None:
        super().__init__()
        if head not in ("spatial", "pooled", "heatmap"):
            raise CvsuiteError(f"keypoint head must be heatmap, spatial or pooled, got {head!r}")
        if head == "heatmap" and backbone != "resnet10_small":
            raise CvsuiteError(f"the heatmap head needs backbone resnet10_small, got {backbone!r}")
        self.encoder = make_backbone(backbone, width, pooled=head == "pooled")
        d = int(self.encoder.out_dim)
        if head == "heatmap":
            self.head = HeatmapHead((width, 2 * width, 4 * width, 8 * width), max(32, 3 * width), heatmap_stride)
        elif head == "spatial":
            self.head = SpatialHead(d, NUM_KP * 5, hidden, 4)
        else:
            self.head = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, NUM_KP * 5))
        if hands not in ("both", "right"):
            raise CvsuiteError(f"hands must be both or right, got {hands!r}")
        self.head_kind = head
        self.hands = hands  # "right": trained on right hands only (left ones mirrored), as FreiHAND
        self.arch = {"backbone": backbone, "width": str(width), "hidden": str(hidden), "head": head, "hands": hands}
        if head == "heatmap" and heatmap_stride != 4:
            self.arch["heatmap_stride"] = str(heatmap_stride)
        self.lifter = None
        if lifter:  # 3-D from the predicted 2-D through the kinematic-prior lifter (apps/hand/lifting.py)
            from .lifting import Lifter

            self.lifter = Lifter()
            self.lifter_weight = float(lifter_weight)  # 3-D = w * lifter + (1 - w) * location maps
            self.arch["lifter"] = "1"
            self.arch["lifter_weight"] = str(self.lifter_weight)
        self.mano_head = None
        if mano_model is not None:
            from .mano import MANOHead

            self.mano_head = MANOHead(d, mano_model)
            self.arch["mano"] = "1"

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.head_kind == "heatmap":
            maps = self.encoder.pyramid(x)
            result = self.head(maps)
            result["xyz"] = result["xyz"] - result["xyz"][:, :1]  # root-relative by construction
            if self.lifter is not None:  # the 2-D keypoints carry the pose; the lifter adds the anatomy prior
                result["xyz_maps"] = result["xyz"]
                result["xyz_lifter"] = self.lifter(result["uv"].detach())
                w = self.lifter_weight
                result["xyz"] = result["xyz_lifter"] if w == 1.0 else w * result["xyz_lifter"] + (1 - w) * result["xyz_maps"]
            if self.mano_head is not None:
                result.update(self.mano_head(maps[-1].mean((2, 3))))
            return result
        fmap = self.encoder(x)
        out = self.head(fmap)
        features = fmap if fmap.dim() == 2 else fmap.mean((2, 3))
        uv = out[:, :NUM_KP * 2].reshape(-1, NUM_KP, 2) + 0.5
        xyz = out[:, NUM_KP * 2:].reshape(-1, NUM_KP, 3)
        result = {"uv": uv, "xyz": xyz - xyz[:, :1]}  # root-relative by construction
        if self.mano_head is not None:
            result.update(self.mano_head(features))  # mano (61), verts (778, 3), joints (21, 3) in metres
        return result

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Trainable weights only: the MANO model's own arrays (licensed, user-supplied) are never saved."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                if not k.startswith("mano_head.mano.")}

    @classmethod
    def from_file(cls, path: str | Path, mano_model: dict[str, np.ndarray] | None = None) -> tuple["KeypointNet", dict[str, str]]:
        """Load a regressor saved by ``cvsuite hand train`` (arch in the safetensors metadata); a regressor
        trained with ``--mano`` needs the same MANO file again (``mano_model``)."""
        from shared.weights import load_into, load_state_dict

        meta = read_metadata(path)
        state = load_state_dict(path)
        if not any(k.startswith("head.") for k in state):
            raise CvsuiteError(f"{path}: no keypoint head (head.*) - is this a pretrained encoder? "
                               "fine-tune it with `cvsuite hand train` first")
        has_mano = any(k.startswith("mano_head.") for k in state)
        if mano_model is not None and not has_mano:
            raise CvsuiteError(f"{path}: these weights have no MANO head; train with `cvsuite hand train --mano FILE`")
        net = cls(meta.get("backbone", "resnet10_small"), int(meta.get("width", 16)), int(meta.get("hidden", 256)),
                  mano_model if has_mano else None, meta.get("head", "pooled" if "head.0.weight" in state else "heatmap"),
                  any(k.startswith("lifter.") for k in state), meta.get("hands", "both"),
                  float(meta.get("lifter_weight", 1.0)), int(meta.get("heatmap_stride", 4)))
        if has_mano and mano_model is None:
            state = {k: v for k, v in state.items() if not k.startswith("mano_head.")}
        own = net.state_dict()
        load_into(net, {**{k: v for k, v in own.items() if k.startswith("mano_head.mano.")}, **state}, path)
        net.eval()
        return net, meta


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            return dict(handle.metadata() or {})
    except Exception:
        return {}


def absolute_xyz(uv_px: np.ndarray, rel_xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Absolute camera-frame keypoints from 2-D pixels and metric root-relative 3-D: the root
    translation T minimising the reprojection error in its linearised form
    ``fx (X_i + Tx) = (u_i - cx)(Z_i + Tz)`` (same for y), solved by least squares."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    du, dv = uv_px[:, 0] - cx, uv_px[:, 1] - cy
    n = len(uv_px)
    A = np.zeros((2 * n, 3))
    b = np.zeros(2 * n)
    A[:n, 0], A[:n, 2], b[:n] = fx, -du, du * rel_xyz[:, 2] - fx * rel_xyz[:, 0]
    A[n:, 1], A[n:, 2], b[n:] = fy, -dv, dv * rel_xyz[:, 2] - fy * rel_xyz[:, 1]
    T, *_ = np.linalg.lstsq(A, b, rcond=None)
    return rel_xyz + T


def describe(net: nn.Module) -> dict[str, Any]:
    return {"parameters": sum(p.numel() for p in net.parameters())}
