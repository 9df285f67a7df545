"""Networks of the pretrain app: backbone (from ``shared.backbones``) + projector (+ BYOL predictor),
and the encoder file format that ``eval`` / ``infer`` / the demo read back.

An encoder file is a safetensors file with ``backbone.*`` (and ``projector.*``) tensors and string
metadata describing how to rebuild and feed the backbone (arch, width, input channels, image size,
normalisation). A Trainer ``model.safetensors`` without that metadata also works when the run's
``config.yaml`` lies next to it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shared.config import bounded
from shared.backbones import build_backbone
from shared.config import check_positive
from shared.errors import CvsuiteError
from shared.weights import load_into, load_state_dict, save_safetensors

ENCODER_FORMAT = "cvsuite-pretrain-encoder"


@dataclass
class ModelConfig:
    """Backbone and head sizes."""

    arch: str = "small_cnn"  # any shared.backbones name: small_cnn, resnet18, resnet50
    width: int = bounded(32, ge=1, le=1024)  # small_cnn only
    cifar_stem: bool = False  # resnet18 only: 3x3 stride-1 stem for 32-96 px inputs
    proj_hidden: int = bounded(256, ge=1, le=16384)
    proj_dim: int = bounded(64, ge=1, le=16384)
    pred_hidden: int = bounded(256, ge=1, le=16384)  # BYOL predictor

    def __post_init__(self) -> None:
        check_positive("model.", self, "width", "proj_hidden", "proj_dim", "pred_hidden")


def backbone_kwargs(arch: str, in_channels: int, width: int, cifar_stem: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"in_channels": in_channels}
    if arch == "small_cnn":
        kwargs["width"] = width
    if arch == "resnet18" and cifar_stem:
        kwargs["cifar_stem"] = True
    return kwargs


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Linear-BN-ReLU-Linear head (SimCLR / BYOL style)."""
    return nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


class Encoder(nn.Module):
    """Backbone + projector; ``forward`` gives the projection, ``features`` the backbone output."""

    def __init__(self, cfg: ModelConfig, in_channels: int) -> None:
        super().__init__()
        self.backbone = build_backbone(cfg.arch, **backbone_kwargs(cfg.arch, in_channels, cfg.width, cfg.cifar_stem))
        self.projector = mlp(int(self.backbone.out_dim), cfg.proj_hidden, cfg.proj_dim)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(images))


@dataclass
class EncoderInfo:
    """Everything needed to rebuild and feed a saved backbone."""

    arch: str
    width: int
    cifar_stem: bool
    in_channels: int
    image_size: int
    mean: list[float]
    std: list[float]
    method: str = "unknown"
    data: str = "unknown"

    def metadata(self, **extra: Any) -> dict[str, str]:
        meta = {"format": ENCODER_FORMAT, "arch": self.arch, "width": str(self.width),
                "cifar_stem": str(int(self.cifar_stem)), "in_channels": str(self.in_channels),
                "image_size": str(self.image_size), "mean": json.dumps(self.mean), "std": json.dumps(self.std),
                "method": self.method, "data": self.data}
        meta.update({k: str(v) for k, v in extra.items()})
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: Path) -> "EncoderInfo":
        try:
            return cls(arch=meta["arch"], width=int(meta["width"]), cifar_stem=meta.get("cifar_stem", "0") == "1",
                       in_channels=int(meta["in_channels"]), image_size=int(meta["image_size"]),
                       mean=[float(v) for v in json.loads(meta["mean"])],
                       std=[float(v) for v in json.loads(meta["std"])],
                       method=meta.get("method", "unknown"), data=meta.get("data", "unknown"))
        except (KeyError, ValueError, TypeError) as exc:
            raise CvsuiteError(f"{path}: malformed encoder metadata ({exc})") from None


def save_encoder(encoder: Encoder, info: EncoderInfo, path: str | Path, **extra: Any) -> None:
    """Write backbone + projector tensors with the metadata :func:`load_encoder` needs."""
    state = {f"backbone.{k}": v for k, v in encoder.backbone.state_dict().items()}
    state.update({f"projector.{k}": v for k, v in encoder.projector.state_dict().items()})
    save_safetensors(state, path, metadata=info.metadata(**extra))


def _read_metadata(path: Path) -> dict[str, str]:
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception:
        return {}


def _info_from_run_config(path: Path) -> EncoderInfo | None:
    """Rebuild the encoder description from the ``config.yaml`` the Trainer saved beside the weights."""
    config_path = path.parent / "config.yaml"
    if not config_path.is_file():
        return None
    import yaml

    try:
        cfg = yaml.safe_load(config_path.read_text())
        model, augment = cfg["model"], cfg["augment"]
        return EncoderInfo(arch=model["arch"], width=int(model["width"]), cifar_stem=bool(model["cifar_stem"]),
                           in_channels=int(cfg["in_channels"]), image_size=int(augment["size"]),
                           mean=[float(v) for v in cfg["data_mean"]], std=[float(v) for v in cfg["data_std"]],
                           method=str(cfg["method"]), data=str(cfg["data"]))
    except (KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def load_encoder(path: str | Path) -> tuple[nn.Module, EncoderInfo]:
    """Backbone (eval mode) and its description from an encoder file (or a run's model.safetensors)."""
    path = Path(path)
    tensors = load_state_dict(path)
    meta = _read_metadata(path)
    if meta.get("format") == ENCODER_FORMAT:
        info = EncoderInfo.from_metadata(meta, path)
    else:
        info = _info_from_run_config(path)
        if info is None:
            raise CvsuiteError(f"{path}: no pretrain encoder metadata and no readable config.yaml beside it")
    backbone_state = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    if not backbone_state:
        raise CvsuiteError(f"{path}: no 'backbone.*' tensors (first key {next(iter(tensors))!r})")
    backbone = build_backbone(info.arch, **backbone_kwargs(info.arch, info.in_channels, info.width, info.cifar_stem))
    load_into(backbone, backbone_state, path, strict=True)
    return backbone.eval(), info


def random_encoder(info: EncoderInfo, seed: int = 0) -> nn.Module:
    """Same architecture with random init: the baseline every pretrained encoder must beat."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = build_backbone(info.arch, **backbone_kwargs(info.arch, info.in_channels, info.width, info.cifar_stem))
    return backbone.eval()
