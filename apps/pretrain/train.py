"""Pretraining tasks (one :class:`TrainTask` per method) and the ``train`` entry point.

Every method shares :class:`PretrainTask`: an online :class:`~apps.pretrain.model.Encoder`
(backbone + projector) applied to all views of a batch in one forward pass. The methods differ only
in their targets and objective:

* ``simclr``: NT-Xent between the two views' projections;
* ``hcl``: hard-negative-reweighted (and debiased) NT-Xent;
* ``wmse``: ``d`` views, whitening-MSE;
* ``moco``: queries vs momentum-encoder keys + a queue of past keys (InfoNCE), symmetrised;
* ``adco``: queries vs momentum keys + an adversarial negative bank (ascent step after each
  encoder step; the bank is filled from key features during the first steps);
* ``byol``: online predictor regresses the EMA target's projection (cosine-scheduled momentum).

The shared :class:`~shared.engine.Trainer` does the loop, checkpoints, resume and DDP.
"""
from __future__ import annotations

import abc

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.engine.checkpoint import remove_orphaned_tmp
from shared.engine.distributed import init_distributed, is_main_process, raise_on_all_ranks
from shared.engine.trainer import resolve_device
from shared.guard import OutputGuard, write_atomic
from shared.errors import CvsuiteError, UsageError
from shared.losses import MoCoQueue, cosine_momentum, make_momentum_copy, momentum_update

from . import losses as L
from .augment import AugmentConfig, MultiViewDataset, ViewGenerator
from .data import channel_stats, open_images
from .model import Encoder, EncoderInfo, ModelConfig, mlp, save_encoder


@dataclass
class PretrainConfig:
    """Full configuration of a pretraining run (saved as ``config.yaml`` in the run folder)."""

    method: str = "simclr"  # simclr | moco | wmse | adco | hcl | byol
    data: str = "digits"  # 'digits' or a dataset folder (ImageFolder, CIFAR-10/100, STL-10)
    split: str = "train"  # STL-10 also: unlabeled, train+unlabeled
    in_channels: int = bounded(0, ge=0, le=4)  # 0 = from the data; for image folders 1 reads images as grey
    data_mean: list[float] | None = None  # per-channel normalisation; None = measured on the data
    data_std: list[float] | None = None
    evaluate: bool = True  # after training, kNN/linear eval when the data has a labelled test split
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    simclr: L.SimCLRConfig = field(default_factory=L.SimCLRConfig)
    moco: L.MoCoConfig = field(default_factory=L.MoCoConfig)
    wmse: L.WMSEConfig = field(default_factory=L.WMSEConfig)
    hcl: L.HCLConfig = field(default_factory=L.HCLConfig)
    adco: L.AdCoConfig = field(default_factory=L.AdCoConfig)
    byol: L.BYOLConfig = field(default_factory=L.BYOLConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/pretrain", max_steps=500, batch_size=256, lr=2e-3, weight_decay=1e-4,
        warmup_steps=20, log_every=20, ckpt_every=250))

    def __post_init__(self) -> None:
        check_method(self.method)
        if self.in_channels not in (0, 1, 3):
            raise UsageError(f"config key 'in_channels' must be 0 (from the data), 1 or 3, got {self.in_channels!r}")
        for name in ("data_mean", "data_std"):
            values = getattr(self, name)
            if values is not None and (not values or any(not math.isfinite(v) for v in values)):
                raise UsageError(f"config key '{name}' needs finite numbers, got {values!r}")
        if self.data_std is not None and any(v <= 0 for v in self.data_std):
            raise UsageError(f"config key 'data_std' must be positive, got {self.data_std!r}")


def num_views(cfg: PretrainConfig) -> int:
    return cfg.wmse.num_views if cfg.method == "wmse" else 2


def check_method(method: str) -> None:
    if method not in L.METHODS:
        raise UsageError(f"unknown method {method!r}; choose one of: {', '.join(L.METHODS)}")


# ------------------------------------------------------------------------------------------ tasks
class PretrainTask(TrainTask):
    """Online encoder over all views; subclasses define :meth:`objective`."""

    def __init__(self, cfg: PretrainConfig, in_channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.model, in_channels)

    @staticmethod
    def split_views(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """``(B, V, C, H, W)`` views -> ``(V*B, C, H, W)`` stacked view by view, and ``V``."""
        views = batch["views"]
        if views.dim() != 5:
            raise UsageError(f"expected views of shape (B, V, C, H, W), got {tuple(views.shape)}")
        return views.transpose(0, 1).reshape(-1, *views.shape[2:]), views.shape[1]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, views = self.split_views(batch)
        return self.objective(images, views)

    @abc.abstractmethod
    def objective(self, images: torch.Tensor, views: int) -> dict[str, torch.Tensor]:
        """The method's loss on all views stacked view by view: ``{"loss": ..., ...}``."""

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the online networks (what downstream use needs), not targets / queues / banks."""
        state = {f"backbone.{k}": v for k, v in self.encoder.backbone.state_dict().items()}
        state.update({f"projector.{k}": v for k, v in self.encoder.projector.state_dict().items()})
        return state


class ContrastivePairTask(PretrainTask):
    """SimCLR (NT-Xent) or HCL: one loss on the two views' projections."""

    def __init__(self, cfg: PretrainConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels)
        self.loss_fn = L.hcl_loss(cfg.hcl) if cfg.method == "hcl" else L.simclr_loss(cfg.simclr)

    def objective(self, images: torch.Tensor, views: int) -> dict[str, torch.Tensor]:
        z0, z1 = self.encoder(images).chunk(2)
        return {"loss": self.loss_fn(z0, z1)}


class WMSETask(PretrainTask):
    """W-MSE: whitening-MSE over ``wmse.num_views`` views."""

    def __init__(self, cfg: PretrainConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels)
        self.loss_fn = L.wmse_loss(cfg.wmse)

    def objective(self, images: torch.Tensor, views: int) -> dict[str, torch.Tensor]:
        return {"loss": self.loss_fn(self.encoder(images))}

    def check_setup(self, cfg: TrainConfig, world_size: int) -> None:
        """The whitened batch per view is what the loss really sees: ``batch_size x world_size`` when it
        gathers over ranks (it does whenever the process group exists when the task is built), else
        ``batch_size``. It must be a positive multiple of ``w_size``; refuse before the first step."""
        gathered = world_size if self.loss_fn.gather_distributed else 1
        whitened = cfg.batch_size * gathered
        w_size = self.cfg.wmse.w_size
        if whitened < w_size or whitened % w_size:
            where = (f"train.batch_size={cfg.batch_size} x {gathered} processes = {whitened}" if gathered > 1
                     else f"train.batch_size={cfg.batch_size}")
            raise UsageError(f"W-MSE whitens {where} samples per view, which must be a positive multiple "
                             f"of wmse.w_size={w_size}")
        if w_size < 2 * self.cfg.model.proj_dim:
            raise UsageError(f"wmse.w_size={w_size} must be >= 2 x model.proj_dim ({2 * self.cfg.model.proj_dim}) "
                             "or the whitening covariance is near-singular")


class MomentumKeyTask(PretrainTask):
    """Base of MoCo and AdCo: a momentum (EMA) copy of the encoder produces the keys."""

    def __init__(self, cfg: PretrainConfig, in_channels: int, momentum: float) -> None:
        super().__init__(cfg, in_channels)
        self.key_encoder = make_momentum_copy(self.encoder)
        self.momentum = momentum
        self._cache: dict[str, torch.Tensor] = {}

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.encoder.parameters() if p.requires_grad]}]

    def queries_and_keys(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.encoder(images)
        with torch.no_grad():
            k = self.key_encoder(images)
        return q, k.detach()

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        momentum_update(self.key_encoder, self.encoder, self.momentum)


class MoCoTask(MomentumKeyTask):
    """MoCo v2 (symmetrised): InfoNCE of queries vs the other view's keys and the key queue."""

    def __init__(self, cfg: PretrainConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels, cfg.moco.momentum)
        self.loss_fn = L.moco_loss(cfg.moco)
        self.queue = MoCoQueue(cfg.model.proj_dim, cfg.moco.queue_size)

    def objective(self, images: torch.Tensor, views: int) -> dict[str, torch.Tensor]:
        q, k = self.queries_and_keys(images)
        q0, q1 = q.chunk(2)
        k0, k1 = k.chunk(2)
        loss = L.symmetric_queue_loss(self.loss_fn, (q0, q1), (k0, k1), self.queue.negatives())
        self._cache = {"keys": k1}
        return {"loss": loss}

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        super().on_step_end(step, outputs)
        self.queue.enqueue(self._cache.pop("keys"))


class AdCoTask(MomentumKeyTask):
    """AdCo (symmetrised): queries vs keys + adversarial bank; the bank ascends after each step."""

    def __init__(self, cfg: PretrainConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels, cfg.adco.momentum)
        self.loss_fn, self.bank = L.adco_parts(cfg.adco, cfg.model.proj_dim)

    def objective(self, images: torch.Tensor, views: int) -> dict[str, torch.Tensor]:
        q, k = self.queries_and_keys(images)
        q0, q1 = q.chunk(2)
        k0, k1 = k.chunk(2)
        if int(self.bank.filled) < self.bank.size:  # warm-up: fill the bank with key features
            self.bank.init_from_keys(k.float())
        loss = 0.5 * (self.loss_fn(q0, k1, self.bank) + self.loss_fn(q1, k0, self.bank))
        self._cache = {"q0": q0.detach().float(), "k1": k1.float(), "q1": q1.detach().float(), "k0": k0.float()}
        return {"loss": loss}

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        super().on_step_end(step, outputs)
        cache, self._cache = self._cache, {}
        # one ascent step on the mean of the two directions' losses (official --sym 1 update); each
        # query's softmax holds only its own direction's keys, never its own view's key
        outputs["bank_loss"] = self.bank.ascent_step_pairs([(cache["q0"], cache["k1"]), (cache["q1"], cache["k0"])])


class BYOLTask(PretrainTask):
    """BYOL: online projector + predictor vs an EMA target encoder (momentum cosine-scheduled to 1)."""

    def __init__(self, cfg: PretrainConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels)
        self.predictor = mlp(cfg.model.proj_dim, cfg.model.pred_hidden, cfg.model.proj_dim)
        self.target = make_momentum_copy(self.encoder)
        self.loss_fn = L.byol_loss()

    def param_groups(self) -> list[dict[str, Any]]:
        params = [p for m in (self.encoder, self.predictor) for p in m.parameters() if p.requires_grad]
        return [{"params": params}]

    def objective(self, images: torch.Tensor, views: int) -> dict[str, torch.Tensor]:
        p0, p1 = self.predictor(self.encoder(images)).chunk(2)
        with torch.no_grad():
            t0, t1 = self.target(images).chunk(2)
        return {"loss": self.loss_fn(p0, t1.detach(), p1, t0.detach())}

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        m = cosine_momentum(step + 1, self.cfg.train.max_steps, self.cfg.byol.base_momentum)
        momentum_update(self.target, self.encoder, m)
        outputs["target_momentum"] = torch.tensor(m)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        state = super().export_state_dict()
        state.update({f"predictor.{k}": v for k, v in self.predictor.state_dict().items()})
        return state


TASKS: dict[str, type[PretrainTask]] = {"simclr": ContrastivePairTask, "hcl": ContrastivePairTask,
                                        "wmse": WMSETask, "moco": MoCoTask, "adco": AdCoTask, "byol": BYOLTask}


def build_task(cfg: PretrainConfig, in_channels: int) -> PretrainTask:
    """The method's task with freshly (seeded) initialised networks."""
    check_method(cfg.method)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        return TASKS[cfg.method](cfg, in_channels)


# ------------------------------------------------------------------------------------------ run
def encoder_info(cfg: PretrainConfig) -> EncoderInfo:
    return EncoderInfo(arch=cfg.model.arch, width=cfg.model.width, cifar_stem=cfg.model.cifar_stem,
                       in_channels=cfg.in_channels, image_size=cfg.augment.size, mean=list(cfg.data_mean or []),
                       std=list(cfg.data_std or []), method=cfg.method, data=cfg.data)


def prepare(cfg: PretrainConfig) -> tuple[PretrainConfig, MultiViewDataset]:
    """Open the data, fill in channels and normalisation, and build the multi-view dataset."""
    check_method(cfg.method)
    images = open_images(cfg.data, cfg.split, channels=cfg.in_channels or 3)
    if cfg.data_mean is None or cfg.data_std is None:
        stats = channel_stats(images)
        cfg = dataclasses.replace(cfg, data_mean=stats.mean, data_std=stats.std)
    if len(cfg.data_mean) != images.channels or len(cfg.data_std) != images.channels:
        raise UsageError(f"data_mean/data_std need {images.channels} values for {images.name}")
    cfg = dataclasses.replace(cfg, in_channels=images.channels)
    views = ViewGenerator(cfg.augment, num_views(cfg), cfg.data_mean, cfg.data_std)
    return cfg, MultiViewDataset(images, views)


def run_training(cfg: PretrainConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """Train ``cfg.method``; writes the run folder, ``encoder.safetensors`` and (optionally) ``eval.json``.

    ``guard`` (the CLI's, holding ``--force``) claims every output before any work; by default one
    whose only input is the data folder.
    """
    check_method(cfg.method)
    if guard is None:
        guard = OutputGuard([cfg.data] if cfg.data != "digits" else [], force=False)
    # Join the process group BEFORE the task is built: the losses decide at construction whether
    # they gather over ranks (built earlier, every rank trained on its local batch only).
    init_distributed(resolve_device(cfg.train.device).type)
    out_dir = Path(cfg.train.out_dir)
    encoder_path = out_dir / "encoder.safetensors"
    refused: CvsuiteError | None = None
    if is_main_process():
        try:
            guard.directory(out_dir)
            guard.file(encoder_path, allow_existing=cfg.train.resume)
            if cfg.evaluate:
                guard.file(out_dir / "eval.json", allow_existing=cfg.train.resume)
        except CvsuiteError as exc:
            refused = exc
        else:
            remove_orphaned_tmp(encoder_path)  # left by a kill while the encoder was being saved
    raise_on_all_ranks(refused)  # rank 0's refusal stops every rank (none waits in a collective)
    cfg, dataset = prepare(cfg)
    task = build_task(cfg, cfg.in_channels)
    trainer = Trainer(cfg.train, task, dataset, full_config=cfg, guard=guard)
    summary = trainer.fit()
    if is_main_process():
        save_encoder(task.encoder.cpu(), encoder_info(cfg), encoder_path, step=summary["step"])
        summary["encoder"] = str(encoder_path)
        if cfg.evaluate and (cfg.data == "digits" or cfg.split == "train"):
            from .evaluate import evaluate_encoder_file

            try:
                metrics = evaluate_encoder_file(encoder_path, cfg.data)
            except CvsuiteError as exc:  # e.g. no labelled test split: training still succeeded
                summary["eval_skipped"] = str(exc)
            else:
                write_atomic(out_dir / "eval.json", json.dumps(metrics, indent=2) + "\n")
                summary["eval"] = metrics
        guard.record()
    return summary
