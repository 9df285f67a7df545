"""Label-preserving augmentation of labelled hand crops (domain randomisation for fine-tuning).

The synthetic hand is always rendered centred, at one scale, on a photo; real crops are not. Each
labelled sample is therefore re-framed and degraded on the fly, keypoints transformed with it:

* **framing**: random scale (hand filling 75-110 % of its rendered size), in-plane rotation
  (+-35 degrees) and off-centre shift (+-12 % of the side); the 2-D keypoints follow the affine
  map, the root-relative 3-D keypoints rotate about the camera axis by the same angle;
* **mirroring** (p 0.5; off for a right-hand estimator): image flipped left-right, ``u -> 1 - u``, ``x -> -x`` (a right hand becomes a
  correctly labelled left hand);
* **background**: with a hand mask, the warped hand goes over a random background crop; without
  one, pixels the warp leaves empty are filled from a background crop;
* **appearance**: brightness / contrast / saturation / hue shift, grey (p 0.1), an occluding
  object near a random joint (p 0.35; a photo patch or flat colour, ellipse or polygon, 15-40 % of the
  hand's RMS radius, so it hides some joints but never the whole hand),
  motion blur (p 0.25), Gaussian blur (p 0.15), sensor noise (p 0.3), JPEG re-encoding (p 0.5).

Everything draws from the ``numpy.random.Generator`` passed in (seeded by the caller). ``parts`` (a subset
of :data:`AUGMENT_PARTS`, default all) switches single components off for ablations; every component's
random numbers are drawn whether it is on or not, so switching one off leaves the others' draws unchanged.
"""
from __future__ import annotations

import numpy as np

AUGMENT_PARTS = frozenset({"framing", "background", "colour", "occluder", "blur", "noise", "jpeg"})


def random_affine(size: int, rng: np.random.Generator, scale: tuple[float, float] = (0.75, 1.1),
                  max_rot_deg: float = 35.0, max_shift: float = 0.12) -> tuple[np.ndarray, float]:
    """A 2x3 pixel map (output <- input) that scales about the centre, rotates and shifts; + the angle."""
    s = rng.uniform(*scale)
    angle = np.radians(rng.uniform(-max_rot_deg, max_rot_deg))
    c = (size - 1) / 2
    shift = rng.uniform(-max_shift, max_shift, 2) * size
    cos, sin = np.cos(angle) * s, np.sin(angle) * s
    A = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
    A[:, 2] = np.array([c, c]) + shift - A[:, :2] @ np.array([c, c])
    return A, angle


def apply_affine(A: np.ndarray, uv_px: np.ndarray) -> np.ndarray:
    return uv_px @ A[:, :2].T + A[:, 2]


def _occluder(img: np.ndarray, uv_px: np.ndarray, rng: np.random.Generator, patch: np.ndarray) -> np.ndarray:
    import cv2

    size = img.shape[0]
    # sized to the hand (RMS distance of the joints from their mean): it hides a few joints, never the
    # whole hand (occluders as large as the crop left labels on images without a visible hand)
    extent = float(np.sqrt(((uv_px - uv_px.mean(0)) ** 2).sum(1).mean()))
    centre = uv_px[int(rng.integers(len(uv_px)))] + rng.normal(0, 0.2 * extent, 2)
    radius = rng.uniform(0.15, 0.4) * extent
    shape = np.zeros((size, size), np.uint8)
    if rng.random() < 0.5:
        axes = (int(radius), int(radius * rng.uniform(0.3, 1.0)))
        cv2.ellipse(shape, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        n = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        pts = centre + radius * rng.uniform(0.5, 1.0, (n, 1)) * np.stack([np.cos(angles), np.sin(angles)], 1)
        cv2.fillPoly(shape, [np.round(pts).astype(np.int32)], 1)
    fill = patch if rng.random() < 0.6 else np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), img.shape)
    return np.where(shape[..., None] > 0, fill, img)


def _motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    length = int(rng.integers(3, 8))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(img, -1, kernel / max(kernel.sum(), 1e-6))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else img


def appearance(img: np.ndarray, uv_px: np.ndarray, rng: np.random.Generator, patch: np.ndarray,
               parts: frozenset[str] = AUGMENT_PARTS) -> np.ndarray:
    """Colour, occlusion, blur, noise and JPEG on a uint8 HWC image (keypoints only place occluders);
    ``parts`` chooses which of ``colour occluder blur noise jpeg`` are applied."""
    import cv2

    x = img.astype(np.float32)
    gain, offset, contrast = rng.uniform(0.6, 1.4), rng.uniform(-25, 25), rng.uniform(0.6, 1.4)
    sat = 0.0 if rng.random() < 0.1 else rng.uniform(0.5, 1.5)
    balance = rng.normal(1.0, 0.06, 3).astype(np.float32)  # white balance / hue shift
    if "colour" in parts:
        x = x * gain + offset
        mean = x.mean()
        x = (x - mean) * contrast + mean
        grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = (x - grey[..., None]) * sat + grey[..., None]
        x = x * balance
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.35:
        occluded = _occluder(out, uv_px, rng, patch)
        out = occluded if "occluder" in parts else out
    if rng.random() < 0.25:
        blurred = _motion_blur(out, rng)
    elif rng.random() < 0.15:
        blurred = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.2)))
    else:
        blurred = out
    out = blurred if "blur" in parts else out
    if rng.random() < 0.3:
        noisy = np.clip(out + rng.normal(0, rng.uniform(2, 10), out.shape), 0, 255).astype(np.uint8)
        out = noisy if "noise" in parts else out
    if rng.random() < 0.5:
        quality = int(rng.integers(25, 91))
        out = _jpeg(out, quality) if "jpeg" in parts else out
    return np.ascontiguousarray(out)


def mirror_sample(img: np.ndarray, uv: np.ndarray, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-right mirror image of a labelled crop (a left hand becomes a right one): ``u -> (S-1)/S - u``
    in crop units (pixel centres at integers), ``x -> -x``."""
    size = img.shape[1]
    return (np.ascontiguousarray(img[:, ::-1]), np.stack([(size - 1) / size - uv[:, 0], uv[:, 1]], 1),
            xyz * np.array([-1.0, 1.0, 1.0]))


def augment_sample(img: np.ndarray, uv: np.ndarray, xyz: np.ndarray, rng: np.random.Generator,
                   background: np.ndarray, patch: np.ndarray, foreground: np.ndarray | None = None,
                   mask: np.ndarray | None = None, mirror: float = 0.5,
                   info: dict | None = None, parts: frozenset[str] = AUGMENT_PARTS
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented copy of a labelled crop: uint8 image, ``uv`` (21, 2) crop units, root-relative ``xyz``.

    ``background``/``patch``: uint8 crops of the same size (new background, occluder texture);
    ``foreground``/``mask``: the hand on its own and its mask (then the hand is composited anew);
    ``mirror``: probability of a left-right flip (0 for a right-hand estimator: a flip makes a left hand);
    ``info``: when given, receives ``linear`` (the 3x3 map applied to the 3-D keypoints: roll, and the
    mirror when flipped) and ``scale`` (the framing's zoom), so other 3-D labels (a MANO fit) can follow;
    ``parts``: the components applied (:data:`AUGMENT_PARTS`; without ``framing`` the crop is not moved,
    without ``background`` the stored image is warped instead of the hand being composited anew).
    """
    import cv2

    size = img.shape[0]
    uv_px = uv * size
    for _ in range(6):  # a framing that keeps every joint inside the crop
        A, angle = random_affine(size, rng)
        moved = apply_affine(A, uv_px)
        if (moved > 0.02 * size).all() and (moved < 0.98 * size).all():
            break
    else:
        A, angle, moved = np.array([[1.0, 0, 0], [0, 1.0, 0]]), 0.0, uv_px
    if "framing" not in parts:
        A, angle, moved = np.array([[1.0, 0, 0], [0, 1.0, 0]]), 0.0, uv_px
    if "background" not in parts:
        foreground = mask = None
    flags = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if foreground is not None and mask is not None:
        hand = cv2.warpAffine(foreground, A, (size, size), **flags)
        keep = cv2.warpAffine(mask.astype(np.float32), A, (size, size), **flags)[..., None]
    else:
        hand = cv2.warpAffine(img, A, (size, size), **flags)
        keep = cv2.warpAffine(np.ones((size, size), np.float32), A, (size, size), **flags)[..., None]
    out = (hand * keep + background * (1 - keep)).astype(np.uint8)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    new_xyz = xyz @ rot.T
    new_uv = moved / size
    linear = rot
    if rng.random() < mirror:
        out, new_uv, new_xyz = mirror_sample(out, new_uv, new_xyz)
        linear = np.diag([-1.0, 1.0, 1.0]) @ rot
    if info is not None:
        info.update(linear=linear, scale=float(np.sqrt(abs(np.linalg.det(A[:, :2])))))
    out = appearance(np.ascontiguousarray(out), new_uv * size, rng, patch, parts)
    return out, new_uv.astype(np.float32), new_xyz.astype(np.float32)
