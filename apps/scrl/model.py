"""Networks of the SCRL app: the pretraining encoder (backbone + RoI / global pooling + projector)
and the torchvision Faster R-CNN FPN detector built on our backbone.

Backbones are torchvision-layout ResNets from :mod:`shared.backbones` (``resnet18``, ``resnet50``,
``resnet18_slim`` at a reduced width), so a pretrained backbone drops into torchvision's
``BackboneWithFPN`` and, through :mod:`.export`, into detectron2's ``build_resnet_fpn_backbone``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.ops import roi_align

from shared.config import bounded
from shared.backbones import build_backbone
from shared.errors import CvsuiteError

from .views import IMAGENET_MEAN, IMAGENET_STD

RESNET_ARCHS = ("resnet18_slim", "resnet18", "resnet50")


@dataclass
class BackboneConfig:
    arch: str = "resnet18_slim"  # resnet18_slim | resnet18 | resnet50
    width: int = bounded(16, ge=1, le=1024)  # resnet18_slim only (64 = torchvision ResNet-18)


def build_resnet(cfg: BackboneConfig, pooled: bool = False) -> nn.Module:
    if cfg.arch not in RESNET_ARCHS:
        raise CvsuiteError(f"scrl needs a ResNet backbone ({', '.join(RESNET_ARCHS)}), got {cfg.arch!r}")
    kwargs: dict[str, Any] = {"pooled": pooled}
    if cfg.arch == "resnet18_slim":
        kwargs["width"] = cfg.width
    return build_backbone(cfg.arch, **kwargs)


def stage_channels(backbone: nn.Module) -> list[int]:
    """Output channels of layer1..layer4."""
    out = []
    for name in ("layer1", "layer2", "layer3", "layer4"):
        block = getattr(backbone, name)[-1]
        last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
        out.append(int(last_bn.num_features))
    return out


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """BYOL's projector/predictor: Linear-BN-ReLU-Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


class RegionEncoder(nn.Module):
    """Backbone -> (RoIAlign 1x1 of each box | global average pool) -> projector.

    ``forward(images, boxes)`` with ``boxes`` a list of (N_i, 4) view-pixel boxes gives one projection
    per box (SCRL); ``boxes=None`` gives one per image (BYOL).
    """

    def __init__(self, backbone: nn.Module, proj_hidden: int, proj_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = mlp(stage_channels(backbone)[-1], proj_hidden, proj_dim)

    def pooled(self, images: torch.Tensor, boxes: list[torch.Tensor] | None) -> torch.Tensor:
        fmap = self.backbone(images)
        if boxes is None:
            return fmap.mean(dim=(2, 3))
        scale = fmap.shape[-1] / images.shape[-1]
        return roi_align(fmap, [b.to(fmap.dtype) for b in boxes], output_size=1, spatial_scale=scale,
                         sampling_ratio=2, aligned=True).flatten(1)

    def forward(self, images: torch.Tensor, boxes: list[torch.Tensor] | None = None) -> torch.Tensor:
        return self.projector(self.pooled(images, boxes))


# ------------------------------------------------------------------------------------------ detector
@dataclass
class DetectorConfig:
    """torchvision Faster R-CNN FPN sized for small images (anchors 8..128 px)."""

    min_size: int = bounded(128, ge=16, le=4096)
    max_size: int = bounded(128, ge=16, le=8192)
    fpn_channels: int = bounded(64, ge=1, le=1024)  # 256 for full-width backbones
    representation: int = bounded(256, ge=1, le=16384)  # box head MLP
    anchor_sizes: list[int] | None = bounded(None, ge=1, le=4096, min_len=5, max_len=5)  # one per FPN level; default 8, 16, 32, 64, 128
    rpn_batch: int = bounded(128, ge=1, le=100_000)
    box_batch: int = bounded(128, ge=1, le=100_000)
    detections: int = bounded(100, ge=1, le=10_000)
    score_thresh: float = bounded(0.05, ge=0.0, le=1.0)


def build_detector(backbone: nn.Module, num_classes: int, cfg: DetectorConfig) -> nn.Module:
    """Faster R-CNN with a ResNet backbone + FPN (torchvision), ``num_classes`` foreground classes."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    fpn = BackboneWithFPN(backbone, return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
                          in_channels_list=stage_channels(backbone), out_channels=cfg.fpn_channels,
                          extra_blocks=LastLevelMaxPool())
    sizes = cfg.anchor_sizes or [8, 16, 32, 64, 128]
    anchors = AnchorGenerator(tuple((s,) for s in sizes), ((0.5, 1.0, 2.0),) * len(sizes))
    head = TwoMLPHead(cfg.fpn_channels * 7 * 7, cfg.representation)
    return FasterRCNN(fpn, num_classes=None, min_size=cfg.min_size, max_size=cfg.max_size,
                      image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD), rpn_anchor_generator=anchors,
                      rpn_batch_size_per_image=cfg.rpn_batch, box_batch_size_per_image=cfg.box_batch,
                      box_head=head, box_predictor=FastRCNNPredictor(cfg.representation, num_classes + 1),
                      box_detections_per_img=cfg.detections, box_score_thresh=cfg.score_thresh)


def detector_meta(backbone_cfg: BackboneConfig, det_cfg: DetectorConfig, class_names: list[str],
                  category_ids: list[int]) -> dict[str, str]:
    """String metadata stored with a detector's safetensors so ``infer`` can rebuild it."""
    import json
    from dataclasses import asdict

    return {"format": "cvsuite-scrl-detector", "backbone": json.dumps(asdict(backbone_cfg)),
            "detector": json.dumps(asdict(det_cfg)), "class_names": json.dumps(class_names),
            "category_ids": json.dumps(category_ids)}


def load_detector(path: str | Path) -> tuple[nn.Module, list[str], list[int]]:
    """Rebuild a detector written by ``finetune`` (safetensors + metadata)."""
    import json

    from safetensors import safe_open

    from shared.weights import load_into, load_state_dict

    path = Path(path)
    tensors = load_state_dict(path)
    try:
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
    except Exception:
        meta = {}
    if meta.get("format") != "cvsuite-scrl-detector":
        raise CvsuiteError(f"{path}: not a detector written by 'cvsuite scrl finetune' (no detector metadata)")
    backbone_cfg = BackboneConfig(**json.loads(meta["backbone"]))
    det_cfg = DetectorConfig(**json.loads(meta["detector"]))
    names = json.loads(meta["class_names"])
    model = build_detector(build_resnet(backbone_cfg), len(names), det_cfg)
    load_into(model, tensors, path, strict=True)
    return model.eval(), names, json.loads(meta["category_ids"])
