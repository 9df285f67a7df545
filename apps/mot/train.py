"""Training of the appearance embedding: instance-to-track (Semi-TCL) or instance-to-instance.

Samples are public detections (``det/det.txt``) cropped from the frames. Their track labels come
from the ground truth (``labels=full``; detection matched to a gt box at IoU >= 0.5), from the
ground truth on a random fraction of frames plus the motion-only tracker's confident associations
elsewhere (``labels=partial:F``; a pseudo track takes the gt id that its labelled detections
vote for), or from the tracker alone (``labels=none``).

``objective=i2t``: every detection embedding is scored against all track prototypes in a bank
(a buffer, so it is checkpointed and resumed); its own track is the positive
(:class:`shared.losses.InstanceToTrackLoss`). After each optimizer step the prototypes of the
tracks in the batch move towards the batch's embeddings by EMA. ``objective=i2i``: each item is two
detections of the same track from different frames; every detection of the batch with the same
track label is a positive, the others negatives (multi-positive :class:`shared.losses.SupConLoss`),
so the baseline uses the labels exactly as i2t does - same network, labels, steps and batch size;
only "instance vs instance" replaces "instance vs track prototype".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.engine.distributed import gather_no_grad
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard

from .data import MOTSequence, box_iou, list_sequences
from .losses import build_loss
from .model import CROP_H, CROP_W, EmbeddingNet, crop_boxes, normalise_crops
from .tracker import Tracker, TrackerConfig

CONTEXT = 0.08  # extra margin kept around training crops for random-crop augmentation
PAD_H, PAD_W = CROP_H + 8, CROP_W + 4


def _default_train() -> TrainConfig:
    return TrainConfig(out_dir="runs/mot_embed", max_steps=300, batch_size=128, lr=3e-3, weight_decay=1e-4,
                       warmup_steps=20, log_every=20, ckpt_every=200)


@dataclass
class MOTTrainConfig:
    """``cvsuite mot train`` settings."""

    data: str = "data/mot_synth/train"
    labels: str = "full"            # full | partial:FRACTION (of frames) | partial-ids:FRACTION | none
    objective: str = "i2t"          # i2t (instance-to-track) | i2i (instance-to-instance)
    backbone: str = "small_cnn"
    width: int = bounded(16, ge=1, le=1024)
    dim: int = bounded(64, ge=1, le=4096)
    temperature: float = bounded(0.1, gt=0.0, le=100.0)
    bank_momentum: float = bounded(0.9, ge=0.0, le=1.0)
    pair_window: int = bounded(30, ge=1, le=100_000)           # i2i: max frame gap between the two detections of a pair
    label_seed: int = bounded(0, ge=0)             # which frames are labelled in partial mode
    min_score: float = bounded(0.3, ge=0.0, le=1.0)          # detections below this confidence are not used
    num_threads: int = bounded(0, ge=0, le=1024)            # torch CPU threads (0 = torch's default)
    train: TrainConfig = field(default_factory=_default_train)


def parse_labels(spec: str) -> tuple[str, float]:
    """``full`` -> (full, 1); ``partial:0.1`` -> (partial, 0.1) (10% of frames labelled);
    ``partial-ids:0.1`` -> (partial-ids, 0.1) (10% of the ids labelled); ``none`` -> (none, 0)."""
    spec = spec.strip().lower()
    if spec == "full":
        return "full", 1.0
    if spec in ("none", "unlabelled", "unlabeled"):
        return "none", 0.0
    for mode in ("partial", "partial-ids"):
        if spec.startswith(mode + ":"):
            try:
                frac = float(spec.split(":", 1)[1])
            except ValueError:
                frac = -1.0
            if not 0.0 < frac <= 1.0:
                raise UsageError(f"--labels {spec!r}: the fraction after '{mode}:' must be in (0, 1]")
            return mode, frac
    raise UsageError(f"--labels must be full, partial:FRACTION, partial-ids:FRACTION or none, got {spec!r}")


def match_to_gt(seq: MOTSequence) -> np.ndarray:
    """Ground-truth id of every detection (Hungarian on IoU >= 0.5 per frame), -1 when unmatched."""
    det, gt = seq.det(), seq.gt()
    labels = np.full(len(det), -1, np.int64)
    gt_rows = gt.frame_rows()
    for frame, rows in det.frame_rows().items():
        g = gt_rows.get(frame)
        if g is None:
            continue
        iou = box_iou(det.boxes[rows], gt.boxes[g])
        r, c = linear_sum_assignment(-iou)
        ok = iou[r, c] >= 0.5
        labels[rows[r[ok]]] = gt.ids[g[c[ok]]]
    return labels


def pseudo_labels(seq: MOTSequence, cfg: TrackerConfig | None = None) -> np.ndarray:
    """Track id of every detection from the motion-only tracker's confident associations, else -1."""
    cfg = cfg or TrackerConfig(appearance=False)
    det = seq.det()
    out = np.full(len(det), -1, np.int64)
    rows = det.frame_rows()
    tracker = Tracker(cfg)
    empty = np.zeros(0, np.int64)
    for frame in range(1, len(seq) + 1):
        r = rows.get(frame, empty)
        res = tracker.update(det.boxes[r], det.conf[r])
        sel = res.confident
        out[r[res.det_index[sel]]] = res.ids[sel]
    return out


def _combine_partial(gt_ids: np.ndarray, frames: np.ndarray, pseudo: np.ndarray, frac: float,
                     rng: np.random.Generator, by_ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Partial labels: gt on a fraction of frames (or of ids, ``by_ids``); pseudo tracks take the gt
    id their labelled dets vote for.

    Returns (labels, pseudo) in the sequence's id spaces; pseudo ids that got a gt id are renamed to
    it (so they share that track's bank slot), the others are offset to stay distinct from gt ids.
    """
    units = np.unique(gt_ids[gt_ids >= 0]) if by_ids else np.unique(frames)
    n_lab = min(len(units), max(1, int(round(frac * len(units)))))
    chosen = rng.choice(units, size=n_lab, replace=False) if len(units) else units
    labelled = np.isin(gt_ids if by_ids else frames, chosen)
    labels = np.where(labelled, gt_ids, -1)
    new_pseudo = np.full_like(pseudo, -1)
    offset = int(max(gt_ids.max(initial=0), 0)) + 1
    for p in np.unique(pseudo[pseudo >= 0]):
        members = pseudo == p
        votes = labels[members & (labels >= 0)]
        new_pseudo[members] = np.bincount(votes).argmax() if len(votes) else offset + p
    return labels, new_pseudo


@dataclass
class CropSet:
    """Training detections of all sequences: padded uint8 crops and their (global) track labels."""

    crops: torch.Tensor          # (N, 3, PAD_H, PAD_W) uint8
    labels: torch.Tensor         # (N,) ground-truth track index, -1 = unlabelled
    pseudo: torch.Tensor         # (N,) pseudo track index, -1 = none
    seq: np.ndarray
    frame: np.ndarray
    num_tracks: int


def build_cropset(data_root: str | Path, labels_spec: str, label_seed: int = 0, min_score: float = 0.3) -> CropSet:
    """Crop every usable detection of every sequence under ``data_root`` and label it per ``labels_spec``."""
    mode, frac = parse_labels(labels_spec)
    rng = np.random.default_rng(label_seed)
    crops, labels, pseudos, seqs, frames = [], [], [], [], []
    track_index: dict[tuple[int, str, int], int] = {}

    def index_of(seq_i: int, kind: str, track: int) -> int:
        return track_index.setdefault((seq_i, kind, int(track)), len(track_index))

    for seq_i, seq_dir in enumerate(list_sequences(data_root)):
        seq = MOTSequence.open(seq_dir)
        det = seq.det()
        if mode != "none" and not seq.gt_path.is_file():
            raise CvsuiteError(f"{seq.gt_path}: labels={labels_spec} needs ground truth (or use --labels none)")
        gt_ids = match_to_gt(seq) if mode != "none" else np.full(len(det), -1, np.int64)
        if mode == "full":
            lab, pse = gt_ids, np.full(len(det), -1, np.int64)
        else:
            pse = pseudo_labels(seq)
            if mode in ("partial", "partial-ids"):
                lab, pse = _combine_partial(gt_ids, det.frame, pse, frac, rng, by_ids=mode == "partial-ids")
            else:
                lab = np.full(len(det), -1, np.int64)
        use = (det.conf >= min_score) & ((lab >= 0) | (pse >= 0))
        # gt ids and pseudo ids share one index space per sequence when partial mode renamed them
        kind_p = "gt" if mode.startswith("partial") else "pseudo"
        lab_g = np.array([index_of(seq_i, "gt", t) if t >= 0 else -1 for t in lab], np.int64)
        pse_g = np.array([index_of(seq_i, kind_p, t) if t >= 0 else -1 for t in pse], np.int64)
        rows_by_frame = det.frame_rows()
        for frame, rows in rows_by_frame.items():
            rows = rows[use[rows]]
            if not len(rows):
                continue
            image = seq.read_frame(frame)
            crops.append(crop_boxes(image, det.boxes[rows], (PAD_H, PAD_W), CONTEXT))
            labels.append(lab_g[rows])
            pseudos.append(pse_g[rows])
            seqs.append(np.full(len(rows), seq_i))
            frames.append(np.full(len(rows), frame))
    if not crops:
        raise CvsuiteError(f"{data_root}: no usable labelled or pseudo-labelled detections to train on")
    return CropSet(torch.cat(crops), torch.from_numpy(np.concatenate(labels)),
                   torch.from_numpy(np.concatenate(pseudos)), np.concatenate(seqs), np.concatenate(frames),
                   max(len(track_index), 1))


def augment(crop: torch.Tensor) -> torch.Tensor:
    """Random crop of the padded crop, horizontal flip, brightness/contrast jitter (global RNGs)."""
    dy = int(torch.randint(0, PAD_H - CROP_H + 1, ()))
    dx = int(torch.randint(0, PAD_W - CROP_W + 1, ()))
    x = normalise_crops(crop[:, dy:dy + CROP_H, dx:dx + CROP_W])
    if torch.rand(()) < 0.5:
        x = x.flip(-1)
    x = x * (1 + 0.2 * (torch.rand(()) - 0.5)) + 0.3 * (torch.rand(()) - 0.5)
    return x


class DetectionDataset(torch.utils.data.Dataset):
    """One detection per item (i2t), or two detections of one track from different frames (i2i)."""

    def __init__(self, cropset: CropSet, objective: str, pair_window: int = 30) -> None:
        self.cs = cropset
        self.objective = objective
        target = torch.where(cropset.labels >= 0, cropset.labels, cropset.pseudo)
        self.target = target.numpy()
        self.items = np.flatnonzero(self.target >= 0)
        self.pair_window = pair_window
        by_track: dict[int, np.ndarray] = {}
        order = np.argsort(self.target, kind="stable")
        t_sorted = self.target[order]
        for t in np.unique(self.target[self.items]):
            by_track[int(t)] = order[np.searchsorted(t_sorted, t):np.searchsorted(t_sorted, t, side="right")]
        self.by_track = by_track

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        idx = int(self.items[i])
        item = {"crop": augment(self.cs.crops[idx]), "label": self.cs.labels[idx], "pseudo": self.cs.pseudo[idx]}
        if self.objective == "i2i":
            same = self.by_track[int(self.target[idx])]
            gap = np.abs(self.cs.frame[same] - self.cs.frame[idx])
            partners = same[(gap > 0) & (gap <= self.pair_window)]
            j = int(partners[np.random.randint(len(partners))]) if len(partners) else idx
            item["crop2"] = augment(self.cs.crops[j])
        return item


class InstanceToTrackTask(TrainTask):
    """Semi-TCL: detections vs a bank of track prototypes (bank in buffers, EMA-updated after each step)."""

    def __init__(self, net: EmbeddingNet, num_tracks: int, temperature: float, momentum: float) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = build_loss("i2t", temperature)
        dim = int(net.head[-1].out_features)
        gen = torch.Generator().manual_seed(1234)
        self.register_buffer("bank", F.normalize(torch.randn(num_tracks, dim, generator=gen), dim=1))
        self.register_buffer("bank_seen", torch.zeros(num_tracks, dtype=torch.bool))
        self.momentum = momentum
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.net(batch["crop"])
        loss = self.loss_fn(emb, self.bank.detach().clone(), batch["label"], batch["pseudo"])
        target = torch.where(batch["label"] >= 0, batch["label"], batch["pseudo"])
        self._pending = (F.normalize(emb.detach().float(), dim=1), target)
        usable = target >= 0
        with torch.no_grad():
            pos = (self._pending[0][usable] * self.bank[target[usable]]).sum(1).mean() if usable.any() else emb.new_zeros(())
        return {"loss": loss, "pos_cos": pos, "labelled": usable.float().mean()}

    @torch.no_grad()
    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        if self._pending is None:
            return
        z, target = (gather_no_grad(t) for t in self._pending)
        keep = target >= 0
        z, target = z[keep], target[keep]
        if not len(target):
            return
        tracks, inverse = torch.unique(target, return_inverse=True)
        sums = torch.zeros(len(tracks), z.shape[1], device=z.device).index_add_(0, inverse, z)
        means = F.normalize(sums, dim=1)
        seen = self.bank_seen[tracks]
        m = self.momentum
        blended = torch.where(seen[:, None], m * self.bank[tracks] + (1 - m) * means, means)
        self.bank[tracks] = F.normalize(blended, dim=1)
        self.bank_seen[tracks] = True
        self._pending = None

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}


class InstanceToInstanceTask(TrainTask):
    """Baseline: label-aware instance-to-instance contrast (SupCon over both detections of every item;
    same-track detections anywhere in the batch are positives, never negatives)."""

    def __init__(self, net: EmbeddingNet, temperature: float) -> None:
        super().__init__()
        self.net = net
        self.loss_fn = build_loss("i2i", temperature)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = batch["crop"].shape[0]
        z = self.net(torch.cat([batch["crop"], batch["crop2"]]))
        target = torch.where(batch["label"] >= 0, batch["label"], batch["pseudo"])
        return {"loss": self.loss_fn(torch.stack([z[:n], z[n:]], dim=1), target)}

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}


def train(cfg: MOTTrainConfig, guard: OutputGuard | None = None) -> dict:
    """Build crops and labels, then run the shared engine (its files claimed through ``guard``); returns the summary."""
    if cfg.objective not in ("i2t", "i2i"):
        raise UsageError(f"objective must be i2t or i2i, got {cfg.objective!r}")
    parse_labels(cfg.labels)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    cropset = build_cropset(cfg.data, cfg.labels, cfg.label_seed, cfg.min_score)
    dataset = DetectionDataset(cropset, cfg.objective, cfg.pair_window)
    if len(dataset) < 2:
        raise CvsuiteError(f"{cfg.data}: only {len(dataset)} usable detections; need at least 2")
    torch.manual_seed(cfg.train.seed)
    net = EmbeddingNet(cfg.backbone, cfg.width, cfg.dim)
    if cfg.objective == "i2t":
        task: TrainTask = InstanceToTrackTask(net, cropset.num_tracks, cfg.temperature, cfg.bank_momentum)
    else:
        task = InstanceToInstanceTask(net, cfg.temperature)
    summary = Trainer(cfg.train, task, dataset, full_config=cfg, guard=guard).fit()
    summary.update(detections=len(dataset), tracks=cropset.num_tracks,
                   labelled=int((cropset.labels >= 0).sum()), pseudo=int((cropset.pseudo >= 0).sum()))
    return summary
