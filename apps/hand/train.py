"""MoCo v2 pretraining on HanCo with configurable positive pairs, and few-label keypoint fine-tuning.

Positive pairs (``positives``, letters joined by ``+``):

* ``a`` two augmentations of one image (MoCo v2: resized crop, colour jitter, grey, blur; no flip -
  it would turn a right hand into a left one);
* ``b`` the same frame over another background: the green-screen image's hand pixels
  (``mask_hand``) composited over random real-photo crops, independently for both views;
* ``c`` the same frame from a neighbouring camera (the 3 cameras whose centres are closest in angle);
* ``d`` the same camera one frame earlier or later.

The partner image is drawn per sample: ``same`` (a) / ``view`` (c) / ``time`` (d) with the weights
``pair_weights`` (``positives`` sets them), and with ``b`` both views get a random background;
augmentation (a) is always applied to both views.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shared.config import bounded
from shared.engine import TrainConfig, Trainer, TrainTask
from shared.errors import CvsuiteError, UsageError
from shared.guard import OutputGuard
from shared.losses import MoCoQueue, make_momentum_copy, momentum_update

from .data import HanCo, reference_scale
from .losses import keypoint_loss, mano_fit_loss, mano_joint_loss, moco_loss, symmetric_moco
from .model import KeypointNet, MoCoNet, normalise
from .synth import PHOTOS, background_crop

PARTNERS = ("same", "view", "time")


def parse_positives(spec: str) -> tuple[dict[str, float], float]:
    """``"a+b+c"`` -> ({same: 0.25, view: 0.75, time: 0}, bg_swap=1.0). ``a`` is implied (augmentation).

    As contra-hand mixes pairs: with another view (c) and/or frame (d) in play, 25 % of the pairs are
    two augmentations of the same image and 75 % use the other view / frame (split evenly between c
    and d); without them every pair is ``same``."""
    letters = [p.strip().lower() for p in spec.split("+") if p.strip()]
    bad = [p for p in letters if p not in ("a", "b", "c", "d")]
    if bad or not letters:
        raise UsageError(f"positives must be letters a, b, c, d joined by '+', got {spec!r}")
    others = [k for k, letter in (("view", "c"), ("time", "d")) if letter in letters]
    weights = {"same": 0.0, "view": 0.0, "time": 0.0}
    if others:
        for k in others:
            weights[k] = 0.75 / len(others)
        weights["same"] = 0.25 if ("a" in letters or "b" in letters) else 0.0
    else:
        weights["same"] = 1.0
    return weights, 1.0 if "b" in letters else 0.0


def select_sequences(available: list[str], spec: str) -> list[str]:
    """``""`` = all; ``"0000,0003"`` = those names; ``"0-99"`` = positions 0..99 of the sorted list
    (HanCo holds ~1500 sequences: everything is held in memory at the training size, so choose)."""
    spec = spec.strip()
    if not spec:
        return list(available)
    chosen: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if "-" in part:
            try:
                a, b = (int(x) for x in part.split("-", 1))
            except ValueError:
                raise UsageError(f"sequences: bad range {part!r} (use e.g. 0-99)") from None
            chosen += available[a:b + 1]
        elif part in available:
            chosen.append(part)
        else:
            raise UsageError(f"sequences: no sequence {part!r} (have {available[0]}..{available[-1]})")
    if not chosen:
        raise UsageError(f"sequences={spec!r} selects nothing")
    return list(dict.fromkeys(chosen))


def neighbour_cameras(M: np.ndarray, k: int = 3) -> dict[int, list[int]]:
    """For each camera, the ``k`` cameras whose centres (-R^T t) are closest in angle."""
    centres = np.stack([-m[:3, :3].T @ m[:3, 3] for m in M])
    dirs = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    cos = dirs @ dirs.T
    np.fill_diagonal(cos, -np.inf)
    return {c: [int(j) for j in np.argsort(-cos[c])[:min(k, len(M) - 1)]] for c in range(len(M))}


def resize_u8(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if img.shape[0] == size and img.shape[1] == size:
        return img
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def soft_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A hand mask eroded by one pixel and smoothed at its own resolution, then resized: float (size, size).
    Erosion drops the green-screen fringe JPEG leaves at the edge before the hand is composited. It is
    applied only to masks of >= 128 px: at 64 px a finger is 2-3 px wide and a 3x3 erosion deletes it
    (the composited hand then had no fingers while its labels still did)."""
    import cv2

    m = mask.astype(np.float32)
    if min(mask.shape[:2]) >= 128:
        m = cv2.GaussianBlur(cv2.erode(m, np.ones((3, 3), np.uint8)), (3, 3), 0.8)
    else:
        m = cv2.GaussianBlur(m, (3, 3), 0.5)
    return cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)


class HanCoImages:
    """All images of some HanCo sequences in memory at ``size`` px (uint8), with masks and green-screen
    foregrounds when ``with_foreground`` (for the sequences that have ``mask_hand/``; ``has_fg`` says
    which); index = position in ``samples``. ``labelled`` / ``split``: see :meth:`HanCo.samples`."""

    def __init__(self, ds: HanCo, sequences: list[str], size: int, variant: str = "rgb_merged",
                 with_foreground: bool = False, labelled: bool = False, split: str = "all") -> None:
        self.ds, self.size = ds, size
        self.variant = variant if variant in ds.variants else ds.variants[0]
        self.samples = ds.samples(sequences, labelled=labelled, split=split) if isinstance(ds, HanCo) else ds.samples(sequences)
        if not self.samples:
            what = "labelled frames (has_fit and is_valid in meta.json)" if labelled else "images"
            raise CvsuiteError(f"{ds.root}: no {what} in sequences {sequences[0]}..{sequences[-1]} (split {split})")
        self.index = {s: i for i, s in enumerate(self.samples)}
        self.images = np.stack([resize_u8(ds.read_image(*s, self.variant), size) for s in self.samples])
        self.foreground = self.masks = self.alpha = None
        self.has_fg = np.zeros(len(self.samples), bool)
        if with_foreground:
            self.has_fg = np.array([isinstance(ds, HanCo) and ds.has_mask(s[0]) for s in self.samples])
            if not self.has_fg.any():
                raise CvsuiteError(f"{ds.root}: background swap (b) needs rgb/ and mask_hand/ (no sequence has them)")
            self.foreground = self.images.copy()
            self.alpha = np.zeros(self.images.shape[:3], np.float32)
            for i in np.nonzero(self.has_fg)[0]:
                self.foreground[i] = resize_u8(ds.read_image(*self.samples[i], "rgb"), size)
                self.alpha[i] = soft_mask(ds.read_mask(*self.samples[i]), size)
            self.masks = self.alpha > 0.5
        self.neighbours = ({seq: neighbour_cameras(ds.calib(seq, ds.frames[seq][0]).M) for seq in sequences}
                           if isinstance(ds, HanCo) else {})


class FreiHANDSource:
    """A FreiHAND split seen through the HanCo interface the fine-tuning code uses (sample = ``(i,)``)."""

    def __init__(self, root: str | Path, split: str = "training") -> None:
        from .data import FreiHAND

        self.fh = FreiHAND(root, split)
        self.root, self.variants = Path(root), ["rgb"]
        n = len(self.fh)
        images = self.fh.image_paths()
        if not images:
            raise CvsuiteError(f"{self.root / split / 'rgb'}: no images")
        self.sequences = ["freihand"]
        self.count = min(len(images), 4 * n)

    def samples(self, sequences: list[str] | None = None) -> list[tuple[int]]:
        return [(i,) for i in range(self.count)]

    def read_image(self, index: int, variant: str = "rgb") -> np.ndarray:
        from shared.data.images import read_image

        return np.round(read_image(self.fh.image_path(index)).rgb * 255).astype(np.uint8)

    def camera_view(self, index: int) -> dict[str, np.ndarray]:
        return self.fh.view(index)


def open_labelled(root: str | Path, size: int, sequences: str = "", with_foreground: bool = False,
                  split: str = "train") -> "HanCoImages":
    """HanCo root (``sequences`` as in :func:`select_sequences`; only frames with a valid fit, of
    ``split`` by meta.json's ``is_train``), or a FreiHAND root (``training_xyz.json`` present: its
    training split). ``with_foreground``: also the green-screen hands and masks of the sequences that
    have ``rgb/`` and ``mask_hand/`` (for re-compositing)."""
    root = Path(root)
    if (root / "training_xyz.json").is_file():
        source = FreiHANDSource(root, "training")
        return HanCoImages(source, source.sequences, size)  # type: ignore[arg-type]
    ds = HanCo(root)
    chosen = select_sequences(ds.sequences, sequences)
    fg = with_foreground and any(ds.has_mask(s) for s in chosen)
    return HanCoImages(ds, chosen, size, with_foreground=fg, labelled=True, split=split)


class PairSampler:
    """Chooses the partner of an image for a positive pair and composes backgrounds (seeded by the caller)."""

    def __init__(self, images: HanCoImages, pair_weights: dict[str, float], bg_swap: float,
                 backgrounds: np.ndarray | None = None) -> None:
        w = np.array([max(float(pair_weights.get(k, 0.0)), 0.0) for k in PARTNERS])
        if w.sum() <= 0:
            raise UsageError("pair_weights: at least one of same/view/time must be > 0")
        self.images, self.p = images, w / w.sum()
        self.bg_swap = float(bg_swap)
        if self.bg_swap > 0 and images.foreground is None:
            raise UsageError("bg_swap > 0 needs images loaded with their foregrounds and masks")
        self.backgrounds = backgrounds

    def partner(self, index: int, rng: np.random.Generator) -> tuple[int, str]:
        """Index of the positive partner of image ``index`` and the kind of pair actually used."""
        seq, cam, frame = self.images.samples[index]
        kind = PARTNERS[int(rng.choice(3, p=self.p))]
        if kind == "view":
            cams = [c for c in self.images.neighbours[seq][cam] if (seq, c, frame) in self.images.index]
            if cams:
                return self.images.index[(seq, int(rng.choice(cams)), frame)], kind
        elif kind == "time":
            frames = [f for f in (frame - 1, frame + 1) if (seq, cam, f) in self.images.index]
            if frames:
                return self.images.index[(seq, cam, int(rng.choice(frames)))], kind
        return index, "same"

    def image(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """The image (uint8 HWC); with probability ``bg_swap`` its hand over a random real background."""
        if self.bg_swap > 0 and rng.random() < self.bg_swap and self.images.has_fg[index]:
            bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            a = self.images.alpha[index][..., None]  # eroded + smoothed mask: no green fringe
            return np.round(self.images.foreground[index] * a + bg * (1 - a)).astype(np.uint8)
        return self.images.images[index]


def read_background_folder(folder: str | Path) -> list[np.ndarray]:
    """Every image of a user's background folder (e.g. HanCo's ``HanCo_rnd_backgrounds``) as uint8 RGB;
    one error line when the folder is missing or holds no image (unreadable files are errors too)."""
    from shared.data.images import list_images

    from .infer import read_rgb_u8

    folder = Path(folder)
    if not folder.is_dir():
        raise CvsuiteError(f"{folder}: background folder not found")
    paths = list_images(folder, recursive=True)
    if not paths:
        raise CvsuiteError(f"{folder}: no images in this background folder")
    return [read_rgb_u8(p) for p in paths]


def background_pool(size: int, count: int, seed: int, folder: str | Path | None = None) -> np.ndarray:
    """``count`` random square crops (uint8, ``size`` px) of the photos in ``folder``, or by default of the
    real photos bundled with scikit-image / matplotlib."""
    rng = np.random.default_rng(seed)
    photos = read_background_folder(folder) if folder else None
    return np.stack([np.round(background_crop(rng, size, PHOTOS, photos) * 255).astype(np.uint8) for _ in range(count)])


def augment(img: np.ndarray, strength: float = 1.0) -> torch.Tensor:
    """The paper's pretraining augmentation of a uint8 HWC image -> float CHW in [0, 1] (global RNGs,
    seeded per sample): random resized crop (area 20-100 %, aspect 3/4-4/3), rotation (+-10 degrees),
    horizontal flip (p 0.5), colour jitter (p 0.8: brightness, contrast, saturation 0.4, hue 0.1),
    grey (p 0.2), Gaussian blur (p 0.5). ``strength`` < 1 narrows crop area, jitter and blur."""
    import cv2

    size = img.shape[0]
    scale = np.random.uniform(1 - 0.8 * strength, 1.0)
    ratio = np.exp(np.random.uniform(np.log(3 / 4), np.log(4 / 3)))
    h = int(round(min(size, size * np.sqrt(scale / ratio))))
    w = int(round(min(size, size * np.sqrt(scale * ratio))))
    y0, x0 = np.random.randint(0, size - h + 1), np.random.randint(0, size - w + 1)
    x = cv2.resize(np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w]), (size, size), interpolation=cv2.INTER_LINEAR)
    angle = np.random.uniform(-10, 10)
    rot = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0)
    x = cv2.warpAffine(x, rot, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if np.random.rand() < 0.5:
        x = x[:, ::-1]
    x = np.ascontiguousarray(x).astype(np.float32) / 255.0
    if np.random.rand() < 0.8:
        b, c, s = 1 + strength * 0.4 * np.random.uniform(-1, 1, 3)
        x = np.clip(x * b, 0, 1)
        mean = x.mean()
        x = np.clip((x - mean) * c + mean, 0, 1)
        grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = np.clip((x - grey[..., None]) * s + grey[..., None], 0, 1)
        hsv = cv2.cvtColor(np.ascontiguousarray(x, np.float32), cv2.COLOR_RGB2HSV)  # float: hue in degrees
        hsv[..., 0] = (hsv[..., 0] + 360 * strength * 0.1 * np.random.uniform(-1, 1)) % 360
        x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if np.random.rand() < 0.2:
        x = np.repeat((x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, axis=2)
    if np.random.rand() < 0.5 * strength:
        x = cv2.GaussianBlur(x, (3, 3), np.random.uniform(0.1, 1.0))
    return torch.from_numpy(np.ascontiguousarray(np.clip(x, 0, 1).transpose(2, 0, 1), dtype=np.float32))


class PretrainPairs(torch.utils.data.Dataset):
    """Two views of a positive pair per item (see module docstring)."""

    def __init__(self, sampler: PairSampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler.images.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(np.random.randint(2**31))
        j, _ = self.sampler.partner(i, rng)
        return {"view1": augment(self.sampler.image(i, rng)), "view2": augment(self.sampler.image(j, rng))}


@dataclass
class PretrainConfig:
    """``cvsuite hand pretrain`` settings."""

    data: str = "data/hand_synth/pretrain"
    sequences: str = ""             # "" = all; "0000,0007" or "0-99" (positions) to hold fewer in memory
    positives: str = "a+b+c"        # letters a (augment), b (background swap), c (neighbour camera), d (+-1 frame)
    pair_weights: dict = field(default_factory=dict)  # optional override of {same, view, time}
    bg_swap: float = bounded(-1.0, ge=-1.0, le=1.0)           # optional override of the background-swap probability (-1: from positives)
    image_size: int = bounded(64, ge=16, le=1024)
    backbone: str = "resnet10_small"
    width: int = bounded(16, ge=1, le=1024)
    proj_dim: int = bounded(128, ge=1, le=4096)
    queue_size: int = bounded(65536, ge=1, le=1_000_000)   # MoCo's K (the paper's setting); CPU recipes use 4096
    momentum: float = bounded(0.999, ge=0.0, le=1.0)       # MoCo's m (the paper's setting); CPU recipes use 0.99
    temperature: float = bounded(0.2, gt=0.0, le=100.0)
    bn_groups: int = bounded(4, ge=1, le=1024)             # shuffle-BN: batch-norm groups (MoCo: one per GPU), keys shuffled across them
    backgrounds: int = bounded(96, ge=0, le=100_000)           # pool of real-photo crops for the background swap
    backgrounds_dir: str = ""       # folder of background photos (HanCo_rnd_backgrounds); "" = bundled photos
    num_threads: int = bounded(0, ge=0, le=1024)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/hand_pretrain", max_steps=300, batch_size=64, lr=2e-3, weight_decay=1e-4,
        warmup_steps=20, log_every=25, ckpt_every=100, tensorboard=False))


def grouped_forward(net: torch.nn.Module, x: torch.Tensor, groups: int,
                    perm: torch.Tensor | None = None) -> torch.Tensor:
    """``net`` over ``x`` in ``groups`` separate chunks (batch-norm statistics per chunk, as on separate
    GPUs); with ``perm`` the samples are shuffled across the chunks first and the outputs put back in the
    original order - MoCo's shuffle-BN on one device."""
    if perm is not None:
        x = x[perm]
    groups = max(1, min(groups, len(x) // 2))  # batch norm needs >= 2 samples per chunk
    out = torch.cat([net(chunk) for chunk in x.chunk(groups)])
    if perm is not None:
        out = out[torch.argsort(perm)]
    return out


class MoCoTask(TrainTask):
    """MoCo: query encoder + projector, momentum key copy, shared key queue (both views' keys enqueued),
    symmetrised InfoNCE, shuffle-BN (query and key batch norm over different sample groups)."""

    def __init__(self, cfg: PretrainConfig) -> None:
        super().__init__()
        self.net = MoCoNet(cfg.backbone, cfg.width, cfg.proj_dim)
        self.key_net = make_momentum_copy(self.net)
        self.queue = MoCoQueue(cfg.proj_dim, cfg.queue_size)
        self.loss_fn = moco_loss(cfg.temperature)
        self.momentum = cfg.momentum
        self.bn_groups = cfg.bn_groups
        self._keys: torch.Tensor | None = None

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.net.parameters())}]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = normalise(torch.cat([batch["view1"], batch["view2"]]))
        q = grouped_forward(self.net, x, self.bn_groups)
        with torch.no_grad():
            k = grouped_forward(self.key_net, x, self.bn_groups, torch.randperm(len(x)))
        q0, q1 = q.chunk(2)
        k0, k1 = k.chunk(2)
        loss = symmetric_moco(self.loss_fn, (q0, q1), (k0, k1), self.queue.negatives())
        self._keys = torch.cat([k0, k1]).detach()
        with torch.no_grad():
            pos = (F.normalize(q0, dim=1) * F.normalize(k1, dim=1)).sum(1).mean()
        return {"loss": loss, "pos_cos": pos}

    def on_step_end(self, step: int, outputs: dict[str, torch.Tensor]) -> None:
        momentum_update(self.key_net, self.net, self.momentum)
        if self._keys is not None:
            self.queue.enqueue(self._keys)
            self._keys = None

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}


def build_pair_sampler(cfg: PretrainConfig, ds: HanCo | None = None) -> PairSampler:
    ds = ds or HanCo(cfg.data)
    weights, bg = parse_positives(cfg.positives)
    if cfg.pair_weights:
        unknown = set(cfg.pair_weights) - set(PARTNERS)
        if unknown:
            raise UsageError(f"pair_weights: unknown keys {sorted(unknown)}; use same, view, time")
        weights = {k: float(cfg.pair_weights.get(k, 0.0)) for k in PARTNERS}
    if cfg.bg_swap >= 0:
        bg = cfg.bg_swap
    images = HanCoImages(ds, select_sequences(ds.sequences, cfg.sequences), cfg.image_size, with_foreground=bg > 0)
    pool = background_pool(cfg.image_size, cfg.backgrounds, cfg.train.seed, cfg.backgrounds_dir or None) if bg > 0 else None
    return PairSampler(images, weights, bg, pool)


def pretrain(cfg: PretrainConfig, guard: OutputGuard | None = None) -> dict[str, Any]:
    """MoCo v2 pretraining through the shared engine; the encoder+projector go to model.safetensors."""
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    sampler = build_pair_sampler(cfg)
    torch.manual_seed(cfg.train.seed)
    task = MoCoTask(cfg)
    dataset = PretrainPairs(sampler)
    summary = Trainer(cfg.train, task, dataset, full_config=cfg, guard=guard).fit()
    _stamp(summary["weights"], {"kind": "moco_encoder", "backbone": cfg.backbone, "width": str(cfg.width),
                                "positives": cfg.positives, "image_size": str(cfg.image_size)})
    summary["images"] = len(dataset)
    return summary


def _stamp(path: str | Path, metadata: dict[str, str], state: dict[str, torch.Tensor] | None = None) -> None:
    """Rewrite a safetensors file with extra metadata (arch and recipe travel with the weights); ``state``
    replaces the file's tensors when given (a model changed after the trainer wrote it)."""
    from shared.weights import load_state_dict, save_safetensors

    save_safetensors(load_state_dict(path) if state is None else state, path, metadata={"format": "cvsuite", **metadata})


# ---- fine-tuning ------------------------------------------------------------------------------------

def whole_photo_views(size: int, folder: str | Path | None = None) -> np.ndarray:
    """Every background photo (bundled, or ``folder``'s) as ``hand infer`` sees a whole image without
    ``--box``: the longer side scaled to ``size``, the rest padded grey (uint8 (N, size, size, 3)).
    Hand-free negatives of this kind teach the presence score that a whole photo is not a hand."""
    from shared.data.images import bundled_photo

    from .infer import crop_square

    photos = read_background_folder(folder) if folder else [bundled_photo(name) for name in PHOTOS]
    return np.stack([crop_square(photo, None, size)[0] for photo in photos])


def left_flags(images: HanCoImages) -> np.ndarray:
    """Per held image: is it a left hand (:meth:`HanCo.is_left`; FreiHAND holds right hands only)."""
    ds = images.ds
    if not isinstance(ds, HanCo):
        return np.zeros(len(images.samples), bool)
    side = {(s, f): ds.is_left(s, f) for s, _, f in images.samples}
    return np.array([side[(s, f)] for s, _, f in images.samples])


class LabelledHands(torch.utils.data.Dataset):
    """Labelled images: uv (crop units), root-relative 3-D (ref-bone units), ``has_hand``; repeated to
    ``min_length``. With ``augment`` each item is a fresh :func:`apps.hand.augment.augment_sample`
    (re-framed, mirrored, new background when masks exist, occluded, blurred, JPEG) and a fraction
    ``negative_rate`` of items are hand-free background crops (``has_hand = 0``). With ``with_fits`` (a MANO
    head is trained) items of frames with a MANO fit also carry its targets (:meth:`_read_fits`)."""

    def __init__(self, images: HanCoImages, indices: np.ndarray, augment: bool = True,
                 min_length: int = 0, backgrounds: np.ndarray | None = None, negative_rate: float = 0.1,
                 right_hands: bool = False, with_fits: bool = True) -> None:
        self.images, self.indices, self.augment = images, np.asarray(indices), augment
        self.right_hands = right_hands
        self.left = left_flags(images)
        ds = images.ds
        self.uv = np.zeros((len(images.samples), 21, 2), np.float32)
        self.xyz = np.zeros((len(images.samples), 21, 3), np.float32)
        self.scale = np.zeros(len(images.samples), np.float32)
        self.xyz_cam = np.zeros((len(images.samples), 21, 3), np.float32)
        self.K = np.zeros((len(images.samples), 3, 3), np.float32)
        side = ds.read_image(*images.samples[int(self.indices[0])], images.variant).shape[1]
        for i in self.indices:
            view = ds.camera_view(*images.samples[i])
            s = reference_scale(view["xyz_cam"])
            # crop units of the stored (resized) image, pixel centres at integers: (uv + .5) * size / side - .5
            self.uv[i] = ((view["uv"] + 0.5) * images.size / side - 0.5) / images.size
            self.xyz[i] = (view["xyz_cam"] - view["xyz_cam"][0]) / s
            self.scale[i], self.xyz_cam[i], self.K[i] = s, view["xyz_cam"], view["K"]
        self.side = side
        self._read_fits(with_fits)
        self.length = max(len(self.indices), min_length)
        self.backgrounds = backgrounds if backgrounds is not None else background_pool(images.size, 64, 0)
        self.negative_rate = negative_rate if augment else 0.0
        self.whole_photos = whole_photo_views(images.size) if self.negative_rate > 0 else None
        from .augment import AUGMENT_PARTS

        self.augment_parts = AUGMENT_PARTS  # components of the augmentation applied (ablations switch some off)

    def __len__(self) -> int:
        return self.length

    def _read_fits(self, wanted: bool = True) -> None:
        """MANO fits of the held frames (HanCo ``shape/``, world frame, moved into each image's camera; or
        FreiHAND's ``training_mano.json``, already in the camera frame):
        global rotation (3x3), articulation (45), shape (10) and the camera target (u, v of the middle MCP
        in crop units, crop fraction spanned by 10 cm at its depth). ``has_fit`` marks the images that have
        one; frames without a fit (or a left hand, which a right-hand MANO cannot express) have none."""
        n = len(self.images.samples)
        self.has_fit = np.zeros(n, bool)
        self.fit_rot = np.tile(np.eye(3, dtype=np.float32), (n, 1, 1))
        self.fit_pose = np.zeros((n, 45), np.float32)
        self.fit_shape = np.zeros((n, 10), np.float32)
        self.fit_size = np.zeros(n, np.float32)
        self.any_fit = False
        if not wanted:  # only a MANO head uses them (``with_fits``): no shape/ file is read otherwise
            return
        ds = self.images.ds
        from .mano import fit_in_camera

        if isinstance(ds, FreiHANDSource):  # training_mano.json: camera-frame fits (FreiHAND's utils/model.py)
            if not ds.fh.has("mano"):
                return
            mano = ds.fh.mano()
            for i in self.indices:
                theta = mano[ds.fh.annotation_index(self.images.samples[i][0])]
                fit = {"poses": theta[:48], "shapes": theta[48:58], "global_t": np.zeros(3)}
                self._set_fit(int(i), fit_in_camera(fit, np.eye(4)))
            self.any_fit = bool(self.has_fit.any())
            return
        if not isinstance(ds, HanCo):
            return
        fits: dict[tuple[str, int], Any] = {}
        for i in self.indices:
            seq, cam, frame = self.images.samples[i]
            if (seq, frame) not in fits:
                fits[(seq, frame)] = ds.mano_fit(seq, frame)
            fit = fits[(seq, frame)]
            if fit is None or self.left[i]:
                continue
            self._set_fit(int(i), fit_in_camera(fit, ds.calib(seq, frame).M[cam]))
        self.any_fit = bool(self.has_fit.any())

    def _set_fit(self, i: int, moved: dict[str, np.ndarray]) -> None:
        self.has_fit[i] = True
        self.fit_rot[i], self.fit_pose[i], self.fit_shape[i] = moved["rot"], moved["hand_pose"], moved["shape"]
        f = 0.5 * (self.K[i][0, 0] + self.K[i][1, 1])
        self.fit_size[i] = f * 0.1 / max(float(self.xyz_cam[i][9, 2]), 1e-6) / self.side

    def _fit_item(self, idx: int, uv: np.ndarray, has_hand: float, info: dict) -> dict[str, torch.Tensor]:
        """The MANO targets of one item after augmentation (rotation and zoom follow the framing; a mirrored
        crop, a hand-free crop or a frame without a fit gets ``has_fit = 0``)."""
        linear, zoom = info.get("linear", np.eye(3)), info.get("scale", 1.0)
        ok = bool(self.has_fit[idx]) and has_hand > 0 and np.linalg.det(linear) > 0
        rot = linear @ self.fit_rot[idx] if ok else np.eye(3)
        cam = np.array([uv[9, 0], uv[9, 1], self.fit_size[idx] * zoom]) if ok else np.zeros(3)
        return {"has_fit": torch.tensor(float(ok)), "fit_rot": torch.from_numpy(np.asarray(rot, np.float32)),
                "fit_pose": torch.from_numpy(self.fit_pose[idx]), "fit_shape": torch.from_numpy(self.fit_shape[idx]),
                "fit_cam": torch.from_numpy(cam.astype(np.float32))}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from .augment import appearance, augment_sample, mirror_sample

        idx = int(self.indices[i % len(self.indices)])
        img, uv, xyz, has_hand = self.images.images[idx], self.uv[idx], self.xyz[idx], 1.0
        fg = self.images.foreground[idx] if self.images.has_fg[idx] else None
        mask = self.images.alpha[idx] if self.images.has_fg[idx] else None
        if self.right_hands and self.left[idx]:  # a left hand is shown to a right-hand estimator mirrored
            img, uv, xyz = mirror_sample(img, uv, xyz)
            fg = None if fg is None else np.ascontiguousarray(fg[:, ::-1])
            mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
        info: dict[str, Any] = {}
        if self.augment:
            rng = np.random.default_rng(np.random.randint(2**31))
            bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            patch = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
            if rng.random() < self.negative_rate:  # a hand-free crop: part of a photo, or a whole photo padded
                if self.whole_photos is not None and rng.random() < 0.4:
                    bg = self.whole_photos[int(rng.integers(len(self.whole_photos)))]
                    bg = bg[:, ::-1] if rng.random() < 0.5 else bg
                img, has_hand = appearance(bg, rng.uniform(0, img.shape[0], (21, 2)), rng, patch, self.augment_parts), 0.0
            else:
                img, uv, xyz = augment_sample(img, uv, xyz, rng, bg, patch, fg, mask,
                                              mirror=0.0 if self.right_hands else 0.5, info=info, parts=self.augment_parts)
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
        item = {"image": x, "uv": torch.from_numpy(np.asarray(uv, np.float32)),
                "xyz": torch.from_numpy(np.asarray(xyz, np.float32)), "has_hand": torch.tensor(has_hand)}
        if self.any_fit:
            item.update(self._fit_item(idx, np.asarray(uv), has_hand, info))
        return item


@dataclass
class FinetuneConfig:
    """``cvsuite hand train`` settings (keypoint regressor)."""

    data: str = "data/hand_synth/finetune"  # HanCo root, or FreiHAND root (its training split)
    sequences: str = ""             # HanCo only: "" = all; "0000,0007" or "0-99"
    init: str = "random"            # random | a pretrained encoder (`hand pretrain`) | a `hand train` result (continue it)
    label_fraction: float = bounded(1.0, gt=0.0, le=1.0)     # fraction of labelled images used
    label_seed: int = bounded(0, ge=0)
    image_size: int = bounded(64, ge=16, le=1024)
    backbone: str = "resnet10_small"
    width: int = bounded(16, ge=1, le=1024)
    hidden: int = bounded(256, ge=1, le=16384)
    head: str = "heatmap"           # heatmap (soft-argmax + location maps) | pooled (global pool + MLP) | spatial
    heatmap_stride: int = bounded(4, ge=2, le=4)   # heatmap head: maps at stride 4 (16 x 16 for 64 px) or 2 (32 x 32, skip from the stride-2 features)
    hands: str = "right"            # right: left hands are mirrored to right ones (FreiHAND's convention; infer --left) | both
    lifter: bool = True             # heatmap head: 3-D from the predicted 2-D through the kinematic-prior lifter
    lifter_steps: int = bounded(3000, ge=0, le=1_000_000)   # lifter pretraining on sampled hands (no images)
    lifter_weight: float = bounded(1.0, ge=0.0, le=1.0)      # 3-D = w * lifter + (1 - w) * location maps (chosen on validation)
    lifter_refit_steps: int = bounded(0, ge=0, le=1_000_000)  # after training: refit the lifter on the estimator's own 2-D on its training images (0 = off)
    lifter_refit_prior: float = bounded(0.5, ge=0.0, le=1.0)  # fraction of every refit batch drawn from the kinematic prior (sampled hands)
    lifter_refit_pa: float = bounded(0.0, ge=0.0, le=100.0)   # weight of the Procrustes-aligned error (the metric) in the refit loss
    augment: bool = True            # re-framing, mirroring, new backgrounds, occluders, blur, JPEG (apps/hand/augment.py)
    negative_rate: float = bounded(0.2, ge=0.0, lt=1.0)   # fraction of hand-free crops (photo parts, whole photos padded): the presence score
    backgrounds_dir: str = ""       # folder of background photos for re-compositing; "" = bundled photos
    w2d: float = bounded(1.0, ge=0.0, le=1000.0)
    w3d: float = bounded(1.0, ge=0.0, le=1000.0)
    wbone: float = bounded(0.0, ge=0.0, le=1000.0)   # heatmap head: weight of the training-only limb-map loss (20 bone maps; 0 = off)
    mano: str = ""                  # MANO_RIGHT.pkl: add a MANO head (pose/shape -> 778 vertices)
    wmano: float = bounded(1.0, ge=0.0, le=1000.0)              # weight of the MANO head's loss (fits, else joints)
    num_threads: int = bounded(0, ge=0, le=1024)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        out_dir="runs/hand_keypoints", max_steps=400, batch_size=32, lr=1e-3, weight_decay=1e-4,
        warmup_steps=20, log_every=50, ckpt_every=200, tensorboard=False))


class KeypointTask(TrainTask):
    """The keypoint objective around a :class:`KeypointNet`. With ``wbone`` > 0 (heatmap head) the task owns a
    training-only limb-map head: a 1x1 convolution from the decoder's features to one map per bone (20),
    trained with :class:`shared.losses.LimbHeatmapCE` so the shared decoder must tell the fingers apart along
    their whole length. It is not part of ``net``: the exported weights and inference are unchanged. Its
    initial weights come from ``bone_seed`` in a forked RNG, so adding it leaves every other random draw of
    the run as it was."""

    def __init__(self, net: KeypointNet, w2d: float, w3d: float, lifter_lr: float | None = None,
                 wbone: float = 0.0, bone_seed: int = 0) -> None:
        super().__init__()
        self.net, self.w2d, self.w3d = net, w2d, w3d
        self.wmano = 1.0
        self.lifter_lr = lifter_lr
        self.wbone = float(wbone)
        self.bone_head: torch.nn.Module | None = None
        if self.wbone > 0:
            if net.head_kind != "heatmap":
                raise UsageError(f"wbone > 0 needs head=heatmap (limb maps on the decoder), got head={net.head_kind}")
            from .data import BONES

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(bone_seed)
                self.bone_head = torch.nn.Conv2d(net.head.mid, len(BONES), 1)

    def param_groups(self) -> list[dict[str, Any]] | None:
        """A lifter pretrained on the kinematic prior is fine-tuned gently (``lifter_lr``): a few labelled
        poses must not overwrite what millions of sampled hands taught it."""
        if self.net.lifter is None or self.lifter_lr is None:
            return None
        lifter = {id(p) for p in self.net.lifter.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in lifter]
        return [{"params": rest}, {"params": list(self.net.lifter.parameters()), "lr": self.lifter_lr}]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.net(normalise(batch["image"]))
        if self.bone_head is not None:
            pred["bone_logits"] = self.bone_head(pred["features"])
        out = keypoint_loss(pred, batch["uv"], batch["xyz"], self.w2d, self.w3d, batch.get("has_hand"), wbone=self.wbone,
                            heat_sigma=4.0 / getattr(self.net.head, "stride", 4))  # Gaussian targets of 4 px at any stride
        if "joints" in pred:  # the MANO head: HanCo's MANO fits where a frame has one, else the keypoints
            has_hand = batch.get("has_hand", torch.ones(len(batch["uv"])))
            has_fit = batch.get("has_fit", torch.zeros_like(has_hand))
            out["loss_mano"] = mano_joint_loss(pred["joints"], batch["xyz"], has_hand * (1 - has_fit))
            if "has_fit" in batch:
                out.update(mano_fit_loss(pred, batch, self.net.mano_head.mano))
                out["loss_mano"] = out["loss_mano"] + out["loss_mano_fit"]
            out["loss"] = out["loss"] + self.wmano * out["loss_mano"]
        return out

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        return self.net.export_state_dict()


@torch.no_grad()
def own_prediction_pairs(net: KeypointNet, dataset: "LabelledHands", batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's 2-D keypoints (crop units) on its own labelled training images, clean (no augmentation;
    left hands mirrored for a right-hand estimator, as in training), with their true root-relative 3-D
    (reference-bone units): the pairs :func:`apps.hand.lifting.refit_lifter` learns the estimator's 2-D errors
    from. The estimator does not overfit its training images (README, second diagnosis), so these errors are
    like those on new images."""
    from .augment import mirror_sample
    from .infer import predict

    uvs, rels = [], []
    for start in range(0, len(dataset.indices), batch):
        imgs, rel = [], []
        for idx in dataset.indices[start:start + batch]:
            img, uv, xyz = dataset.images.images[idx], dataset.uv[idx], dataset.xyz[idx]
            if dataset.right_hands and dataset.left[idx]:
                img, uv, xyz = mirror_sample(img, uv, xyz)
            imgs.append(img)
            rel.append(xyz)
        uvs.append(predict(net, np.stack(imgs), batch=batch)[0])
        rels.append(np.stack(rel))
    return np.concatenate(uvs).astype(np.float32), np.concatenate(rels).astype(np.float32)


def labelled_subset(n: int, fraction: float, seed: int, minimum: int = 4) -> np.ndarray:
    if not 0 < fraction <= 1:
        raise UsageError(f"label_fraction must be in (0, 1], got {fraction}")
    k = min(n, max(minimum, int(round(fraction * n))))
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def is_regressor_file(path: str | Path) -> bool:
    """Whether ``path`` holds a whole keypoint regressor (``head.*``: a ``hand train`` result), not an encoder."""
    from shared.weights import load_state_dict

    return any(k.startswith("head.") for k in load_state_dict(path))


def load_regressor_weights(net: KeypointNet, path: str | Path) -> int:
    """Continue from a ``hand train`` result: every tensor of ``path`` (encoder, head, lifter; a MANO head
    only when both have one) goes into ``net``, which must have the same architecture (except that a stride-4
    result may continue with ``heatmap_stride: 2``: the stride-2 step keeps its identity init)."""
    from shared.weights import load_into, load_state_dict

    state = load_state_dict(path)
    own = net.state_dict()
    if getattr(net.head, "up2", None) is not None:  # a stride-4 result continued at stride 2: the new step starts as its own init
        state = {**{k: v for k, v in own.items() if k.startswith("head.up2.")}, **state}
    if net.mano_head is not None:  # the MANO arrays are never saved; a MANO head trained before is reused
        state = {**{k: v for k, v in own.items() if k.startswith("mano_head.")}, **state}
    else:
        state = {k: v for k, v in state.items() if not k.startswith("mano_head.")}
    load_into(net, state, path)
    return len(state)


def load_pretrained_encoder(net: KeypointNet, path: str | Path) -> int:
    """Copy ``encoder.*`` tensors of a pretraining run into ``net``; returns how many were loaded."""
    from shared.weights import load_into, load_state_dict

    state = load_state_dict(path)
    enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc:
        raise CvsuiteError(f"{path}: no encoder.* tensors (not a `cvsuite hand pretrain` result)")
    load_into(net.encoder, enc, path)
    return len(enc)


def finetune(cfg: FinetuneConfig, images: HanCoImages | None = None,
             guard: OutputGuard | None = None) -> dict[str, Any]:
    """Train the keypoint regressor on a fraction of the labelled images of ``cfg.data``."""
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    mano_model = None
    if cfg.mano:
        from .mano import load_mano

        mano_model = load_mano(cfg.mano)  # a bad MANO file fails before any data is read
    if images is None:
        images = open_labelled(cfg.data, cfg.image_size, cfg.sequences, with_foreground=cfg.augment)
    idx = labelled_subset(len(images.samples), cfg.label_fraction, cfg.label_seed)
    if cfg.hands not in ("right", "both"):
        raise UsageError(f"hands must be right or both, got {cfg.hands!r}")
    dataset = LabelledHands(images, idx, cfg.augment, min_length=cfg.train.batch_size * 8,
                            backgrounds=background_pool(cfg.image_size, 96, cfg.label_seed, cfg.backgrounds_dir or None),
                            negative_rate=cfg.negative_rate, right_hands=cfg.hands == "right", with_fits=bool(cfg.mano))
    torch.manual_seed(cfg.train.seed)
    lifter = cfg.lifter and cfg.head == "heatmap"
    if cfg.heatmap_stride not in (2, 4):
        raise UsageError(f"heatmap_stride must be 2 or 4, got {cfg.heatmap_stride}")
    net = KeypointNet(cfg.backbone, cfg.width, cfg.hidden, mano_model, cfg.head, lifter, cfg.hands, cfg.lifter_weight,
                      cfg.heatmap_stride)
    whole = cfg.init not in ("", "random") and is_regressor_file(cfg.init)  # continue a `hand train` result
    if lifter and cfg.lifter_steps > 0 and not whole:
        from .lifting import train_lifter

        net.lifter.load_state_dict(train_lifter(cfg.lifter_steps, seed=cfg.train.seed,
                                                left=0.0 if cfg.hands == "right" else 0.5).state_dict())
    if whole:
        load_regressor_weights(net, cfg.init)
    elif cfg.init not in ("", "random"):
        load_pretrained_encoder(net, cfg.init)
    task = KeypointTask(net, cfg.w2d, cfg.w3d, 0.1 * cfg.train.lr if lifter and cfg.lifter_steps > 0 else None,
                        wbone=cfg.wbone, bone_seed=cfg.train.seed)
    task.wmano = cfg.wmano
    summary = Trainer(cfg.train, task, dataset, full_config=cfg, guard=guard).fit()
    extra, state = {}, None
    if lifter and cfg.lifter_refit_steps > 0:  # the lifter learns the 2-D errors the trained estimator really makes
        from .lifting import refit_lifter

        net.eval()
        uv, rel = own_prediction_pairs(net, dataset)
        net.lifter = refit_lifter(net.lifter, uv, rel, steps=cfg.lifter_refit_steps, prior_fraction=cfg.lifter_refit_prior,
                                  pa_weight=cfg.lifter_refit_pa, seed=cfg.train.seed,
                                  left=0.0 if cfg.hands == "right" else 0.5)
        state = net.export_state_dict()
        extra = {"lifter_refit": f"{cfg.lifter_refit_steps} steps on {len(uv)} own predictions, prior "
                                 f"{cfg.lifter_refit_prior:g}, pa {cfg.lifter_refit_pa:g}"}
        summary["lifter_refit_pairs"] = int(len(uv))
    _stamp(summary["weights"], {"kind": "hand_keypoints", **net.arch, "image_size": str(cfg.image_size),
                                "init": str(cfg.init), "label_fraction": str(cfg.label_fraction), **extra}, state)
    summary["labelled_images"] = int(len(idx))
    return summary
