"""Synthetic HanCo: an articulated 21-joint hand rendered from 8 calibrated cameras (numpy only).

* **Shape** = bone lengths (an average adult hand, scaled per subject, each bone jittered).
* **Pose** = per finger an abduction and three flexion angles inside anatomical limits; key poses
  every few frames, eased (cosine) in between, so motion is smooth; a slowly turning global
  rotation and a small drift of the hand centre.
* **Surface** = spheres swept along every bone (capsule-like fingers, a filled palm, the wrist):
  a real 3-D surface whose per-pixel depth test (z-buffer over the spheres hit by each pixel's
  ray) gives occlusion, the sphere normal gives Lambert shading.
* **Cameras** = 8 at the corners of a cube around the hand looking at its centre (neighbours share
  a cube edge), ``K`` and world->camera ``M`` written to ``calib/`` exactly as HanCo stores them.
* Images: ``rgb/`` on a green screen, ``mask_hand/``, ``rgb_merged/`` composited over real photos
  (scikit-image / matplotlib samples) and ``rgb_homo/`` over a flat colour (HanCo's folder names).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.guard import write_atomic

from .data import NUM_KP, PARENTS

# wrist->joint bone lengths (metres) per finger: thumb, index, middle, ring, pinky
BONE_LENGTHS = np.array([[0.040, 0.035, 0.030, 0.025],
                         [0.085, 0.040, 0.024, 0.020],
                         [0.082, 0.045, 0.028, 0.022],
                         [0.078, 0.041, 0.027, 0.021],
                         [0.072, 0.032, 0.020, 0.019]])
SPREAD_DEG = np.array([48.0, 12.0, 2.0, -8.0, -18.0])       # metacarpal direction in the palm plane
RADII = np.array([[0.013, 0.011, 0.0095, 0.0085, 0.0075],    # at wrist/base, joint 1..4 (tip)
                  [0.013, 0.0095, 0.0085, 0.0078, 0.0068],
                  [0.013, 0.0098, 0.0088, 0.0080, 0.0070],
                  [0.013, 0.0092, 0.0084, 0.0076, 0.0066],
                  [0.013, 0.0082, 0.0074, 0.0068, 0.0060]])
# limits (degrees) of [abduction, flexion 1, flexion 2, flexion 3] (thumb: CMC/MCP/IP): the anatomical
# range including slight hyper-extension, so poses span open hands, fists, pointing and pinching
LIMITS_LO = np.array([[-25, -20, -10, -15]] + [[-20, -25, -5, -10]] * 4, dtype=np.float64)
LIMITS_HI = np.array([[30, 60, 70, 85]] + [[20, 95, 110, 85]] * 4, dtype=np.float64)
# skin tones (RGB, linear-ish 0..1) from dark to light; a subject's tone is a random blend of two neighbours
SKIN_TONES = np.array([[0.30, 0.18, 0.12], [0.45, 0.29, 0.20], [0.62, 0.42, 0.30], [0.78, 0.57, 0.44],
                       [0.90, 0.70, 0.58], [0.97, 0.82, 0.72]])
GREEN = np.array([0.08, 0.70, 0.22])
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field", "retina",
          "immunohistochemistry", "grace_hopper", "brick", "grass", "gravel", "camera")


@dataclass
class SynthConfig:
    size: int = 128            # image side (pixels)
    frames: int = 16           # frames per sequence
    cameras: int = 8
    distance: float = 0.55     # camera distance from the hand centre (metres)
    focal: float = 2.8         # focal length in image sides
    key_every: int = 3         # frames between key poses (a new random pose every 3 frames)
    spheres_per_bone: int = 7


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def axis_angle_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) axis-angle -> (..., 3, 3)."""
    theta = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    k = rotvec / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    z = np.zeros_like(kx)
    Kx = np.stack([np.stack([z, -kz, ky], -1), np.stack([kz, z, -kx], -1), np.stack([-ky, kx, z], -1)], -2)
    t = theta[..., None]
    return np.eye(3) + np.sin(t) * Kx + (1 - np.cos(t)) * Kx @ Kx


def sample_shape(rng: np.random.Generator) -> np.ndarray:
    """Bone lengths (5, 4): a global hand size times a per-bone jitter."""
    return BONE_LENGTHS * rng.normal(1.0, 0.09) * rng.normal(1.0, 0.06, BONE_LENGTHS.shape)


def sample_key_poses(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` joint-angle sets (count, 5, 4) radians covering each finger's anatomical range.

    Per finger a curl level drives its three flexions together (how hands move: fists, hooks, points),
    with independent noise per joint; a third of the fingers get fully independent angles, so unusual
    combinations are seen too. Abduction is independent.
    """
    lo, hi = np.radians(LIMITS_LO), np.radians(LIMITS_HI)
    curl = rng.beta(0.6, 0.6, (count, 5, 1))
    flex = np.clip(curl + rng.normal(0, 0.15, (count, 5, 3)), 0, 1)
    independent = rng.random((count, 5, 1)) < 0.33
    flex = np.where(independent, rng.beta(0.8, 0.8, (count, 5, 3)), flex)
    unit = np.concatenate([rng.beta(1.2, 1.2, (count, 5, 1)), flex], axis=2)
    return lo + (hi - lo) * unit


def sample_motion(rng: np.random.Generator, frames: int, key_every: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joint angles (F, 5, 4) radians, global rotations (F, 3, 3), centre offsets (F, 3); all smooth."""
    keys = (frames - 1) // key_every + 2
    key_angles = sample_key_poses(rng, keys)
    t = np.arange(frames) / key_every
    i0 = np.floor(t).astype(int)
    w = (1 - np.cos(np.pi * (t - i0))) / 2  # cosine ease between key poses
    angles = key_angles[i0] * (1 - w)[:, None, None] + key_angles[i0 + 1] * w[:, None, None]
    base = axis_angle_matrix(rng.normal(size=3) * np.pi)
    spin = rng.normal(size=3)
    spin *= rng.uniform(0.02, 0.08) / np.linalg.norm(spin)  # radians per frame
    rotations = axis_angle_matrix(np.arange(frames)[:, None] * spin) @ base
    drift = rng.normal(0, 0.0015, (frames, 3)).cumsum(0)
    return angles, rotations, drift


def forward_kinematics(lengths: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Hand-frame joints (F, 21, 3): palm plane x-y, fingers along +y, back of the hand towards +z.
    ``lengths``: one hand's bone lengths (5, 4) or one per frame (F, 5, 4)."""
    frames = angles.shape[0]
    lengths = np.broadcast_to(lengths, (frames, 5, 4))
    joints = np.zeros((frames, NUM_KP, 3))
    y = np.array([0.0, 1.0, 0.0])
    for f in range(5):
        base = _rz(np.radians(SPREAD_DEG[f]) * np.ones(frames))
        if f == 0:  # thumb: out of the palm plane and pronated, so it flexes across the palm
            base = base @ _rx(np.full(frames, -0.45)) @ _ry(np.full(frames, -1.1))
            frame_rot = base @ _rz(angles[:, 0, 0]) @ _rx(-0.5 * angles[:, 0, 1])
        else:
            frame_rot = base
        pos = np.zeros((frames, 3))
        for j in range(4):
            if j == 1:
                frame_rot = frame_rot @ _rz(angles[:, f, 0] if f else np.zeros(frames)) @ _rx(-angles[:, f, 1])
            elif j > 1:
                frame_rot = frame_rot @ _rx(-angles[:, f, j])
            pos = pos + lengths[:, f, j, None] * (frame_rot @ y)
            joints[:, 1 + 4 * f + j] = pos
    return joints


def hand_spheres(joints: np.ndarray, per_bone: int = 5, thickness: float = 1.0,
                 forearm: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sphere centres (F, S, 3) and radii (S,) sweeping every bone, filling the palm, capping the wrist;
    radii times ``thickness``; with ``forearm`` (F, 3) elbow-side end points, a tapered forearm from
    the wrist to there (its spheres come last: :func:`forearm_sphere_count` of them)."""
    ts = np.linspace(0.0, 1.0, per_bone)
    centres, radii = [], []
    for f in range(5):
        for j in range(4):
            child = 1 + 4 * f + j
            parent = int(PARENTS[child])
            a, b = joints[:, parent], joints[:, child]
            centres.append(a[:, None] + ts[None, :, None] * (b - a)[:, None])
            radii.append(RADII[f, j] + ts * (RADII[f, j + 1] - RADII[f, j]))
    # palm: between neighbouring metacarpals (index..pinky) at several depths
    mcp = joints[:, [5, 9, 13, 17]]
    wrist = joints[:, :1]
    for t in (0.3, 0.55, 0.8):
        line = wrist + t * (mcp - wrist)
        mids = (line[:, :-1] + line[:, 1:]) / 2
        centres += [line, mids]
        radii += [np.full(4, 0.0125), np.full(3, 0.0125)]
    centres.append(wrist + 0.015 * (joints[:, 9:10] - wrist) / np.linalg.norm(joints[:, 9:10] - wrist, axis=-1, keepdims=True))
    radii.append(np.array([0.02]))
    radii = [r * thickness for r in radii]
    if forearm is not None:
        ts = np.linspace(0.0, 1.0, forearm_sphere_count())
        centres.append(wrist + ts[None, :, None] * (forearm[:, None] - wrist))
        radii.append(thickness * (0.019 + 0.012 * ts))
    return np.concatenate(centres, axis=1), np.concatenate(radii)


def forearm_sphere_count() -> int:
    return 14


def camera_rig(cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """``K`` (C, 3, 3) and world->camera ``M`` (C, 4, 4) of cameras on a cube's corners looking at the origin."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
    order = [0, 1, 3, 2, 6, 7, 5, 4]  # a ring so camera c and c+1 share a cube edge
    dirs = corners[order][: cfg.cameras] / np.sqrt(3)
    f = cfg.focal * cfg.size
    c = (cfg.size - 1) / 2
    K = np.tile(np.array([[f, 0, c], [0, f, c], [0, 0, 1.0]]), (len(dirs), 1, 1))
    M = np.tile(np.eye(4), (len(dirs), 1, 1))
    up = np.array([0.0, 0.3, 1.0])
    for i, d in enumerate(dirs):
        centre = cfg.distance * d
        z = -d
        x = np.cross(z, up)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        R = np.stack([x, y, z])
        M[i, :3, :3], M[i, :3, 3] = R, -R @ centre
    return K, M


def render(centres: np.ndarray, radii: np.ndarray, K: np.ndarray, M: np.ndarray, size: int,
           skin: np.ndarray, light: np.ndarray | None = None, ambient: float = 0.35,
           specular: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render spheres (world ``centres`` (S, 3)) from one camera: rgb (H, W, 3) float on green, mask, depth.

    Each pixel's ray is intersected with every sphere near the hand's bounding box; the nearest hit
    wins (z-buffer); shading is ``ambient`` + Lambert (+ a Blinn-Phong highlight of weight ``specular``)
    with a light from ``light`` (camera frame; default the upper left). ``skin`` is one colour (3,) or
    one per sphere (S, 3).
    """
    cam = centres @ M[:3, :3].T + M[:3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    z = np.maximum(cam[:, 2], 1e-6)
    u, v = fx * cam[:, 0] / z + cx, fy * cam[:, 1] / z + cy
    pad = 1.3 * fx * radii / z + 1
    u0, u1 = int(max(np.floor((u - pad).min()), 0)), int(min(np.ceil((u + pad).max()), size - 1))
    v0, v1 = int(max(np.floor((v - pad).min()), 0)), int(min(np.ceil((v + pad).max()), size - 1))
    rgb = np.broadcast_to(GREEN, (size, size, 3)).copy()
    mask = np.zeros((size, size), bool)
    depth = np.full((size, size), np.inf)
    if u1 < u0 or v1 < v0:
        return rgb, mask, depth
    vv, uu = np.mgrid[v0:v1 + 1, u0:u1 + 1]
    d = np.stack([(uu - cx) / fx, (vv - cy) / fy, np.ones_like(uu, dtype=np.float64)], -1).reshape(-1, 3)
    b = d @ cam.T                                            # (P, S)
    dd = (d * d).sum(1, keepdims=True)
    disc = b * b - dd * ((cam * cam).sum(1) - radii ** 2)
    s = np.where(disc > 0, (b - np.sqrt(np.maximum(disc, 0))) / dd, np.inf)
    s = np.where(s > 0, s, np.inf)
    idx = s.argmin(1)
    near = s[np.arange(len(s)), idx]
    hit = np.isfinite(near)
    point = d * np.where(hit, near, 0.0)[:, None]
    normal = (point - cam[idx]) / radii[idx, None]
    light = np.array([0.35, -0.55, -1.0]) if light is None else np.asarray(light, np.float64)
    light = light / np.linalg.norm(light)
    shade = ambient + (1 - ambient) * np.clip(normal @ light, 0, 1)
    colours = np.broadcast_to(np.asarray(skin, np.float64), (len(radii), 3))[idx]
    colour = colours * shade[:, None]
    if specular > 0:
        view = -point / np.maximum(np.linalg.norm(point, axis=1, keepdims=True), 1e-9)
        half = light + view
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        colour = colour + specular * np.clip((normal * half).sum(1), 0, 1)[:, None] ** 20
    colour = np.clip(colour, 0, 1)
    h, w = vv.shape
    region = rgb[v0:v1 + 1, u0:u1 + 1]
    region[hit.reshape(h, w)] = colour[hit]
    mask[v0:v1 + 1, u0:u1 + 1] = hit.reshape(h, w)
    depth[v0:v1 + 1, u0:u1 + 1] = np.where(hit, near, np.inf).reshape(h, w)
    return rgb, mask, depth


_PHOTO_CACHE: dict[str, np.ndarray] = {}


def background_crop(rng: np.random.Generator, size: int, photos: tuple[str, ...] = PHOTOS,
                    backgrounds: list[np.ndarray] | None = None) -> np.ndarray:
    """A random square crop (random photo, position, scale) of a bundled real photo (or of one of
    ``backgrounds``, uint8 RGB images), float (size, size, 3)."""
    import cv2

    from shared.data.images import bundled_photo

    if backgrounds:
        photo = backgrounds[int(rng.integers(len(backgrounds)))]
    else:
        name = photos[int(rng.integers(len(photos)))]
        if name not in _PHOTO_CACHE:
            _PHOTO_CACHE[name] = bundled_photo(name)
        photo = _PHOTO_CACHE[name]
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.3, 0.9) * min(h, w))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)
    return crop.astype(np.float64) / 255.0


def composite(rgb: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Hand pixels of ``rgb`` over ``background`` (mask compositing, HanCo's background swap)."""
    m = mask[..., None].astype(rgb.dtype)
    return rgb * m + background * (1 - m)


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def sample_skin(rng: np.random.Generator) -> np.ndarray:
    """A skin colour: a random blend of two neighbouring tones of :data:`SKIN_TONES` with a small tint."""
    k = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(np.floor(k))
    j = min(i + 1, len(SKIN_TONES) - 1)
    tone = SKIN_TONES[i] * (1 - (k - i)) + SKIN_TONES[j] * (k - i)
    return np.clip(tone * rng.normal(1.0, 0.05, 3), 0, 1)


def skin_texture(rng: np.random.Generator, size: int, strength: float) -> np.ndarray:
    """A smooth multiplicative texture (size, size, 1) around 1 (blotches, creases, uneven light)."""
    import cv2

    coarse = rng.normal(0, 1, (6, 6)).astype(np.float32)
    fine = rng.normal(0, 1, (size // 3 + 1, size // 3 + 1)).astype(np.float32)
    field = (cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
             + 0.5 * cv2.resize(fine, (size, size), interpolation=cv2.INTER_LINEAR))
    return (1 + strength * field / 1.5)[..., None].astype(np.float64)


def write_sequence(root: Path, seq_index: int, seed: int, cfg: SynthConfig, is_train: bool = True,
                   backgrounds: list[np.ndarray] | None = None) -> dict:
    """Render one sequence into ``root`` in the HanCo layout; return its meta entries.

    Domain randomisation per sequence: right or (mirrored) left hand, bone lengths and finger
    thickness, skin tone, a forearm that is bare or in a sleeve of random colour, light direction /
    colour / ambient / highlight; per image a smooth skin texture and sensor noise. ``rgb_merged``
    goes over random crops of ``backgrounds`` (default: the photos bundled with scikit-image/matplotlib).
    """
    from shared.data.images import write_image

    rng = np.random.default_rng([seed, seq_index])
    seq = f"{seq_index:04d}"
    lengths = sample_shape(rng)
    angles, rotations, drift = sample_motion(rng, cfg.frames, cfg.key_every)
    local = forward_kinematics(lengths, angles)
    left = bool(rng.random() < 0.5)
    if left:  # a left hand is the mirror image of a right one
        local = local * np.array([-1.0, 1.0, 1.0])
    # forearm: from the wrist away from the fingers, bent by up to ~35 degrees
    away = -local[:, 9] / np.linalg.norm(local[:, 9], axis=-1, keepdims=True)
    bend = axis_angle_matrix(rng.normal(0, 0.35, 3))
    elbow_local = np.einsum("ij,fj->fi", bend, away) * rng.uniform(0.14, 0.22)
    centre = local.mean(1, keepdims=True)
    world = np.einsum("fij,fkj->fki", rotations, local - centre) + drift[:, None]
    elbow = np.einsum("fij,fj->fi", rotations, elbow_local - centre[:, 0]) + drift
    thickness = rng.uniform(0.85, 1.2)
    centres, radii = hand_spheres(world, cfg.spheres_per_bone, thickness, elbow)
    skin = sample_skin(rng)
    colours = np.tile(skin, (len(radii), 1))
    if rng.random() < 0.6:  # a sleeve from some way up the forearm
        n_arm = forearm_sphere_count()
        start = int(rng.integers(2, n_arm))
        colours[len(radii) - n_arm + start:] = rng.uniform(0, 1, 3)
    light_dir = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), -rng.uniform(0.3, 1.5)])
    ambient, specular = rng.uniform(0.2, 0.55), rng.uniform(0.0, 0.25)
    tint = rng.normal(1.0, 0.06, 3)
    K, M = camera_rig(cfg)
    for f in range(cfg.frames):
        name = f"{f:08d}"
        for sub, obj in (("calib", {"K": K.tolist(), "M": M.tolist()}), ("xyz", world[f].tolist()),
                         ("shape", {"model": "cvsuite sphere-swept hand (not MANO)", "bone_lengths": lengths.tolist(),
                                    "angles": angles[f].tolist(), "global_rot": rotations[f].tolist(),
                                    "global_t": (drift[f] - (rotations[f] @ centre[f, 0])).tolist(),
                                    "side": "left" if left else "right", "skin": skin.tolist()})):
            path = root / sub / seq / f"{name}.json"
            write_atomic(path, json.dumps(obj))
        for c in range(len(K)):
            light = light_dir + rng.normal(0, 0.2, 3)
            rgb, mask, _ = render(centres[f], radii, K[c], M[c], cfg.size, colours, light, ambient, specular)
            texture = skin_texture(rng, cfg.size, rng.uniform(0.03, 0.12))
            rgb = np.where(mask[..., None], np.clip(rgb * texture * tint, 0, 1), rgb)
            rgb = np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1)
            flat = np.broadcast_to(rng.uniform(0, 1, 3), rgb.shape)
            for variant, img in (("rgb", rgb), ("rgb_merged", composite(rgb, mask, background_crop(rng, cfg.size, backgrounds=backgrounds))),
                                 ("rgb_homo", composite(rgb, mask, flat))):
                write_image(root / variant / seq / f"cam{c}" / f"{name}.jpg", _to_u8(img))
            write_image(root / "mask_hand" / seq / f"cam{c}" / f"{name}.jpg", mask.astype(np.uint8) * 255)
    return {"is_train": [is_train] * cfg.frames, "is_valid": [True] * cfg.frames,
            "has_fit": [True] * cfg.frames, "subject_id": seq_index}


def sequence_files(root: Path, seq_index: int, cfg: SynthConfig) -> list[Path]:
    """Every file :func:`write_sequence` writes for one sequence (for the output guard)."""
    seq = f"{seq_index:04d}"
    files = [root / sub / seq / f"{f:08d}.json" for sub in ("calib", "xyz", "shape") for f in range(cfg.frames)]
    files += [root / v / seq / f"cam{c}" / f"{f:08d}.jpg" for v in ("rgb", "rgb_merged", "rgb_homo", "mask_hand")
              for c in range(cfg.cameras) for f in range(cfg.frames)]
    return files


def generate(root: str | Path, sequences: int, seed: int, cfg: SynthConfig | None = None,
             guard=None) -> list[str]:
    """Write ``sequences`` sequences and ``meta.json`` to ``root``; return the sequence names."""
    cfg = cfg or SynthConfig()
    root = Path(root)
    if guard is not None:
        for k in range(sequences):
            for path in sequence_files(root, k, cfg):
                guard.file(path)
        guard.file(root / "meta.json")
    meta: dict[str, list] = {"is_train": [], "is_valid": [], "has_fit": [], "subject_id": []}
    for k in range(sequences):
        entry = write_sequence(root, k, seed, cfg)
        for key in meta:
            meta[key].append(entry[key])
    write_atomic(root / "meta.json", json.dumps(meta))
    return [f"{k:04d}" for k in range(sequences)]
