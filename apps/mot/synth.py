"""Seeded generator of MOTChallenge-layout sequences for training and benchmarking the tracker.

Textured pedestrian-like objects (head, patterned shirt, trousers) walk over real photos from
scikit-image. Appearances are drawn from a small colour palette and a few patterns, so objects are
distinct but confusable (two people can share a shirt colour and differ only in trousers or
pattern). Objects enter and leave through the image borders, cross each other (half walk left,
half right, on overlapping ground rows), occlude each other by depth (lower feet = nearer = drawn
on top), change scale with their ground row (perspective), and the camera jitters. The detector
output ``det/det.txt`` is made from the ground truth with box jitter, visibility-dependent misses
and confidences, and false positives, as a public detector would produce.

Everything is a pure function of ``(seed, index)``: the same call writes byte-identical files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from shared.data.images import bundled_photo
from shared.errors import UsageError

from .data import MOTTable, SeqInfo, write_mot_txt, write_seqinfo

PALETTE = np.array([
    [200, 40, 40], [40, 70, 190], [40, 150, 60], [225, 200, 50], [240, 240, 235],
    [35, 35, 40], [150, 80, 170], [240, 130, 40], [110, 110, 115], [30, 160, 170],
], np.float32)
SKIN = np.array([[235, 200, 170], [200, 150, 110], [140, 95, 65], [95, 65, 45]], np.float32)
PATTERNS = ("solid", "hstripes", "vstripes", "checker", "dots")
BACKGROUNDS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "brick", "grass", "gravel",
               "immunohistochemistry", "stereo_motorcycle", "hubble_deep_field", "retina")
SPRITE_H, SPRITE_W = 96, 40
_BG_CACHE: dict[str, np.ndarray] = {}


@dataclass
class SynthConfig:
    """Size and difficulty of one generated sequence."""

    width: int = 320
    height: int = 240
    length: int = 80
    frame_rate: int = 25
    objects: int = 12           # total number of objects that appear during the sequence
    fp_rate: float = 0.6        # mean false-positive detections per frame
    jitter: float = 1.5         # camera jitter std (pixels per frame, random walk)
    turn_rate: float = 0.03     # per-frame chance an object changes speed/direction
    jpeg_quality: int = 90


def _background(name: str) -> np.ndarray:
    """An RGB uint8 photo bundled with scikit-image (no download); cached, read-only."""
    if name not in _BG_CACHE:
        _BG_CACHE[name] = bundled_photo(name)
    return _BG_CACHE[name]


def _make_sprite(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One object's appearance: an RGB sprite ``(SPRITE_H, SPRITE_W, 3)`` and its alpha mask."""
    h, w = SPRITE_H, SPRITE_W
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.float32)
    shade = lambda c: np.clip(c + rng.normal(0, 12, 3), 0, 255)  # noqa: E731 - per-object tint
    shirt, second, trousers = (shade(PALETTE[i]) for i in rng.choice(len(PALETTE), 3, replace=False))
    skin = shade(SKIN[rng.integers(len(SKIN))])
    # head
    head_r = w * 0.24
    head = (xx - w / 2) ** 2 + (yy - head_r - 1) ** 2 <= head_r ** 2
    img[head] = skin
    mask[head] = 1
    # torso with a pattern
    top, mid = int(2 * head_r + 1), int(h * 0.56)
    torso = (yy >= top) & (yy < mid) & (np.abs(xx - w / 2) <= w * 0.47)
    pattern = PATTERNS[rng.integers(len(PATTERNS))]
    period = float(rng.uniform(6, 12))
    if pattern == "solid":
        alt = np.zeros_like(xx, bool)
    elif pattern == "hstripes":
        alt = (yy // (period / 2)) % 2 == 1
    elif pattern == "vstripes":
        alt = (xx // (period / 2)) % 2 == 1
    elif pattern == "checker":
        alt = ((yy // (period / 2)) + (xx // (period / 2))) % 2 == 1
    else:
        alt = ((yy % period - period / 2) ** 2 + (xx % period - period / 2) ** 2) <= (period / 4) ** 2
    img[torso] = shirt
    img[torso & alt] = second
    mask[torso] = 1
    # legs (two, with a gap)
    legs = (yy >= mid) & (np.abs(xx - w / 2) <= w * 0.42) & (np.abs(xx - w / 2) >= w * 0.06)
    img[legs] = trousers
    mask[legs] = 1
    # fine texture so crops are not flat
    img += rng.normal(0, 9, img.shape).astype(np.float32)
    img *= (0.85 + 0.3 * (1 - yy / h))[..., None]  # light from above
    return np.clip(img, 0, 255).astype(np.uint8), mask


@dataclass
class _Object:
    track_id: int
    sprite: np.ndarray
    mask: np.ndarray
    start: int
    x: float          # foot point, world coordinates
    y: float
    vx: float
    vy: float
    size: float       # height multiplier on top of perspective


def _plan_objects(rng: np.random.Generator, cfg: SynthConfig, margin: int) -> list[_Object]:
    objects = []
    for k in range(cfg.objects):
        sprite, mask = _make_sprite(rng)
        going_right = k % 2 == 0
        speed = float(rng.uniform(1.0, 3.2)) * (cfg.width / 320)
        vx = speed if going_right else -speed
        vy = float(rng.normal(0, 0.35))
        y = float(rng.uniform(0.55, 1.02) * cfg.height)
        size = float(rng.uniform(0.85, 1.15))
        if k < cfg.objects // 3:           # already in view at the first frame
            start = 0
            x = float(rng.uniform(0.1, 0.9) * cfg.width)
        else:                               # enters through a border later
            start = int(rng.integers(1, max(2, int(cfg.length * 0.75))))
            x = -20.0 if going_right else cfg.width + 20.0
        objects.append(_Object(k + 1, sprite, mask, start, x + margin, y + margin, vx, vy, size))
    return objects


def _object_height(y_img: float, cfg: SynthConfig, size: float) -> float:
    """Perspective: feet lower in the image -> nearer -> taller."""
    return size * cfg.height * (0.16 + 0.30 * np.clip(y_img / cfg.height, 0.2, 1.1))


def render_sequence(seed: int, index: int, cfg: SynthConfig | None = None):
    """Generate frames, ground truth and detections of one sequence, in memory.

    Returns ``(frames, gt, det)``: a list of RGB uint8 frames and two :class:`MOTTable`.
    """
    import cv2

    cfg = cfg or SynthConfig()
    rng = np.random.default_rng([int(seed), int(index), 20240917])
    margin = 24
    W, H = cfg.width, cfg.height
    photo = _background(BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    # crop a random region of the photo with the sequence's aspect ratio, plus a jitter margin
    ph, pw = photo.shape[:2]
    scale = float(rng.uniform(0.6, 1.0))
    ch = int(min(ph, pw * (H + 2 * margin) / (W + 2 * margin)) * scale)
    cw = int(ch * (W + 2 * margin) / (H + 2 * margin))
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    canvas = cv2.resize(photo[y0:y0 + ch, x0:x0 + cw], (W + 2 * margin, H + 2 * margin),
                        interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
    canvas = np.ascontiguousarray(canvas)
    objects = _plan_objects(rng, cfg, margin)
    cam = np.zeros(2)
    frames: list[np.ndarray] = []
    gt_rows: list[tuple] = []
    det_rows: list[tuple] = []
    for t in range(cfg.length):
        cam = np.clip(cam + rng.normal(0, cfg.jitter, 2), -margin + 2, margin - 2)
        cx, cy = int(round(cam[0])), int(round(cam[1]))
        frame = canvas[margin + cy:margin + cy + H, margin + cx:margin + cx + W].astype(np.float32)
        owner = np.zeros((H, W), np.int32)  # which object is on top at each pixel (0 = none)
        placed = []
        for obj in objects:
            if t < obj.start:
                continue
            if t > obj.start:  # walk with a little wobble
                obj.vx += float(rng.normal(0, 0.04))
                if rng.random() < cfg.turn_rate:  # sudden change of speed or direction
                    obj.vx = float(rng.uniform(0.6, 3.2) * rng.choice((-1.0, 1.0))) * (cfg.width / 320)
                obj.vy = float(np.clip(obj.vy + rng.normal(0, 0.05), -0.8, 0.8))
                obj.x += obj.vx
                obj.y += obj.vy
            fx, fy = obj.x - margin - cam[0], obj.y - margin - cam[1]
            h = _object_height(fy, cfg, obj.size)
            w = h * SPRITE_W / SPRITE_H
            left, top = int(round(fx - w / 2)), int(round(fy - h))
            bw, bh = max(int(round(w)), 2), max(int(round(h)), 4)
            if left >= W or top >= H or left + bw <= 0 or top + bh <= 0:
                continue
            placed.append((fy, obj, left, top, bw, bh))
        placed.sort(key=lambda p: p[0])  # far (small y) first, near objects drawn on top
        for _, obj, left, top, bw, bh in placed:
            sprite = cv2.resize(obj.sprite, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
            alpha = cv2.resize(obj.mask, (bw, bh), interpolation=cv2.INTER_LINEAR)
            x1, y1, x2, y2 = max(left, 0), max(top, 0), min(left + bw, W), min(top + bh, H)
            sx, sy = x1 - left, y1 - top
            a = alpha[sy:sy + y2 - y1, sx:sx + x2 - x1, None]
            region = frame[y1:y2, x1:x2]
            region[:] = a * sprite[sy:sy + y2 - y1, sx:sx + x2 - x1] + (1 - a) * region
            owner[y1:y2, x1:x2][a[..., 0] > 0.5] = obj.track_id
        for _, obj, left, top, bw, bh in placed:
            total = float((cv2.resize(obj.mask, (bw, bh), interpolation=cv2.INTER_LINEAR) > 0.5).sum())
            x1, y1, x2, y2 = max(left, 0), max(top, 0), min(left + bw, W), min(top + bh, H)
            visible = float((owner[y1:y2, x1:x2] == obj.track_id).sum())
            vis = visible / max(total, 1.0)
            if vis <= 0.0:
                continue
            gt_rows.append((t + 1, obj.track_id, left, top, bw, bh, 1, 1, round(vis, 3)))
            # detector: misses depend on visibility, boxes jitter, confidence follows visibility
            p_detect = 0.97 if vis > 0.6 else 0.15 + 1.2 * vis
            if rng.random() < p_detect:
                jx, jy = rng.normal(0, 0.04 * bw), rng.normal(0, 0.03 * bh)
                sw, sh = np.exp(rng.normal(0, 0.05, 2))
                dw, dh = bw * sw, bh * sh
                dl, dt = left + bw / 2 + jx - dw / 2, top + bh / 2 + jy - dh / 2
                conf = float(np.clip(0.35 + 0.6 * vis + rng.normal(0, 0.1), 0.05, 0.99))
                det_rows.append((t + 1, -1, dl, dt, dw, dh, conf))
        for _ in range(int(rng.poisson(cfg.fp_rate))):  # false positives
            fh = float(rng.uniform(0.15, 0.45) * H)
            fw = fh * float(rng.uniform(0.3, 0.6))
            fl, ft = float(rng.uniform(-0.1 * fw, W - 0.9 * fw)), float(rng.uniform(0, H - 0.8 * fh))
            det_rows.append((t + 1, -1, fl, ft, fw, fh, float(rng.uniform(0.1, 0.65))))
        frame += rng.normal(0, 3.0, frame.shape).astype(np.float32)  # sensor noise
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    gt_arr = np.asarray(gt_rows, np.float64).reshape(-1, 9)
    gt = MOTTable.from_rows(gt_arr[:, 0], gt_arr[:, 1], gt_arr[:, 2:6], None, gt_arr[:, 7], gt_arr[:, 8], gt_arr[:, 6])
    det_arr = np.asarray(det_rows, np.float64).reshape(-1, 7)
    det = MOTTable.from_rows(det_arr[:, 0], det_arr[:, 1], np.round(det_arr[:, 2:6], 2), np.round(det_arr[:, 6], 4))
    return frames, gt, det


def sequence_name(seed: int, index: int) -> str:
    return f"SYN{int(seed):04d}-{int(index):02d}"


def write_sequence(out_root: str | Path, seed: int, index: int, cfg: SynthConfig | None = None,
                   claim: Callable[[Path], Path] | None = None) -> Path:
    """Generate sequence ``index`` of dataset ``seed`` into ``out_root/NAME`` (MOTChallenge layout).
    ``claim`` (a guard's ``file``) checks every file before it is written."""
    claim = claim or (lambda p: p)
    import cv2

    cfg = cfg or SynthConfig()
    name = sequence_name(seed, index)
    seq_dir = Path(out_root) / name
    frames, gt, det = render_sequence(seed, index, cfg)
    img_dir = seq_dir / "img1"
    img_dir.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames, start=1):
        from shared.guard import write_atomic

        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        write_atomic(claim(img_dir / f"{t:06d}.jpg"), jpeg.tobytes())
    claim(seq_dir / "seqinfo.ini")
    write_seqinfo(seq_dir, SeqInfo(name, "img1", float(cfg.frame_rate), cfg.length, cfg.width, cfg.height, ".jpg"))
    write_mot_txt(claim(seq_dir / "gt" / "gt.txt"), gt, kind="gt")
    write_mot_txt(claim(seq_dir / "det" / "det.txt"), det, kind="det")
    return seq_dir


def generate_dataset(out_root: str | Path, seqs: int, seed: int, cfg: SynthConfig | None = None,
                     claim: Callable[[Path], Path] | None = None) -> list[Path]:
    """Write ``seqs`` sequences of dataset ``seed`` under ``out_root``; returns their directories."""
    if seqs < 1:
        raise UsageError(f"--seqs must be >= 1, got {seqs}")
    cfg = cfg or SynthConfig()
    if cfg.width < 64 or cfg.height < 64 or cfg.length < 2:
        raise UsageError("synthetic sequences need width/height >= 64 and length >= 2")
    return [write_sequence(out_root, seed, k, cfg, claim=claim) for k in range(seqs)]
