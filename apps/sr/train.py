"""Training of CRL-SR (or its no-contrastive ablation) through :class:`shared.engine.Trainer`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.engine.seed import seed_everything
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard
from shared.weights import save_safetensors

from .degradations import DegradationConfig
from .data import TRAIN_PHOTOS, SRTrainDataset, check_min_size, load_hr_images, paired_files, read_rgb_uint8, resolve_lr_dir
from .losses import CRLObjective
from .model import build_model, count_parameters, model_metadata


@dataclass
class ModelConfig:
    arch: str = "crlsr"
    scale: int = bounded(4, ge=2, le=8)
    width: int = bounded(32, ge=1, le=1024)
    invariant: int = bounded(24, ge=1, le=1024)
    enc_blocks: int = bounded(2, ge=1, le=64)
    body_blocks: int = bounded(5, ge=1, le=64)
    refine_blocks: int = bounded(2, ge=1, le=64)
    condition: bool = True  # degradation embedding from the variant features modulates the restorer (FiLM)
    cond_dim: int = bounded(16, ge=1, le=1024)


@dataclass
class DataConfig:
    # HR sources: folders (plain, DIV2K/DF2K/Flickr2K, Set5/HR), bundled photos "photo:NAME" or fetched
    # photos "wallpaper:NAME" (tools/fetch_sr_photos.py)
    hr: list[str] = bounded(default_factory=lambda: [f"photo:{name}" for name in TRAIN_PHOTOS], min_len=1)
    lr: str = ""  # paired LR folder (e.g. DIV2K_train_LR_bicubic/X4); empty = degrade HR on the fly
    patch_size: int = bounded(96, ge=8, le=1024)  # HR patch side
    kinds: list[str] = bounded(default_factory=lambda: ["bicubic", "mild", "blind", "spatially-variant"], min_len=1)
    kind_probs: list[float] = bounded(default_factory=lambda: [0.35, 0.25, 0.2, 0.2], ge=0.0, le=1.0, min_len=1)
    length: int = bounded(100_000, ge=1, le=10_000_000)  # samples per (virtual) epoch
    channel_shuffle: bool = True  # random RGB permutation per patch (colour augmentation; see data.augment)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)  # ranges of the on-the-fly degradation
    # detail-aware patches (data.SRTrainDataset): keep the first of up to detail_tries random crops whose HR patch has
    # mean |Laplacian| of luma >= detail_min grey levels (else the most detailed one); 0 = off (plain random crops)
    detail_min: float = bounded(0.0, ge=0.0, le=255.0)
    detail_tries: int = bounded(1, ge=1, le=64)


@dataclass
class LossConfig:
    contrastive: bool = True  # false = the ablation (same network, L1 only)
    bidirectional_weight: float = bounded(0.05, ge=0.0, le=1000.0)
    conditional_weight: float = bounded(0.02, ge=0.0, le=1000.0)
    temperature: float = bounded(0.1, gt=0.0, le=100.0)
    embed_dim: int = bounded(64, ge=1, le=4096)
    grid: int = bounded(2, ge=1, le=16)  # contrastive patches per training crop: grid x grid cells
    warmup_steps: int = bounded(0, ge=0)  # contrastive-only steps before joint training (DASR-style)
    weight_schedule: str = "constant"  # "linear": λ_bi, λ_cond decay linearly to 0 at train.max_steps
    gather_distributed: bool = True  # DDP: contrastive negatives from every rank (gather_with_grad)
    # λ of a (1 − SSIM) term on the BT.601 luma of output and ground truth (shared.losses.ssim); 0 = L1 only
    ssim_weight: float = bounded(0.0, ge=0.0, le=1000.0)


@dataclass
class SRConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/sr", max_steps=2000, batch_size=16, lr=5e-4, tensorboard=False, ckpt_every=100))
    # weights (``sr_model.safetensors`` of an earlier run) the network starts from instead of its seeded
    # initialisation: a second training stage (fresh optimiser, schedule and data settings); empty = stage 1
    init_from: str = ""
    # with init_from: a crlsr file with FEWER body blocks than model.body_blocks (otherwise the same network) is
    # loaded into the first blocks and the extra blocks start as the identity (their last conv zero-initialised),
    # so the grown network computes exactly the file's function at step 0 (capacity without retraining)
    init_grow: bool = False


def model_kwargs(cfg: ModelConfig) -> dict[str, Any]:
    kwargs = asdict(cfg)
    kwargs.pop("arch")
    return kwargs


class SRTask(TrainTask):
    """Network + objective; only the network is exported (``model.safetensors``)."""

    def __init__(self, cfg: SRConfig) -> None:
        super().__init__()
        self.net = build_model(cfg.model.arch, **model_kwargs(cfg.model))
        m, lc = cfg.model, cfg.loss
        if lc.contrastive and not hasattr(self.net, "encode"):
            raise UsageError(f"arch {m.arch!r} has no invariant/variant encoder; use loss.contrastive=false")
        self.objective = CRLObjective(m.scale, m.width, m.invariant, lc.contrastive, lc.embed_dim, lc.temperature,
                                      lc.bidirectional_weight, lc.conditional_weight, lc.grid,
                                      lc.gather_distributed, lc.ssim_weight)
        self.warmup_steps = lc.warmup_steps if lc.contrastive else 0
        if lc.weight_schedule not in ("constant", "linear"):
            raise UsageError(f"loss.weight_schedule must be 'constant' or 'linear', got {lc.weight_schedule!r}")
        self.weight_schedule, self.max_steps = lc.weight_schedule, max(1, cfg.train.max_steps)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.net(batch["lr"], return_all=True)
        warmup = int(self.steps_done) < self.warmup_steps
        scale = 1.0
        if self.weight_schedule == "linear":  # contrastive terms shape early features, L1 alone finishes
            scale = max(0.0, 1.0 - int(self.steps_done) / self.max_steps)
        terms = self.objective(out, batch["hr"], warmup=warmup, contrast_scale=scale)
        with torch.no_grad():
            mse = torch.mean((out["sr"].clamp(0, 1) - batch["hr"]) ** 2)
            terms["psnr_rgb"] = -10 * torch.log10(mse + 1e-10)
        return terms

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        self.steps_done += 1

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict()


def build_dataset(cfg: SRConfig) -> SRTrainDataset:
    d = cfg.data
    if d.lr:
        if len(d.hr) != 1 or d.hr[0].startswith(("photo:", "wallpaper:")):
            raise UsageError("data.lr (paired training) needs exactly one HR folder in data.hr")
        lr_dir = resolve_lr_dir(d.lr, cfg.model.scale)
        from .data import resolve_hr_dirs

        pairs = paired_files(resolve_hr_dirs(d.hr[0])[0], lr_dir, cfg.model.scale)
        hr = [check_min_size(read_rgb_uint8(h), d.patch_size, str(h)) for h, _ in pairs]
        lr = [check_min_size(read_rgb_uint8(l_), d.patch_size // cfg.model.scale, str(l_)) for _, l_ in pairs]
        return SRTrainDataset(hr, cfg.model.scale, d.patch_size, d.kinds, d.kind_probs, d.length, lr_images=lr,
                              channel_shuffle=d.channel_shuffle, detail_min=d.detail_min, detail_tries=d.detail_tries)
    return SRTrainDataset(load_hr_images(d.hr, d.patch_size), cfg.model.scale, d.patch_size, d.kinds, d.kind_probs,
                          d.length, degradation=d.degradation, channel_shuffle=d.channel_shuffle,
                          detail_min=d.detail_min, detail_tries=d.detail_tries)


def load_stage_weights(net: torch.nn.Module, cfg: SRConfig) -> None:
    """Copy the network weights of ``cfg.init_from`` into ``net`` (stage 2); a file with another scale
    or network shape is one error line naming the first key that differs. With ``cfg.init_grow`` a file
    with fewer body blocks is grown function-preservingly (:func:`grow_body_state`)."""
    from shared.weights import load_into

    from .model import load_model

    state = load_model(cfg.init_from, cfg.model.scale).state_dict()
    if cfg.init_grow:
        state = grow_body_state(state, net, cfg.init_from)
    load_into(net, state, cfg.init_from)


def grow_body_state(state: dict[str, torch.Tensor], net: torch.nn.Module, where: str) -> dict[str, torch.Tensor]:
    """``state`` (a crlsr network with B body blocks) completed to ``net``'s B' > B body blocks: the
    blocks ``body.0.B … body.0.B'-1`` keep ``net``'s seeded ``conv1`` and get a zero ``conv2`` (weight and
    bias), so each new block is ``x + 0`` at the start and the output is unchanged. Every other key must
    be in both with the same shape (else one error naming it)."""
    own = net.state_dict()
    extra = [key for key in own if key not in state]
    if not extra or not all(key.startswith("body.0.") for key in extra):
        first = extra[0] if extra else "(none)"
        raise CvsuiteError(f"{where}: init_grow needs a file whose network differs only by fewer body blocks "
                           f"(model.body_blocks); first key the file lacks: {first}")
    grown = dict(state)
    for key in extra:
        if ".conv2." in key:
            grown[key] = torch.zeros_like(own[key])
        else:
            grown[key] = own[key].clone()
    return grown


def run_training(cfg: SRConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """Train; also writes ``out_dir/sr_model.safetensors`` with the arch metadata for ``infer``/``eval``.

    The RNGs are seeded *before* the network is built, so the initial weights depend only on
    ``train.seed`` (the contrastive heads are built after the network, so CRL-SR and its ablation
    start from the same network for the same seed). With ``init_from`` (stage 2) the network then takes
    that file's weights; the seed still fixes the patches.
    """
    seed_everything(cfg.train.seed)
    task = SRTask(cfg)
    if cfg.init_from:
        load_stage_weights(task.net, cfg)
    trainer = Trainer(cfg.train, task, build_dataset(cfg), full_config=cfg, guard=guard)
    summary = trainer.fit()
    out = Path(cfg.train.out_dir) / "sr_model.safetensors"
    save_safetensors(task.export_state_dict(), out, model_metadata(cfg.model.arch, model_kwargs(cfg.model)))
    summary["weights"] = str(out)
    summary["parameters"] = count_parameters(task.net)
    return summary


