"""2-D -> 3-D lifting with an anatomical pose prior: an MLP that maps a hand's 2-D keypoint layout to its
root-relative 3-D pose, trained on hands sampled from the kinematic model (no images, no labels).

Why: finger articulation is a 20-angle space; a few thousand rendered images cover it sparsely, but the
kinematic model (bone lengths, per-finger joint limits, both hands) can be sampled without rendering, so
the lifter sees millions of distinct poses under random orientations and perspective. The image network
only has to find the 2-D keypoints; the lifter turns them into a pose that respects bone lengths and
joint limits.

* input: the 2-D keypoints (21, 2) in crop units, centred on their mean and divided by their RMS radius
  (:func:`normalise_layout`), so crop scale and position do not matter; plus that radius and centre
  (perspective cues);
* output: root-relative 3-D in camera axes, in units of the reference bone (middle MCP->PIP), the
  estimator's convention;
* training data: :func:`sample_views`: shape and pose as :mod:`apps.hand.synth` samples them (both
  hands), uniform random 3-D orientation, the hand centre at a random depth and image position, the
  synthetic camera's perspective projection, Gaussian 2-D noise (predicted keypoints are not exact).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.engine.checkpoint import load_checkpoint, save_atomic

from .data import NUM_KP, REF_BONE

LAYOUT_DIM = NUM_KP * 2 + 3


def normalise_layout(uv: torch.Tensor) -> torch.Tensor:
    """(B, 21, 2) crop-unit keypoints -> (B, 45): centred / RMS-radius layout, then radius and centre."""
    centre = uv.mean(1, keepdim=True)
    c = uv - centre
    radius = c.pow(2).sum((1, 2), keepdim=True).div(NUM_KP).sqrt().clamp_min(1e-4)
    return torch.cat([(c / radius).flatten(1), radius.flatten(1) * 4, (centre[:, 0] - 0.5) * 4], 1)


class Lifter(nn.Module):
    """Residual MLP (Martinez et al. style, no batch norm): layout (B, 45) -> root-relative xyz (B, 21, 3).
    With ``confidence_inputs`` it also reads the estimator's per-joint heatmap confidence (B, 21): how much
    to trust each 2-D keypoint."""

    def __init__(self, width: int = 512, blocks: int = 2, confidence_inputs: bool = False) -> None:
        super().__init__()
        self.confidence_inputs = confidence_inputs
        self.inp = nn.Linear(LAYOUT_DIM + (NUM_KP if confidence_inputs else 0), width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
                                    for _ in range(blocks))
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(width, NUM_KP * 3))

    def forward(self, uv: torch.Tensor, confidence: torch.Tensor | None = None) -> torch.Tensor:
        layout = normalise_layout(uv)
        if self.confidence_inputs:
            if confidence is None:
                raise ValueError("this lifter reads per-joint confidences: pass confidence (B, 21)")
            layout = torch.cat([layout, confidence.to(layout.dtype)], 1)
        x = self.inp(layout)
        for block in self.blocks:
            x = x + block(x)
        xyz = self.out(x).view(-1, NUM_KP, 3)
        return xyz - xyz[:, :1]


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rotation matrices uniform over SO(3) (normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                     np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                     np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def sample_views(rng: np.random.Generator, n: int, focal: float = 2.8, noise: float = 0.02,
                 crop_scale: tuple[float, float] = (0.5, 1.15), left: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random hands seen by a pinhole camera: 2-D (n, 21, 2) in crop units (with Gaussian noise of
    ``noise`` x the layout's RMS radius) and root-relative 3-D (n, 21, 3) in reference-bone units.

    ``focal`` in crop sides (the synthetic renderer's 2.8); the hand's depth gives it ``crop_scale`` of its
    rendered size at the renderer's 0.55 m; its centre lands within +-15 % of the crop centre."""
    from .synth import BONE_LENGTHS, forward_kinematics, sample_key_poses

    lengths = BONE_LENGTHS * rng.normal(1.0, 0.09, (n, 1, 1)) * rng.normal(1.0, 0.06, (n, 5, 4))  # as sample_shape
    joints = forward_kinematics(lengths, sample_key_poses(rng, n))
    joints[rng.random(n) < left] *= np.array([-1.0, 1.0, 1.0])                 # left hands (a fraction ``left``)
    joints = joints - joints.mean(1, keepdims=True)
    cam = np.einsum("nij,nkj->nki", random_rotations(rng, n), joints)
    depth = 0.55 / rng.uniform(*crop_scale, n)
    centre = np.stack([rng.uniform(-0.15, 0.15, n) * depth / focal, rng.uniform(-0.15, 0.15, n) * depth / focal, depth], 1)
    cam = cam + centre[:, None]
    uv = focal * cam[..., :2] / cam[..., 2:3] + 0.5
    rms = np.sqrt(((uv - uv.mean(1, keepdims=True)) ** 2).sum((1, 2)) / NUM_KP)
    uv = uv + rng.normal(0, 1, uv.shape) * (noise * rms)[:, None, None] * rng.uniform(0, 1.5, (n, 1, 1))
    rel = cam - cam[:, :1]
    ref = np.linalg.norm(rel[:, REF_BONE[1]] - rel[:, REF_BONE[0]], axis=-1)
    return uv.astype(np.float32), (rel / ref[:, None, None]).astype(np.float32)


def train_lifter(steps: int = 3000, batch: int = 256, seed: int = 0, lr: float = 1e-3, noise: float = 0.02,
                 width: int = 512, left: float = 0.5, log=None, blocks: int = 2, checkpoint: str | Path | None = None,
                 stop_at: float | None = None, every=None) -> Lifter | None:
    """Fit a :class:`Lifter` (``width`` x ``blocks``) on freshly sampled views (L1 on root-relative 3-D); seeded,
    CPU-cheap at the defaults (the estimator's recipe).

    For long fits: ``checkpoint`` (a file) is written every 1000 steps and when ``time.monotonic()`` passes
    ``stop_at`` (then ``None`` is returned: call again with the same arguments to resume; the resumed fit is
    the uninterrupted one, tested); ``every(step, net)`` is called every 500 steps (a learning curve)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = Lifter(width, blocks)

    def batch_loss(net: Lifter) -> torch.Tensor:
        uv, rel = sample_views(rng, batch, noise=noise, left=left)
        return (net(torch.from_numpy(uv)) - torch.from_numpy(rel)).abs().mean()

    return _optimise(net, batch_loss, steps, lr, 1e-4, log, checkpoint=checkpoint, rng=rng, stop_at=stop_at,
                     every=every)


def _optimise(net: Lifter, batch_loss, steps: int, lr: float, weight_decay: float, log=None,
              checkpoint: str | Path | None = None, rng: np.random.Generator | None = None,
              stop_at: float | None = None, every=None) -> Lifter | None:
    """The lifters' training loop: ``steps`` AdamW steps on ``batch_loss(net)`` (one fresh batch per call)
    under a cosine schedule; ``log(step, loss)`` and ``every(step, net)`` every 500 steps. Returns ``net`` in
    eval mode. With ``checkpoint``, the model, optimiser, schedule and the batch sampler's ``rng`` state are
    saved every 1000 steps (and at ``stop_at``, a ``time.monotonic()`` deadline: then ``None`` is returned)
    and a run finds its own checkpoint and continues from it."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    start = 0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        state = load_checkpoint(path)
        if state["steps"] != steps:
            raise ValueError(f"{path}: a checkpoint of a {state['steps']}-step fit, not {steps}")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        if rng is not None:
            rng.bit_generator.state = json.loads(state["rng"])
        start = int(state["step"])

    def save(step: int) -> None:
        save_atomic({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                     "steps": steps, "rng": json.dumps(rng.bit_generator.state if rng is not None else None)}, path)

    net.train()
    for step in range(start, steps):
        if path is not None and stop_at is not None and time.monotonic() > stop_at:
            save(step)
            return None
        loss = batch_loss(net)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % 500 == 0:
            log(step + 1, float(loss.detach()))
        if every is not None and (step + 1) % 500 == 0:
            every(step + 1, net.eval())
            net.train()
        if path is not None and (step + 1) % 1000 == 0:
            save(step + 1)
    if path is not None:
        save(steps)
    return net.eval()


def refit_lifter(lifter: Lifter, uv: np.ndarray, rel: np.ndarray, confidence: np.ndarray | None = None,
                 steps: int = 2000, batch: int = 256, lr: float = 3e-4, prior_fraction: float = 0.5, seed: int = 0,
                 noise: float = 0.02, left: float = 0.0, weight_decay: float = 1e-4, pa_weight: float = 0.0,
                 log=None) -> Lifter:
    """A copy of ``lifter`` fine-tuned on the 2-D an estimator really produces: ``uv`` (N, 21, 2) its
    predictions (crop units) on its own training images, ``rel`` (N, 21, 3) their true root-relative 3-D in
    reference-bone units (``confidence`` (N, 21) its joint confidences, for a lifter that reads them).

    Why: a lifter trained on near-exact 2-D reads a ~10-px error as confident, wrong articulation; on the
    estimator's own errors it learns how far to trust the 2-D (where the 2-D says little, the answer tends to
    the poses the 2-D is compatible with on average). The estimator does not overfit its training images, so
    their predictions carry held-out-like errors. A fraction ``prior_fraction`` of every batch are freshly
    sampled hands (:func:`sample_views`, as :func:`train_lifter`) so the kinematic prior is not forgotten
    (needs a lifter without confidence inputs). L1 on the 3-D (+ ``pa_weight`` x the Procrustes-aligned error,
    :class:`shared.losses.ProcrustesMPJPE`: the benchmark's metric), AdamW, cosine schedule; seeded."""
    import copy

    from shared.losses import ProcrustesMPJPE

    pa_loss = ProcrustesMPJPE()

    def objective(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = (pred - target).abs().mean()
        return loss + pa_weight * pa_loss(pred, target) if pa_weight > 0 else loss

    if lifter.confidence_inputs and confidence is None:
        raise ValueError("this lifter reads per-joint confidences: pass confidence")
    if lifter.confidence_inputs and prior_fraction > 0:
        raise ValueError("sampled hands have no confidences: use prior_fraction=0 with a confidence-reading lifter")
    if len(uv) != len(rel) or (confidence is not None and len(confidence) != len(uv)):
        raise ValueError(f"uv, rel (and confidence) must pair up, got {len(uv)}, {len(rel)} rows")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = copy.deepcopy(lifter).train()
    n_prior = int(round(prior_fraction * batch))
    uv_t, rel_t = torch.as_tensor(uv, dtype=torch.float32), torch.as_tensor(rel, dtype=torch.float32)
    conf_t = None if confidence is None else torch.as_tensor(confidence, dtype=torch.float32)

    def batch_loss(net: Lifter) -> torch.Tensor:
        loss = torch.zeros(())
        if n_prior < batch:
            pick = torch.from_numpy(rng.integers(0, len(uv), batch - n_prior))
            pred = net(uv_t[pick], None if conf_t is None or not net.confidence_inputs else conf_t[pick])
            loss = objective(pred, rel_t[pick])
        if n_prior:
            s_uv, s_rel = sample_views(rng, n_prior, noise=noise, left=left)
            prior_loss = objective(net(torch.from_numpy(s_uv)), torch.from_numpy(s_rel))
            loss = (1 - prior_fraction) * loss + prior_fraction * prior_loss
        return loss

    return _optimise(net, batch_loss, steps, lr, weight_decay, log)
