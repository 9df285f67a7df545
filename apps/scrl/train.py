"""SCRL / image-level BYOL pretraining and torchvision Faster R-CNN fine-tuning, both through
:class:`shared.engine.Trainer`.

Pretraining (:class:`RegionBYOLTask`): each image gives two views with their geometry kept and K
boxes in the crops' intersection (:mod:`.views`). Online network: backbone -> RoIAlign(1x1) of every
box on the last feature map -> projector -> predictor; target network: an EMA copy of backbone +
projector (momentum cosine-scheduled from ``base_momentum`` to 1, ``shared.losses.momentum``).
Loss: BYOL's ``2 - 2 cos`` per box pair, symmetrised (``shared.losses.BYOLLoss``). ``method=byol``
replaces RoIAlign with global average pooling (one "box" = the whole view): the image-level
baseline at the same budget (same views, steps, batch, networks).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.engine.distributed import is_main_process
from shared.errors import CvsuiteError, UsageError
from shared.losses import cosine_momentum, make_momentum_copy, momentum_update
from shared.weights import save_safetensors
from shared.guard import OutputGuard, write_atomic

from .data import DetectionDataset, collate_detection, load_rgb, open_detection_set, unlabelled_images
from .losses import box_byol_loss
from .model import BackboneConfig, DetectorConfig, RegionEncoder, build_detector, build_resnet, detector_meta, mlp
from .views import ViewConfig, make_pair

METHODS = ("scrl", "byol")
ENCODER_FORMAT = "cvsuite-scrl-encoder"


# ------------------------------------------------------------------------------------------ pretraining
@dataclass
class PretrainConfig:
    """A pretraining run (saved as ``config.yaml`` in the run folder)."""

    data: str = ""  # image folder (recursive) or COCO json whose images are used (labels ignored)
    method: str = "scrl"  # scrl | byol (image-level baseline)
    max_side: int = bounded(160, ge=16, le=4096)  # images are resized so their longer side is at most this (kept in memory)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    views: ViewConfig = field(default_factory=ViewConfig)
    proj_hidden: int = bounded(512, ge=1, le=16384)
    proj_dim: int = bounded(128, ge=1, le=16384)
    pred_hidden: int = bounded(512, ge=1, le=16384)
    base_momentum: float = bounded(0.99, ge=0.0, le=1.0)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/scrl_pretrain", max_steps=300, batch_size=32, lr=2e-3, weight_decay=1e-4,
        warmup_steps=20, log_every=20, ckpt_every=100))


class PairDataset(Dataset):
    """Unlabelled images (decoded once, longer side <= ``max_side``) -> two views + boxes in each."""

    def __init__(self, files: list[Path], views: ViewConfig, max_side: int) -> None:
        import torch.nn.functional as F

        self.views = views
        self.images: list[torch.Tensor] = []
        for path in files:
            image = torch.from_numpy(load_rgb(path)).permute(2, 0, 1).float() / 255.0
            scale = max_side / max(image.shape[1:])
            if scale < 1:
                size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[2] * scale)))
                image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                                      align_corners=False)[0]
            self.images.append(image.clamp(0, 1))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))  # seeded per sample by the engine
        return make_pair(self.images[index], self.views, rng)


def collate_pairs(batch: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    return {"views": torch.stack([b["views"] for b in batch]),
            "boxes0": [b["boxes0"] for b in batch], "boxes1": [b["boxes1"] for b in batch]}


class RegionBYOLTask(TrainTask):
    """SCRL (per-box BYOL on RoIAligned features) or image-level BYOL; see the module docstring."""

    def __init__(self, cfg: PretrainConfig) -> None:
        super().__init__()
        if cfg.method not in METHODS:
            raise UsageError(f"unknown method {cfg.method!r}; choose scrl or byol")
        self.cfg = cfg
        self.online = RegionEncoder(build_resnet(cfg.backbone), cfg.proj_hidden, cfg.proj_dim)
        self.predictor = mlp(cfg.proj_dim, cfg.pred_hidden, cfg.proj_dim)
        self.target = make_momentum_copy(self.online)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for m in (self.online, self.predictor) for p in m.parameters()]}]

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        views = batch["views"]
        images = torch.cat([views[:, 0], views[:, 1]])
        boxes = None
        if self.cfg.method == "scrl":
            boxes = list(batch["boxes0"]) + list(batch["boxes1"])
            pairs = sum(len(b) for b in batch["boxes0"])
            if pairs < 2:  # no overlapping crops in the whole batch: nothing to learn from
                zero = sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
                return {"loss": zero, "pairs": torch.tensor(float(pairs))}
        else:
            pairs = views.shape[0]
        p0, p1 = self.predictor(self.online(images, boxes)).split(pairs)
        with torch.no_grad():
            z0, z1 = self.target(images, boxes).split(pairs)
        return {"loss": box_byol_loss(p0, z1, p1, z0), "pairs": torch.tensor(float(pairs))}

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        m = cosine_momentum(step + 1, self.cfg.train.max_steps, self.cfg.base_momentum)
        momentum_update(self.target, self.online, m)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"backbone.{k}": v for k, v in self.online.backbone.state_dict().items()}
        state.update({f"projector.{k}": v for k, v in self.online.projector.state_dict().items()})
        state.update({f"predictor.{k}": v for k, v in self.predictor.state_dict().items()})
        return state


def build_pretrain_task(cfg: PretrainConfig) -> RegionBYOLTask:
    """Seeded initialisation (depends only on ``train.seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return RegionBYOLTask(cfg)


def save_encoder(task: RegionBYOLTask, cfg: PretrainConfig, path: Path, step: int) -> None:
    """``encoder.safetensors``: backbone (+ heads) and how to rebuild it."""
    save_safetensors(task.export_state_dict(), path, metadata={
        "format": ENCODER_FORMAT, "method": cfg.method, "arch": cfg.backbone.arch, "width": cfg.backbone.width,
        "step": step, "view_size": cfg.views.size})


def run_pretraining(cfg: PretrainConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """Pretrain; writes the run folder (checkpoints, logs, config) and ``encoder.safetensors``."""
    if not cfg.data:
        raise UsageError("give the pretraining images: --data FOLDER_OR_COCO_JSON (data=)")
    files = unlabelled_images(cfg.data)
    dataset = PairDataset(files, cfg.views, cfg.max_side)
    task = build_pretrain_task(cfg)
    summary = Trainer(cfg.train, task, dataset, collate_fn=collate_pairs, full_config=cfg, guard=guard).fit()
    encoder_path = Path(cfg.train.out_dir) / "encoder.safetensors"
    if is_main_process():
        save_encoder(task.cpu(), cfg, encoder_path, summary["step"])
    summary["encoder"] = str(encoder_path)
    summary["images"] = len(files)
    return summary


# ------------------------------------------------------------------------------------------ fine-tuning
@dataclass
class FinetuneConfig:
    """Fine-tune Faster R-CNN FPN on a COCO json (or VOC folder) from a pretrained (or random) backbone."""

    data: str = ""  # COCO json (images beside it in images/) or VOC root
    images: str = ""  # image folder of the COCO json when not beside it
    val: str = ""  # COCO json / VOC root evaluated (COCOeval) after training; empty = none
    val_images: str = ""
    weights: str = ""  # pretrained backbone (any layout shared.weights.load_backbone reads); empty = random
    engine: str = "torchvision"  # torchvision | detectron2
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    flip: bool = True
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/scrl_finetune", max_steps=300, batch_size=8, optimizer="sgd", lr=0.02, momentum=0.9,
        weight_decay=1e-4, warmup_steps=50, grad_clip=10.0, log_every=20, ckpt_every=100, amp=False))


class DetectionTask(TrainTask):
    """torchvision Faster R-CNN: the loss is the sum of RPN and box-head losses."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, batch: tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]) -> dict[str, torch.Tensor]:
        images, targets = batch
        losses = self.detector(images, targets)
        return {"loss": sum(losses.values()), **losses}

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return self.detector.state_dict()


def load_pretrained_backbone(path: str | Path, cfg: BackboneConfig) -> torch.nn.Module:
    """Our backbone with every weight from ``path`` (ours, torchvision, BYOL/MoCo/SCRL layouts)."""
    from shared.weights import load_backbone

    kwargs: dict[str, Any] = {"pooled": False}
    if cfg.arch == "resnet18_slim":
        kwargs["width"] = cfg.width
    model, _ = load_backbone(path, arch=cfg.arch, strict=True, **kwargs)
    return model


def build_finetune_detector(cfg: FinetuneConfig, num_classes: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        backbone = load_pretrained_backbone(cfg.weights, cfg.backbone) if cfg.weights else build_resnet(cfg.backbone)
        return build_detector(backbone, num_classes, cfg.detector)


def run_finetune(cfg: FinetuneConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """torchvision engine: train, write ``detector.safetensors`` (+ ``metrics.json`` when ``val`` is set)."""
    if not cfg.data:
        raise UsageError("give the training set: --data COCO_JSON_OR_VOC_DIR (data=)")
    train_set = open_detection_set(cfg.data, cfg.images or None)
    val_set = open_detection_set(cfg.val, cfg.val_images or None) if cfg.val else None
    if val_set is not None and val_set.class_names != train_set.class_names:
        raise CvsuiteError(f"{cfg.val}: categories {val_set.class_names} differ from {cfg.data}'s "
                           f"{train_set.class_names}")
    detector = build_finetune_detector(cfg, len(train_set.class_names))
    task = DetectionTask(detector)
    summary = Trainer(cfg.train, task, DetectionDataset(train_set, cfg.flip), collate_fn=collate_detection,
                      full_config=cfg, guard=guard).fit()
    out_dir = Path(cfg.train.out_dir)
    detector_path = out_dir / "detector.safetensors"
    if is_main_process():
        save_safetensors(detector.state_dict(), detector_path, metadata=detector_meta(
            cfg.backbone, cfg.detector, train_set.class_names, train_set.category_ids))
        summary["detector"] = str(detector_path)
        if val_set is not None:
            from .evaluate import evaluate_detector

            metrics = evaluate_detector(detector.cpu(), val_set)
            write_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
            summary["eval"] = metrics
    return summary
