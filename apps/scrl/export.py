"""Export a pretrained ResNet backbone for detectron2 (``.pkl`` + a complete ``.yaml``) or torchvision.

Input: any checkpoint :func:`shared.weights.load_backbone` reads (ours, torchvision state dicts,
MoCo ``module.encoder_q.``, BYOL/SCRL ``online_network.`` / ``backbone.`` layouts, Trainer
checkpoints). The architecture (ResNet-18/-50, or our reduced-width ResNet-18) is read from the
tensor shapes; anything else is refused with one error line.

detectron2 checkpoint: a pickle ``{"model": {name: ndarray}, "__author__": ..., "matching_heuristics":
True}`` with torchvision -> detectron2 renames (``conv1`` -> ``stem.conv1``, ``bn1`` ->
``stem.conv1.norm``, ``layerN.i.convK`` -> ``res{N+1}.i.convK``, ``bnK`` -> ``convK.norm``,
``downsample.0/1`` -> ``shortcut`` / ``shortcut.norm``). The config beside it makes detectron2's
backbone compute exactly ours: ``INPUT.FORMAT RGB`` and ``PIXEL_MEAN/STD`` = ImageNet mean/std x 255
(detectron2 normalises 0-255 pixels, we normalise 0-1 pixels with the same mean/std), and
``RESNETS.STRIDE_IN_1X1 False`` (torchvision puts the stride-2 of a bottleneck in its 3x3 conv).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.errors import CvsuiteError, UsageError
from shared.guard import open_atomic, write_atomic

from .model import BackboneConfig
from .views import IMAGENET_MEAN, IMAGENET_STD

PIXEL_MEAN = [round(m * 255, 3) for m in IMAGENET_MEAN]  # 123.675, 116.28, 103.53
PIXEL_STD = [round(s * 255, 3) for s in IMAGENET_STD]  # 58.395, 57.12, 57.375
D2_BASE_CONFIG = "COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"


def detect_architecture(path: str | Path) -> BackboneConfig:
    """Which ResNet a checkpoint holds (from its shapes); one clear error for anything else."""
    from shared.backbones import build_backbone
    from shared.weights import load_state_dict, remap_keys

    raw = load_state_dict(path)
    state = remap_keys(raw, build_backbone("resnet18_slim", width=64))
    stem = state.get("conv1.weight")
    if stem is None or stem.dim() != 4 or tuple(stem.shape[1:]) != (3, 7, 7):
        raise CvsuiteError(f"{path}: not a ResNet backbone checkpoint (no 7x7 RGB stem 'conv1.weight'; "
                           f"first key {next(iter(raw))!r})")
    blocks = [len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5)]
    width = int(stem.shape[0])
    if "layer1.0.conv3.weight" in state:
        if blocks != [3, 4, 6, 3] or width != 64:
            raise CvsuiteError(f"{path}: bottleneck ResNet with blocks {blocks}, stem width {width}: only "
                               "ResNet-50 (3, 4, 6, 3) is supported")
        return BackboneConfig(arch="resnet50")
    if blocks != [2, 2, 2, 2]:
        raise CvsuiteError(f"{path}: basic-block ResNet with blocks {blocks}: only ResNet-18 (2, 2, 2, 2) is supported")
    return BackboneConfig(arch="resnet18" if width == 64 else "resnet18_slim", width=width)


def torchvision_state(path: str | Path, arch: BackboneConfig | None = None) -> tuple[dict[str, torch.Tensor], BackboneConfig]:
    """All backbone tensors under torchvision's names (strictly loaded: every key must be present)."""
    from .train import load_pretrained_backbone

    arch = arch or detect_architecture(path)
    model = load_pretrained_backbone(path, arch)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    return state, arch


_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")


def torchvision_to_detectron2(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Rename torchvision ResNet keys to detectron2's (``num_batches_tracked`` dropped)."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key == "conv1.weight":
            name = "stem.conv1.weight"
        elif key.startswith("bn1."):
            name = "stem.conv1.norm." + key[len("bn1."):]
        else:
            match = _BLOCK.match(key)
            if match is None:
                raise CvsuiteError(f"unexpected backbone key {key!r}")
            stage, block, rest = int(match.group(1)), match.group(2), match.group(3)
            rest = re.sub(r"^bn(\d)\.", r"conv\1.norm.", rest)
            rest = re.sub(r"^downsample\.0\.", "shortcut.", rest)
            rest = re.sub(r"^downsample\.1\.", "shortcut.norm.", rest)
            name = f"res{stage + 1}.{block}.{rest}"
        out[name] = value.numpy().copy()
    return out


def detectron2_config(weights: str, arch: BackboneConfig, num_classes: int, norm: str = "BN") -> Any:
    """A complete detectron2 CfgNode: Faster R-CNN FPN on our ResNet, weights from ``weights``."""
    if arch.arch == "resnet18_slim" and arch.width != 64:
        raise CvsuiteError(f"detectron2's ResNet needs 64 stem/res2 channels; this backbone has width "
                           f"{arch.width} (export it with --format torchvision, or pretrain resnet18)")
    try:
        from detectron2 import model_zoo
        from detectron2.config import get_cfg
    except ImportError:
        raise CvsuiteError("detectron2 is not installed (run `make install`, which runs "
                           "tools/install_detectron2.py)") from None
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(D2_BASE_CONFIG))
    depth = 50 if arch.arch == "resnet50" else 18
    cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.PIXEL_MEAN = list(PIXEL_MEAN)
    cfg.MODEL.PIXEL_STD = list(PIXEL_STD)
    cfg.INPUT.FORMAT = "RGB"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 256 if depth == 50 else 64
    cfg.MODEL.RESNETS.NUM_GROUPS = 1
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 64
    cfg.MODEL.RESNETS.NORM = norm
    cfg.MODEL.FPN.NORM = "" if norm == "FrozenBN" else norm
    cfg.MODEL.BACKBONE.FREEZE_AT = 0  # fine-tune the whole pretrained backbone (SCRL protocol)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = int(num_classes)
    cfg.MODEL.MASK_ON = False
    return cfg


def write_detectron2(state: dict[str, torch.Tensor], arch: BackboneConfig, pkl_path: Path, yaml_path: Path,
                     num_classes: int, norm: str, source: str) -> None:
    """``pkl_path`` (d2 checkpoint) and ``yaml_path`` (its config, MODEL.WEIGHTS = absolute pkl path)."""
    cfg = detectron2_config(str(Path(pkl_path).resolve()), arch, num_classes, norm)
    payload = {"model": torchvision_to_detectron2(state), "__author__": f"cvsuite scrl export ({source})",
               "matching_heuristics": True}
    with open_atomic(pkl_path, "wb") as handle:
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    header = (f"# detectron2 Faster R-CNN FPN config written by `cvsuite scrl export` from {source}\n"
              f"# backbone: {arch.arch} (torchvision layout) -> detectron2 ResNet-{18 if arch.arch != 'resnet50' else 50}; "
              "RGB input, ImageNet mean/std x 255, STRIDE_IN_1X1 False.\n"
              "# Set DATASETS.TRAIN/TEST, SOLVER.*, MODEL.ROI_HEADS.NUM_CLASSES for your data; on several GPUs\n"
              "# set MODEL.RESNETS.NORM and MODEL.FPN.NORM to SyncBN (the SCRL fine-tuning protocol).\n")
    write_atomic(yaml_path, header + cfg.dump())


def export(weights: str | Path, fmt: str, out: str | Path, num_classes: int = 80, norm: str = "BN",
           claim=None) -> dict[str, str]:
    """Write the export; returns the written paths. ``claim`` (a guard's ``file``) checks each output."""
    claim = claim or (lambda p: p)
    out = Path(out)
    if fmt not in ("detectron2", "torchvision"):
        raise UsageError(f"unknown export format {fmt!r}; choose detectron2 or torchvision")
    if norm not in ("BN", "SyncBN", "FrozenBN"):
        raise UsageError(f"unknown norm {norm!r}; choose BN, SyncBN or FrozenBN")
    if fmt == "detectron2":  # claim the outputs before any work
        yaml_path = out.with_suffix(".yaml")
        claim(out)
        claim(yaml_path)
    else:
        claim(out)
    arch = detect_architecture(weights)
    if fmt == "detectron2":
        if arch.arch == "resnet18_slim" and arch.width != 64:
            detectron2_config("", arch, num_classes)  # raises the explanation before any work
        state, arch = torchvision_state(weights, arch)
        write_detectron2(state, arch, out, yaml_path, num_classes, norm, Path(weights).name)
        return {"weights": str(out), "config": str(yaml_path), "arch": arch.arch}
    state, arch = torchvision_state(weights, arch)
    with open_atomic(out, "wb") as handle:
        torch.save({k: v.clone() for k, v in state.items()}, handle)
    return {"weights": str(out), "arch": arch.arch}
