"""The one training loop of cvsuite.

An app describes *what* to optimise as a :class:`TrainTask` (an ``nn.Module`` whose forward
returns ``{"loss": ..., other scalars}``); the :class:`Trainer` does the rest: device, seeding,
sampling, DDP, AMP, clipping, LR schedule, logging, progress, atomic checkpoints and exact resume.
"""
from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..config import check_finite, check_non_negative, check_positive, save_config, to_dict
from ..errors import CvsuiteError, UsageError, one_line
from ..guard import OutputGuard
from . import distributed as dist_utils
from .checkpoint import load_checkpoint, remove_orphaned_tmp, save_atomic
from .data import ResumableBatchSampler, SeededDataset, move_to
from .logging import MetricLogger
from .schedulers import lr_multiplier
from .seed import rng_state, seed_everything, set_deterministic, set_rng_state


@dataclass
class TrainConfig:
    """Engine settings shared by every app (embed as ``train: TrainConfig`` in an app config)."""

    out_dir: str = "runs/exp"
    max_steps: int = 1000
    batch_size: int = 64  # per process
    num_workers: int = 0
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "cosine"  # cosine | constant
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    amp: bool = True  # bf16 autocast, CUDA only
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 10
    ckpt_every: int = 200
    resume: bool = False
    progress: bool = True
    tensorboard: bool = True
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        """Refuse nonsense while the config is read, before any data or model is touched."""
        check_positive("train.", self, "max_steps", "batch_size", "log_every", "ckpt_every")
        check_non_negative("train.", self, "num_workers", "warmup_steps")
        check_finite("train.", self, "lr", "weight_decay", "momentum", "min_lr_ratio", "grad_clip")
        check_positive("train.", self, "lr")
        check_non_negative("train.", self, "weight_decay", "momentum", "min_lr_ratio", "grad_clip")
        if self.min_lr_ratio > 1:
            raise UsageError(f"config key 'train.min_lr_ratio' must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise UsageError(f"config key 'train.optimizer' must be adamw or sgd, got {self.optimizer!r}")
        if self.scheduler not in ("cosine", "constant"):
            raise UsageError(f"config key 'train.scheduler' must be cosine or constant, got {self.scheduler!r}")


class TrainTask(nn.Module, abc.ABC):
    """What to optimise. Subclass and implement :meth:`forward`; the other hooks are optional."""

    @abc.abstractmethod
    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        """Compute the training objective on one batch: ``{"loss": scalar, other scalars to log}``."""

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        """Called after each optimizer step (EMA targets, queues, adversarial banks)."""

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors written to ``model.safetensors`` at the end of training."""
        return self.state_dict()

    def param_groups(self) -> list[dict[str, Any]] | None:
        """Optional custom optimizer parameter groups; default: all trainable parameters."""
        return None

    def check_setup(self, cfg: TrainConfig, world_size: int) -> None:
        """Refuse (UsageError) a batch size / process count the objective cannot use, before training.

        Called by the Trainer once the process group is known; e.g. W-MSE needs its whitened batch
        (``batch_size x world_size`` when gathered over ranks) to be a multiple of its ``w_size``.
        """


def _one_line_worker_errors(loader: Any) -> Any:
    """Iterate ``loader``; a CvsuiteError raised in a DataLoader worker comes back as the same one-line
    error it is with ``num_workers=0`` (torch re-wraps it with the worker's whole traceback)."""
    iterator = iter(loader)
    try:
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except CvsuiteError as exc:
                if "Original Traceback" not in str(exc):
                    raise
                raise type(exc)(one_line(exc)) from None
            yield batch
    finally:
        # Stop the workers now: left to the garbage collector (the error's traceback keeps the
        # iterator alive), torch's shutdown waits ~5 s per worker before terminating it.
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but this machine has no usable CUDA GPU; use cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def build_optimizer(cfg: TrainConfig, task: TrainTask) -> torch.optim.Optimizer:
    groups = task.param_groups() or [{"params": [p for p in task.parameters() if p.requires_grad]}]
    if not any(len(list(g["params"])) for g in groups):
        raise CvsuiteError("the task has no trainable parameters")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise UsageError(f"unknown optimizer {cfg.optimizer!r}; choose adamw or sgd")


class Trainer:
    """Runs ``cfg.max_steps`` optimizer steps of ``task`` on ``dataset``; see module docstring."""

    def __init__(self, cfg: TrainConfig, task: TrainTask, dataset: Dataset,
                 collate_fn: Callable[[list[Any]], Any] | None = None, full_config: Any = None,
                 guard: OutputGuard | None = None) -> None:
        if cfg.max_steps <= 0 or cfg.batch_size <= 0:
            raise UsageError("train.max_steps and train.batch_size must be positive")
        self.cfg = cfg
        # Every file the run writes is claimed through this guard (the app's, holding its inputs;
        # else one without inputs that still refuses to overwrite files cvsuite did not write).
        self.guard = guard if guard is not None else OutputGuard(force=False)
        self.full_config = full_config if full_config is not None else cfg
        self.device = resolve_device(cfg.device)
        self.dist = dist_utils.init_distributed(self.device.type)
        if self.device.type == "cuda" and self.dist.world_size > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_path = self.out_dir / "checkpoints" / "last.pt"
        task.check_setup(cfg, self.dist.world_size)
        set_deterministic(cfg.deterministic)
        seed_everything(cfg.seed)
        self.task = task.to(self.device)
        self.model: nn.Module = self.task
        if self.dist.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.task, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)
        self.optimizer = build_optimizer(cfg, self.task)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_multiplier(cfg.scheduler, cfg.max_steps, cfg.warmup_steps, cfg.min_lr_ratio))
        self.sampler = ResumableBatchSampler(len(dataset), cfg.batch_size, cfg.seed,  # type: ignore[arg-type]
                                             self.dist.rank, self.dist.world_size)
        self.loader = DataLoader(SeededDataset(dataset, cfg.seed), batch_sampler=self.sampler,
                                 num_workers=cfg.num_workers, collate_fn=collate_fn,
                                 pin_memory=self.device.type == "cuda",
                                 generator=torch.Generator().manual_seed(cfg.seed),
                                 persistent_workers=False)
        self.step = 0
        self.logger: MetricLogger | None = None  # opened by fit() once the resume step is known

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.task.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step, "rng": rng_state(),
                "config": to_dict(self.full_config), "world_size": self.dist.world_size}

    def save_checkpoint(self) -> None:
        if self.dist.is_main:
            save_atomic(self.state_dict(), self.ckpt_path)
            self.guard.record()
        dist_utils.barrier()

    def load_checkpoint(self, path: str | Path) -> None:
        state = load_checkpoint(path)
        try:
            self.task.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CvsuiteError(f"checkpoint {path} does not match this model/config: {str(exc).splitlines()[0]}") from None
        self.step = int(state["step"])
        set_rng_state(state["rng"])

    def output_files(self) -> list[Path]:
        """Every file the run writes (claimed through the guard before anything is written)."""
        return [self.out_dir / "config.yaml", self.out_dir / "metrics.jsonl", self.out_dir / "metrics.csv",
                self.ckpt_path, self.out_dir / "model.safetensors"]

    def claim_outputs(self) -> None:
        """Claim the run folder and its files: inputs are never overwritten; on a fresh run, files
        cvsuite did not write need ``--force``; a resumed run owns the files of the run it continues."""
        self.guard.directory(self.out_dir)
        self.guard.directory(self.ckpt_path.parent)
        for path in self.output_files():
            self.guard.file(path, allow_existing=self.cfg.resume)

    # -- loop --------------------------------------------------------------------------------
    def _autocast(self):
        enabled = self.cfg.amp and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def train_step(self, batch: Any) -> dict[str, torch.Tensor]:
        self.model.train()
        batch = move_to(batch, self.device)
        with self._autocast():
            outputs = self.model(batch)
        if not isinstance(outputs, dict) or "loss" not in outputs:
            raise CvsuiteError("TrainTask.forward must return a dict with a 'loss' entry")
        loss = outputs["loss"]
        if not torch.isfinite(loss.detach()):
            raise CvsuiteError(f"loss became {loss.item()} at step {self.step}; lower train.lr or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            outputs["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.task.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.task.on_step_end(self.step, outputs)
        return outputs

    def fit(self) -> dict[str, Any]:
        """Train to ``max_steps`` (continuing from the last checkpoint when ``resume``); return a summary."""
        cfg = self.cfg
        if cfg.resume:
            if not self.ckpt_path.is_file():
                raise CvsuiteError(f"train.resume=true but no checkpoint at {self.ckpt_path}")
        elif self.ckpt_path.is_file():
            raise CvsuiteError(f"{self.out_dir} already holds a run; pass train.resume=true to continue it "
                               f"or choose another train.out_dir")
        refused: CvsuiteError | None = None
        if self.dist.is_main:
            try:
                self.claim_outputs()
            except CvsuiteError as exc:
                refused = exc
            else:
                for path in self.output_files():
                    remove_orphaned_tmp(path)
        dist_utils.raise_on_all_ranks(refused)  # no rank is left waiting when rank 0 refuses
        if cfg.resume:
            self.load_checkpoint(self.ckpt_path)
        # a fresh run starts new logs; a resumed one drops what was logged after its checkpoint
        self.logger = MetricLogger(self.out_dir, enabled=self.dist.is_main, tensorboard=cfg.tensorboard,
                                   resume_step=self.step)
        if self.dist.is_main:
            save_config(self.full_config, self.out_dir / "config.yaml")
            self.guard.record()
        last: dict[str, float] = {}
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not (cfg.progress and self.dist.is_main),
                   desc="train", dynamic_ncols=True, leave=False)
        started = time.perf_counter()
        while self.step < cfg.max_steps:
            epoch, batch_in_epoch = divmod(self.step, self.sampler.steps_per_epoch)
            self.sampler.set_position(epoch, batch_in_epoch)
            for batch in _one_line_worker_errors(self.loader):
                outputs = self.train_step(batch)
                self.step += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    last = {k: float(v.detach()) for k, v in outputs.items()
                            if isinstance(v, torch.Tensor) and v.numel() == 1}
                    last = {k: float(dist_utils.all_reduce_mean(torch.tensor(v))) for k, v in last.items()}
                    last["lr"] = self.scheduler.get_last_lr()[0]
                    last["epoch"] = epoch
                    self.logger.log(self.step, last)
                    if self.dist.is_main:
                        self.guard.record()
                    bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4f}")
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.max_steps:
                    self.save_checkpoint()
                if self.step >= cfg.max_steps:
                    break
        bar.close()
        self.logger.close()
        weights_path = self.out_dir / "model.safetensors"
        if self.dist.is_main:
            from ..weights import save_safetensors

            save_safetensors(self.task.export_state_dict(), weights_path,
                             metadata={"step": str(self.step), "format": "cvsuite"})
            self.guard.record()
        dist_utils.barrier()
        return {"step": self.step, "metrics": last, "weights": str(weights_path),
                "checkpoint": str(self.ckpt_path), "seconds": time.perf_counter() - started}
