"""Training of the points app through :class:`shared.engine.Trainer`.

``mode=siamese``: the Siamese patch network official SCL needs first (patch vs the same patch of a
  rotated copy = same, vs another anchor's patch = different); writes ``siamese.safetensors``.
``mode=pretrain``: self-supervised encoder.
  * ``contrast=self`` (SCL): per cloud, FPS anchors -> kNN patches -> patch embeddings (max-pooled
    per-point features -> projection MLP); InfoNCE of each patch against its positive and sampled
    negatives of the same cloud. ``similarity=siamese`` (official, needs ``siamese_weights``):
    positive = the dilated patch of the same anchor (or ``positive=self_similar``), negatives from the
    official absolute cosine band; ``similarity=descriptor`` (ablation): geometric-descriptor
    similarity with a rank band. ``negatives=random`` is the random-negative ablation.
  * ``contrast=instance`` (ablation): two augmented views of every cloud, global features, the other
    clouds of the batch are the negatives (cross-cloud instance discrimination).

``mode=finetune``: part segmentation (+ the category head) on a stratified ``label_fraction`` of the
training shapes (at least one shape per category), optionally starting from ``init`` (a pretrained
encoder file); ``head=reference`` trains the reference DGCNN part-seg network instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard

from .data import Shape, read_shapenetpart, resample, shape_features
from .losses import build_contrastive_loss, build_segmentation_loss
from .model import EncoderConfig, PointEncoder, build_segmenter, load_model, save_model
from .scl import (SiamesePatchNet, band_at, dilated_patches, extract_patches, official_band, patch_descriptors,
                  random_rotation, sample_band_negatives, sample_pairs, self_similarity, siamese_similarity)


def _default_train() -> TrainConfig:
    return TrainConfig(out_dir="runs/points", max_steps=300, batch_size=16, lr=2e-3, weight_decay=1e-4,
                       warmup_steps=10, log_every=10, ckpt_every=100)


@dataclass
class PointsConfig:
    """``cvsuite points train`` settings (pretrain or finetune)."""

    mode: str = "pretrain"                # siamese | pretrain | finetune
    data: str = "data/points_synth/h5"    # ShapeNetPart folder (either layout)
    points: int = bounded(1024, ge=16, le=100_000)                    # points per training cloud
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    # pretraining
    contrast: str = "self"                # self (SCL) | instance (ablation)
    similarity: str = "siamese"           # siamese (official: a trained Siamese patch net) | descriptor (ablation)
    siamese_weights: str = ""             # mode=siamese output, needed by similarity=siamese
    positive: str = "dilated"             # dilated (official: dilated patch, same anchor) | self_similar (abstract)
    band_epochs: int = 256                # official threshold schedule's clock (epochs 8 / 28 of 256)
    negatives: str = "hard"               # hard (banded) | random (ablation)
    num_anchors: int = bounded(32, ge=1, le=4096)
    patch_size: int = bounded(32, ge=2, le=4096)                  # paper: 160 of 2048 points
    num_negatives: int = bounded(16, ge=1, le=4096)
    band_start: list[float] = bounded(default_factory=lambda: [0.0, 1.0], ge=0.0, le=1.0, min_len=2, max_len=2)
    band_end: list[float] = bounded(default_factory=lambda: [0.5, 0.9], ge=0.0, le=1.0, min_len=2, max_len=2)
    temperature: float = bounded(0.07, gt=0.0, le=100.0)
    proj_dim: int = bounded(64, ge=1, le=4096)
    # fine-tuning
    init: str = ""                        # pretrained encoder (.safetensors); empty = from scratch
    label_fraction: float = bounded(1.0, gt=0.0, le=1.0)           # of the training shapes, stratified by category
    head: str = "mlp"                     # mlp (ours, fine-tunes `init`) | reference (antao97 DGCNN_partseg)
    label_seed: int = bounded(0, ge=0)
    num_threads: int = bounded(0, ge=0, le=1024)                  # torch CPU threads (0 = torch's default)
    train: TrainConfig = field(default_factory=_default_train)


# ---- data ----------------------------------------------------------------------------------------

def select_fraction(shapes: list[Shape], fraction: float, seed: int) -> list[Shape]:
    """A stratified subset: ``max(1, round(fraction * n_c))`` shapes of every category ``c``."""
    if not 0.0 < fraction <= 1.0:
        raise UsageError(f"label_fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    cats = np.array([s.category for s in shapes])
    for c in np.unique(cats):
        members = np.flatnonzero(cats == c)
        take = max(1, int(round(fraction * len(members))))
        chosen += rng.choice(members, take, replace=False).tolist()
    return [shapes[i] for i in sorted(chosen)]


def augment(points: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anisotropic scale (normals transformed accordingly), shift and clipped jitter (global numpy RNG)."""
    scale = np.random.uniform(0.8, 1.25, 3).astype(np.float32)
    pts = points * scale + np.random.uniform(-0.1, 0.1, 3).astype(np.float32)
    pts = pts + np.clip(np.random.normal(0, 0.01, pts.shape), -0.05, 0.05).astype(np.float32)
    nrm = normals / scale
    nrm = nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    return pts.astype(np.float32), nrm.astype(np.float32)


class ShapeSet(torch.utils.data.Dataset):
    """Items ``{"x": (6, N), "parts": (N,), "category": ()}`` (+ ``"x2"``, a second view, if ``two_views``)."""

    def __init__(self, shapes: list[Shape], n_points: int, train: bool = True, two_views: bool = False) -> None:
        self.shapes, self.n, self.train, self.two_views = shapes, n_points, train, two_views

    def __len__(self) -> int:
        return len(self.shapes)

    def _view(self, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
        idx = resample(len(shape.points), self.n, np.random.default_rng(np.random.randint(2**31)))
        pts, nrm = shape.points[idx], shape.normals[idx]
        if self.train:
            pts, nrm = augment(pts, nrm)
        return shape_features(pts, nrm), idx

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        shape = self.shapes[i]
        x, idx = self._view(shape)
        item = {"x": torch.from_numpy(x), "category": torch.tensor(shape.category)}
        if len(shape.parts):
            item["parts"] = torch.from_numpy(shape.parts[idx])
        if self.two_views:
            item["x2"] = torch.from_numpy(self._view(shape)[0])
        return item


# ---- tasks ---------------------------------------------------------------------------------------

class ProjectionHead(nn.Sequential):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


class SiameseTask(TrainTask):
    """Official Siamese pre-step: (patch, same patch of a rotated copy) -> same, (patch, another
    anchor's patch) -> different; cross entropy of the pair classifier. Deviation: the other
    anchor's patch is taken from the rotated copy too (official: from the original cloud), so
    "is the second patch rotated?" cannot solve the task."""

    def __init__(self, cfg: PointsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = SiamesePatchNet(k=cfg.encoder.k)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        b = x.shape[0]
        xyz = x[:, :3].transpose(1, 2).contiguous()
        rot = torch.stack([random_rotation() for _ in range(b)])                  # (B, 3, 3), one per cloud
        x_rot = torch.cat([torch.bmm(rot, x[:, :3]), torch.bmm(rot, x[:, 3:6])], dim=1)
        _, patches = extract_patches(xyz, self.cfg.num_anchors, self.cfg.patch_size)
        f = self.net.patch_features(x, patches)
        f_rot = self.net.patch_features(x_rot, patches)                            # same points, rotated
        m = f.shape[1]
        shift = int(torch.randint(1, max(m, 2), ()))
        f_other = torch.roll(f_rot, shifts=shift, dims=1)                           # another anchor's patch
        logits = torch.cat([self.net.pair_logits(f, f_rot), self.net.pair_logits(f, f_other)], dim=1)
        target = torch.cat([torch.ones(b, m), torch.zeros(b, m)], dim=1).long()
        loss = nn.functional.cross_entropy(logits.reshape(-1, 2), target.reshape(-1))
        with torch.no_grad():
            acc = (logits.argmax(-1) == target).float().mean()
        return {"loss": loss, "pair_acc": acc}

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}


def load_siamese(path: str | Path, k: int) -> SiamesePatchNet:
    """A frozen Siamese patch net (eval mode) from ``mode=siamese``'s ``siamese.safetensors``."""
    from shared.weights import load_into, load_state_dict

    from .model import read_metadata

    meta = read_metadata(path)
    if meta.get("kind") != "siamese":
        raise CvsuiteError(f"{path}: not a Siamese patch network (train one with mode=siamese)")
    net = SiamesePatchNet(k=int(json.loads(meta.get("k", str(k)))))
    load_into(net, load_state_dict(path), path)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class SelfContrastTask(TrainTask):
    """SCL objective (see module docstring); ``progress`` is a buffer so a resumed run keeps its band."""

    def __init__(self, cfg: PointsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = PointEncoder(cfg.encoder)
        self.head = ProjectionHead(self.encoder.point_dim, cfg.proj_dim)
        self.loss_fn = build_contrastive_loss(cfg.temperature)
        self.register_buffer("progress", torch.zeros(()))
        # frozen, outside the module tree: never optimised, never exported
        self._siamese = [load_siamese(cfg.siamese_weights, cfg.encoder.k)] if cfg.similarity == "siamese" else []

    def _embed(self, feats: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """(B, M, proj) projected max-pooled patch embeddings of per-point features (B, D, N)."""
        b, m, p = patches.shape
        pf = torch.gather(feats.transpose(1, 2), 1, patches.reshape(b, m * p, 1).expand(-1, -1, feats.shape[1]))
        return self.head(pf.view(b, m, p, -1).max(dim=2).values)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        feats, _ = self.encoder(x)                                   # (B, D, N)
        xyz, normals = x[:, :3].transpose(1, 2).contiguous(), x[:, 3:6].transpose(1, 2).contiguous()
        anchors, patches = extract_patches(xyz, self.cfg.num_anchors, self.cfg.patch_size)
        b, m, _ = patches.shape
        z = self._embed(feats, patches)                              # (B, M, proj)
        anchor_xyz = torch.gather(xyz, 1, anchors.unsqueeze(2).expand(-1, -1, 3))
        logs: dict[str, torch.Tensor] = {}
        if self.cfg.similarity == "siamese":
            sim = siamese_similarity(self._siamese[0], x, patches)
            band = official_band(float(self.progress), self.cfg.band_epochs)
            if self.cfg.negatives == "random":
                eye = torch.eye(m, dtype=torch.bool).unsqueeze(0).expand(b, m, m)
                neg = torch.multinomial((~eye).float().reshape(b * m, m), self.cfg.num_negatives,
                                        replacement=True).view(b, m, -1)
                empty = torch.zeros(b, m, dtype=torch.bool)
            else:
                neg, empty = sample_band_negatives(sim, band, self.cfg.num_negatives)
            logs.update(band_hi=torch.tensor(band[1]), band_no_candidate=empty.float().mean())
        else:
            desc, radius = patch_descriptors(xyz, normals, anchors, patches)
            sim = self_similarity(desc)
            band = band_at(float(self.progress), tuple(self.cfg.band_start), tuple(self.cfg.band_end))
            pos_idx, neg = sample_pairs(sim, anchor_xyz, radius, self.cfg.num_negatives, band, self.cfg.negatives)
        if self.cfg.positive == "dilated":
            z_pos_all = self._embed(feats, dilated_patches(xyz, anchors, self.cfg.patch_size))
            z_pos, negatives_from = z_pos_all, z_pos_all             # official: dilated[i] and dilated[hard]
        else:
            if self.cfg.similarity == "siamese":
                radius = (torch.gather(xyz.unsqueeze(1).expand(-1, m, -1, -1), 2,
                                       patches.unsqueeze(3).expand(-1, -1, -1, 3)) - anchor_xyz.unsqueeze(2)).norm(dim=3).max(dim=2).values
                pos_idx, _ = sample_pairs(sim, anchor_xyz, radius, 1, (0.0, 1.0), "random")
            z_pos = torch.gather(z, 1, pos_idx.unsqueeze(2).expand(-1, -1, z.shape[2]))
            negatives_from = z
        k = neg.shape[2]
        z_neg = torch.gather(negatives_from, 1, neg.reshape(b, m * k, 1).expand(-1, -1, z.shape[2])).view(b * m, k, -1)
        loss = self.loss_fn(z.reshape(b * m, -1), z_pos.reshape(b * m, -1), z_neg)
        with torch.no_grad():
            logs["sim_neg"] = torch.gather(sim, 2, neg).mean()
        return {"loss": loss, "band_lo": torch.tensor(band[0]), **logs}

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        self.progress.fill_((step + 1) / max(self.cfg.train.max_steps, 1))

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}


class InstanceContrastTask(TrainTask):
    """Ablation: cross-cloud instance discrimination on global features of two augmented views."""

    def __init__(self, cfg: PointsConfig) -> None:
        super().__init__()
        self.encoder = PointEncoder(cfg.encoder)
        self.head = ProjectionHead(self.encoder.global_dim, cfg.proj_dim)
        self.loss_fn = build_contrastive_loss(cfg.temperature)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = batch["x"].shape[0]
        _, glob = self.encoder(torch.cat([batch["x"], batch["x2"]]))
        z = self.head(glob)
        loss = 0.5 * (self.loss_fn(z[:n], z[n:]) + self.loss_fn(z[n:], z[:n]))
        return {"loss": loss}

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}


class SegmentationTask(TrainTask):
    """Per-point cross entropy of the segmenter (logits of other categories' parts are -inf)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = build_segmentation_loss()

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats, glob = self.net.encode(batch["x"])
        logits = self.net.decode(feats, batch["category"])
        seg_loss = self.loss_fn(logits, batch["parts"])
        out = {"seg_loss": seg_loss.detach()}
        loss = seg_loss
        cat_logits = self.net.classify(glob)
        if cat_logits is not None:  # category head for infer: cross entropy on the shape's category
            cat_loss = nn.functional.cross_entropy(cat_logits, batch["category"])
            loss = loss + cat_loss
            out["cat_loss"] = cat_loss.detach()
        with torch.no_grad():
            out["point_acc"] = (logits.argmax(1) == batch["parts"]).float().mean()
        out["loss"] = loss
        return out

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.net.state_dict().items()}


# ---- entry point ---------------------------------------------------------------------------------

def check_config(cfg: PointsConfig) -> None:
    if cfg.mode not in ("siamese", "pretrain", "finetune"):
        raise UsageError(f"mode must be siamese, pretrain or finetune, got {cfg.mode!r}")
    if cfg.similarity not in ("siamese", "descriptor"):
        raise UsageError(f"similarity must be siamese or descriptor, got {cfg.similarity!r}")
    if cfg.head not in ("mlp", "reference"):
        raise UsageError(f"head must be mlp or reference, got {cfg.head!r}")
    if cfg.positive not in ("dilated", "self_similar"):
        raise UsageError(f"positive must be dilated or self_similar, got {cfg.positive!r}")
    if cfg.mode == "pretrain" and cfg.contrast == "self" and cfg.similarity == "siamese" and not cfg.siamese_weights:
        raise UsageError("similarity=siamese needs siamese_weights=<siamese.safetensors> (train it first with "
                         "mode=siamese), or use similarity=descriptor")
    if cfg.contrast not in ("self", "instance"):
        raise UsageError(f"contrast must be self or instance, got {cfg.contrast!r}")
    if cfg.negatives not in ("hard", "random"):
        raise UsageError(f"negatives must be hard or random, got {cfg.negatives!r}")
    if cfg.points < 8 or cfg.encoder.k < 1 or cfg.encoder.k > cfg.points:
        raise UsageError(f"need points >= 8 and 1 <= encoder.k <= points (got points={cfg.points}, k={cfg.encoder.k})")
    for name in ("band_start", "band_end"):
        lo_hi = getattr(cfg, name)
        if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1] <= 1:
            raise UsageError(f"{name} must be [lo, hi] with 0 <= lo <= hi <= 1, got {lo_hi}")
    if not 0.0 < cfg.label_fraction <= 1.0:
        raise UsageError(f"label_fraction must be in (0, 1], got {cfg.label_fraction}")


def weights_name(cfg: PointsConfig) -> str:
    return {"siamese": "siamese.safetensors", "pretrain": "encoder.safetensors"}.get(cfg.mode, "segmenter.safetensors")


def train(cfg: PointsConfig, shapes: list[Shape] | None = None, guard: OutputGuard | None = None) -> dict:
    """Run pretraining or fine-tuning; writes ``out_dir/{encoder,segmenter}.safetensors`` (with metadata)."""
    check_config(cfg)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    if shapes is None:
        shapes = read_shapenetpart(cfg.data, "train")
    torch.manual_seed(cfg.train.seed)  # model initialisation depends only on the seed
    extra: dict = {}
    if cfg.mode == "siamese":
        task: TrainTask = SiameseTask(cfg)
        dataset = ShapeSet(shapes, cfg.points, train=True)
    elif cfg.mode == "pretrain":
        task: TrainTask = SelfContrastTask(cfg) if cfg.contrast == "self" else InstanceContrastTask(cfg)
        dataset = ShapeSet(shapes, cfg.points, train=True, two_views=cfg.contrast == "instance")
        extra = {"contrast": cfg.contrast, "negatives": cfg.negatives, "similarity": cfg.similarity,
                 "positive": cfg.positive}
    else:
        subset = select_fraction(shapes, cfg.label_fraction, cfg.label_seed)
        net = build_segmenter(cfg.encoder, cfg.head)
        if cfg.init and cfg.head != "mlp":
            raise UsageError("init= loads our DGCNN encoder; head=reference has its own encoder (train it without init)")
        if cfg.init:
            encoder, _, meta = load_model(cfg.init, want="encoder")
            if encoder.cfg != cfg.encoder:  # type: ignore[union-attr]
                raise CvsuiteError(f"{cfg.init}: encoder {encoder.cfg} differs from the config's {cfg.encoder}")  # type: ignore[union-attr]
            net.encoder.load_state_dict(encoder.state_dict())
        task = SegmentationTask(net)
        # few labels: repeat the labelled shapes so one batch fits (each repeat gets its own augmentation)
        repeats = -(-cfg.train.batch_size // len(subset))
        dataset = ShapeSet(subset * repeats, cfg.points, train=True)
        extra = {"categories": sorted({s.category for s in subset}), "labelled_shapes": len(subset), "head": cfg.head}
    if len(dataset) < 2 or (cfg.mode != "finetune" and len(dataset) < cfg.train.batch_size):
        raise CvsuiteError(f"{cfg.data}: {len(dataset)} training shape(s); need at least 2 and one batch "
                           f"(train.batch_size={cfg.train.batch_size})")
    summary = Trainer(cfg.train, task, dataset, full_config=cfg, guard=guard).fit()
    out = Path(cfg.train.out_dir) / weights_name(cfg)
    if cfg.mode == "siamese":
        from shared.weights import save_safetensors

        save_safetensors(task.net.state_dict(), out,  # type: ignore[union-attr]
                         metadata={"format": "cvsuite-points", "kind": "siamese", "k": json.dumps(cfg.encoder.k)})
    else:
        module = task.encoder if cfg.mode == "pretrain" else task.net  # type: ignore[union-attr]
        # the training cloud size: infer feeds the network clouds of this size unless --points says otherwise
        save_model(module, out, "encoder" if cfg.mode == "pretrain" else "segmenter", cfg.encoder,
                   {**extra, "points": cfg.points})
    summary.update(weights_file=str(out), shapes=len(dataset), **{k: v for k, v in extra.items() if k != "categories"})
    return summary
