"""Diagnostics of the hand keypoint estimator on the validation split (never the test split).

Why did the shipped estimator not read finger articulation? Cheap, separate questions:

* ``lift``: how much 3-D articulation do the ground-truth 2-D keypoints carry? Nearest-neighbour lifting
  (2-D layout -> 3-D pose of the closest training image, layouts centred and scaled) with exact and noisy
  2-D: an upper bound for any 2-D -> 3-D lifting on this data, and how it degrades with 2-D error.
* ``fit``: train the estimator for a few hundred steps and score the *training* images (no augmentation)
  beside the validation images: PA-MPJPE, 2-D error per joint group, root-relative depth error, and the
  same with shuffled images. Options pick the variant (augmentation, loss, steps, label count).

* ``look``: the labels drawn on training crops at 4x, as stored and after one augmentation draw (a PNG to
  look at); ``labels``: the fraction of keypoints that land on the (warped) hand mask.
* ``overfit``: memorise ``--count`` crops with ONE fixed augmentation draw each (consistent labels: ~1 px).
* ``ablate``: train on fresh augmented draws with some augmentation ``--parts`` (``none``, ``all``,
  ``only:a,b``, ``-a,b``), input ``--size`` and ``--width``; 2-D error on training draws, on the clean
  training images and on the validation split.

Every result is one JSON line appended to ``--log``; runs are short (minutes on one thread).

    python -m evaluation.hand_diag lift
    python -m evaluation.hand_diag lifter --left 0 --steps 30000 --lifter-width 512 --curve --sweep 0 1 2 4 6 8 --save L.pt
    python -m evaluation.hand_diag fit --steps 400 --labels 384 --augment 0 --tag noaug
    python -m evaluation.hand_diag overfit --data runs/hand_bench/data/finetune_k1 --sequences 0-29 --hands right \
        --count 64 --steps 300 --parts all
    python -m evaluation.hand_diag ablate --data runs/hand_bench/data/finetune_k1 --sequences 0-29 --hands right \
        --labels 3840 --steps 300 --parts only:occluder
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.hand.data import HanCo  # noqa: E402
from apps.hand.evaluate import pose_scores, procrustes_mean, shuffled_scores  # noqa: E402
from apps.hand.infer import hanco_targets, right_handed_view  # noqa: E402
from apps.hand.losses import keypoint_loss  # noqa: E402
from apps.hand.model import KeypointNet, normalise  # noqa: E402
from apps.hand.train import HanCoImages, LabelledHands, background_pool, labelled_subset, open_labelled  # noqa: E402

DATA = Path("runs/hand_bench/data")
GROUPS = {"wrist": [0], "mcp": [1, 5, 9, 13, 17], "pip": [2, 6, 10, 14, 18], "dip": [3, 7, 11, 15, 19],
          "tip": [4, 8, 12, 16, 20]}


def layout(uv: np.ndarray) -> np.ndarray:
    """2-D keypoints (N, 21, 2) -> centred on their mean, divided by their RMS radius, flattened."""
    c = uv - uv.mean(1, keepdims=True)
    return (c / np.sqrt((c ** 2).sum((1, 2), keepdims=True) / 21)).reshape(len(uv), -1)


def nn_lift(train_uv: np.ndarray, train_rel: np.ndarray, query_uv: np.ndarray) -> np.ndarray:
    """3-D pose (root-relative, unit-free) of each query's nearest training 2-D layout."""
    a, b = layout(train_uv), layout(query_uv)
    d = (b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None]
    return train_rel[d.argmin(1)]


def detail(gt: dict, uv_px: np.ndarray, rel: np.ndarray) -> dict[str, float]:
    """Scores + per-group 2-D error (px) + root-relative depth error (mm, metric scale from the truth)."""
    out = pose_scores(gt["rel"], rel, gt["uv"], uv_px)
    err = np.linalg.norm(uv_px - gt["uv"], axis=-1)
    out.update({f"err2d_{k}": float(err[:, v].mean()) for k, v in GROUPS.items()})
    out["depth_mm"] = float(1000 * np.abs(rel[..., 2] - gt["rel"][..., 2])[:, 1:].mean())
    sh = shuffled_scores(gt["rel"], rel, gt["uv"], uv_px)
    out.update(shuffled_pa=sh["pa_mpjpe_mm"], shuffled_2d=sh["err2d_px"])
    return {k: round(float(v), 3) for k, v in out.items()}


def cmd_lift(args: argparse.Namespace) -> dict:
    pool = open_labelled(DATA / "finetune", 64)
    val = HanCoImages(HanCo(DATA / "val"), HanCo(DATA / "val").sequences, 64)
    tr, va = hanco_targets(pool), hanco_targets(val)
    rel_unit = tr["rel"] / tr["scale"][:, None, None]
    out = {"aligned_mean": pose_scores(va["rel"], np.broadcast_to(procrustes_mean(tr["rel"]), va["rel"].shape))["pa_mpjpe_mm"]}
    rng = np.random.default_rng(0)
    for noise in (0.0, 1.0, 2.0, 4.0):
        q = va["uv"] + rng.normal(0, noise, va["uv"].shape)
        pred = nn_lift(tr["uv"], rel_unit, q) * va["scale"][:, None, None]
        out[f"nn_lift_noise{noise:g}px"] = pose_scores(va["rel"], pred)["pa_mpjpe_mm"]
    return {k: round(float(v), 3) for k, v in out.items()}


def cmd_lifter(args: argparse.Namespace) -> dict:
    """The kinematic-prior lifter (:mod:`apps.hand.lifting`) on the validation images' true 2-D (+ Gaussian noise of
    ``--sweep`` px, one draw per level, the same for every lifter); also on 512 held-out sampled hands (exact 2-D,
    scored at the validation split's mean reference-bone length: the lifter's own distribution). ``--curve`` adds
    the exact-2-D score every 500 steps; ``--checkpoint`` + ``--stop-after-min`` split a long fit over jobs (rerun
    the same command to resume)."""
    from apps.hand.lifting import sample_views, train_lifter

    ds = HanCo(DATA / "val")
    val = HanCoImages(ds, ds.sequences, 64)
    va = hanco_targets(val)
    left = np.array([ds.shape(s, f).get("side") == "left" for s, _, f in val.samples])
    if args.left < 0.5:  # a right-hand lifter: left hands are mirrored to right ones (image and truth)
        va["uv"][left, :, 0] = 63 - va["uv"][left, :, 0]
        va["rel"][left, :, 0] *= -1
    sampled_uv, sampled_rel = sample_views(np.random.default_rng(10_000 + args.seed), 512, noise=0.0, left=args.left)
    mean_scale = float(va["scale"].mean())

    def val_pa(net, uv_px: np.ndarray) -> float:
        """PA-MPJPE (mm) of ``net`` lifting the validation 2-D ``uv_px`` (px of 64), at each image's scale."""
        with torch.no_grad():
            pred = net(torch.from_numpy(uv_px / 64).float()).numpy() * va["scale"][:, None, None]
        return round(pose_scores(va["rel"], pred)["pa_mpjpe_mm"], 3)

    curve: list[list[float]] = []
    every = None
    if args.curve:
        every = lambda step, net: (curve.append([step, val_pa(net, va["uv"])]), print("val", step, curve[-1][1], flush=True))
    started = time.time()
    stop_at = time.monotonic() + 60 * args.stop_after_min if args.stop_after_min > 0 else None
    net = train_lifter(args.steps, batch=args.lifter_batch, seed=args.seed, lr=args.lifter_lr, noise=args.noise,
                       width=args.lifter_width, blocks=args.blocks, left=args.left,
                       log=lambda s, v: print(s, round(v, 4), flush=True), checkpoint=args.checkpoint or None,
                       stop_at=stop_at, every=every)
    out = {"steps": args.steps, "batch": args.lifter_batch, "width": args.lifter_width, "blocks": args.blocks,
           "lr": args.lifter_lr, "train_noise": args.noise, "seed": args.seed, "seconds": round(time.time() - started, 1)}
    if net is None:
        return {**out, "incomplete": True, "note": f"stopped at the deadline; rerun to resume from {args.checkpoint}"}
    rng = np.random.default_rng(0)
    for noise in args.sweep:
        noisy = va["uv"] + rng.normal(0, noise, va["uv"].shape)
        out[f"lifter_noise{noise:g}px"] = val_pa(net, noisy)
        out[f"err2d_noise{noise:g}px"] = round(float(np.linalg.norm(noisy - va["uv"], axis=-1).mean()), 3)  # mean 2-D error
    with torch.no_grad():
        pred = net(torch.from_numpy(sampled_uv)).numpy() * mean_scale
    out["sampled_exact_pa_mm"] = round(pose_scores(sampled_rel * mean_scale, pred)["pa_mpjpe_mm"], 3)
    if curve:
        out["curve_exact_pa_mm"] = curve
    if args.save:
        torch.save(net.state_dict(), args.save)
    return out


def cmd_fit(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    pool = open_labelled(args.data or DATA / "finetune", 64, with_foreground=True)
    val_ds = HanCo(DATA / "val")
    val = HanCoImages(val_ds, val_ds.sequences, 64)
    idx = labelled_subset(len(pool.samples), min(1.0, args.labels / len(pool.samples)), args.seed)
    right = args.hands == "right"
    data = LabelledHands(pool, idx, bool(args.augment), min_length=args.batch,
                         backgrounds=background_pool(64, 96, args.seed), negative_rate=args.negatives, right_hands=right)
    net = KeypointNet("resnet10_small", args.width, 256, None, args.head, lifter=args.lifter_steps > 0, hands=args.hands)
    if args.lifter_steps > 0:
        from apps.hand.lifting import train_lifter

        net.lifter.load_state_dict(train_lifter(args.lifter_steps, seed=args.seed, left=0.0 if right else 0.5).state_dict())
    lifter_ids = {id(p) for p in net.lifter.parameters()} if net.lifter is not None else set()
    groups = [{"params": [p for p in net.parameters() if id(p) not in lifter_ids], "lr": args.lr}]
    if lifter_ids:
        groups.append({"params": list(net.lifter.parameters()), "lr": 0.1 * args.lr})  # as KeypointTask
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups], total_steps=args.steps, pct_start=0.05)
    loader = torch.utils.data.DataLoader(data, args.batch, shuffle=True, drop_last=True)
    step, started, logs = 0, time.time(), []
    while step < args.steps:
        for batch in loader:
            net.train()
            out = keypoint_loss(net(normalise(batch["image"])), batch["uv"], batch["xyz"], 1.0, args.w3d,
                                batch["has_hand"], wheat=args.wheat)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0 or step == args.steps:
                logs.append({k: round(float(v), 4) for k, v in out.items()} | {"step": step})
                print(logs[-1], flush=True)
            if step >= args.steps:
                break
    seconds = time.time() - started
    result = {"steps": args.steps, "seconds": round(seconds, 1), "last": logs[-1]}
    sub = HanCoImages.__new__(HanCoImages)
    sub.__dict__.update(pool.__dict__)
    sub.samples = [pool.samples[i] for i in idx[:512]]
    sub.images = pool.images[idx[:512]]
    for name, images in (("train", sub), ("val", val)):
        net.eval()
        gt = hanco_targets(images)
        pixels = images.images
        if right:
            pixels, gt = right_handed_view(images, gt)
        with torch.no_grad():
            out = net(normalise(torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)))
        uv = out["uv"].numpy().astype(np.float64) * 64
        result[name] = detail(gt, uv, out["xyz"].numpy() * gt["scale"][:, None, None])
        if "xyz_maps" in out:
            result[name + "_maps"] = detail(gt, uv, out["xyz_maps"].numpy() * gt["scale"][:, None, None])
            mean = 0.5 * (out["xyz_lifter"] + out["xyz_maps"]).numpy()
            result[name + "_blend"] = detail(gt, uv, mean * gt["scale"][:, None, None])
    if args.save:
        torch.save(net.state_dict(), args.save)
    return result


FINGER_COLOURS = [(255, 255, 255), (255, 80, 80), (80, 255, 80), (80, 160, 255), (255, 255, 80), (255, 80, 255)]


def draw_labels(img: np.ndarray, uv: np.ndarray, zoom: int = 4) -> np.ndarray:
    """A crop upscaled ``zoom`` x (nearest) with its labelled skeleton: ``uv`` in crop units, pixel centres
    at integers (a crop pixel i covers output pixels [zoom*i, zoom*i + zoom), centre zoom*(i + .5) - .5)."""
    import cv2

    from apps.hand.data import BONES

    size = img.shape[0]
    big = cv2.resize(np.ascontiguousarray(img), (size * zoom, size * zoom), interpolation=cv2.INTER_NEAREST)
    pts = (uv * size + 0.5) * zoom - 0.5
    for parent, child in BONES:
        colour = FINGER_COLOURS[1 + (child - 1) // 4]
        cv2.line(big, tuple(int(round(c)) for c in pts[parent]), tuple(int(round(c)) for c in pts[child]), colour, 1, cv2.LINE_AA)
    for k, p in enumerate(pts):
        cv2.circle(big, (int(round(p[0])), int(round(p[1]))), 2, FINGER_COLOURS[0 if k == 0 else 1 + (k - 1) // 4], -1)
    return big


def cmd_look(args: argparse.Namespace) -> dict:
    """Draw the labels on ``--count`` training crops (left: as stored, right-hand view; right: one augmented
    draw) at 4x zoom into ``--save`` (a PNG grid) to check by eye that every label sits on its finger."""
    import cv2

    pool = open_labelled(args.data or DATA / "finetune", 64, with_foreground=True)
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(pool.samples), args.count, replace=False))
    plain = LabelledHands(pool, idx, False, right_hands=args.hands == "right", negative_rate=0.0)
    aug = LabelledHands(pool, idx, True, backgrounds=background_pool(64, 96, args.seed), negative_rate=0.0,
                        right_hands=args.hands == "right")
    np.random.seed(args.seed)
    tiles = []
    for i in range(len(idx)):
        a, b = plain[i], aug[i]
        pair = [draw_labels((x["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), x["uv"].numpy())
                for x in (a, b)]
        tiles.append(np.concatenate([pair[0], np.full((256, 4, 3), 255, np.uint8), pair[1]], 1))
    cols = 4
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)  # pad the last row
    grid = np.concatenate([np.concatenate(tiles[r:r + cols], 1) for r in range(0, len(tiles), cols)], 0)
    Path(args.save).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.save, grid[..., ::-1])
    return {"saved": args.save, "images": len(idx)}


def cmd_labels(args: argparse.Namespace) -> dict:
    """Do augmented labels land on the hand? Every image of ``--data`` (val by default) with its hand mask as the
    picture, warped by the framing (appearance off), and each moved keypoint looked up in the warped mask."""
    pool = open_labelled(args.data or DATA / "val", 64, args.sequences, with_foreground=True)
    idx = np.arange(len(pool.samples))
    white = (pool.alpha > 0.5).astype(np.uint8)[..., None].repeat(3, -1) * 255
    pool.images, pool.foreground = white, white.copy()
    out = {}
    for augment in (False, True):
        data = LabelledHands(pool, idx, augment, backgrounds=np.zeros((4, 64, 64, 3), np.uint8), negative_rate=0.0,
                             right_hands=args.hands == "right")
        data.augment_parts = frozenset({"framing", "background"})
        np.random.seed(args.seed)
        hits = []
        for i in range(len(idx)):
            item = data[i]
            p = np.round(item["uv"].numpy() * 64).astype(int).clip(0, 63)
            hits.append(item["image"][0].numpy()[p[:, 1], p[:, 0]] > 0.5)
        hits = np.array(hits)
        out["augmented" if augment else "stored"] = {"on_hand": round(float(hits.mean()), 4),
                                                     "worst_joint": round(float(hits.mean(0).min()), 4)}
    return out


def parse_parts(spec: str) -> frozenset[str]:
    """``all``, ``none``, ``only:a,b`` or ``-a,b`` (all but these): a subset of the augmentation's parts."""
    from apps.hand.augment import AUGMENT_PARTS

    if spec in ("all", ""):
        return AUGMENT_PARTS
    if spec == "none":
        return frozenset()
    names = frozenset(spec.split(":", 1)[1].split(",") if spec.startswith("only:") else spec.lstrip("-").split(","))
    if not names <= AUGMENT_PARTS:
        raise SystemExit(f"unknown augmentation parts {sorted(names - AUGMENT_PARTS)}; known: {sorted(AUGMENT_PARTS)}")
    return names if spec.startswith("only:") else AUGMENT_PARTS - names


def stack_items(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in ("image", "uv", "xyz", "has_hand")}


def train_net(net: KeypointNet, batches, steps: int, lr: float, wheat: float = 1.0) -> list[dict]:
    """AdamW + one-cycle on ``batches()`` (a generator of batch dicts) for ``steps``; the loss log."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.05)
    logs, step = [], 0
    while step < steps:
        for batch in batches():
            net.train()
            out = keypoint_loss(net(normalise(batch["image"])), batch["uv"], batch["xyz"], 1.0, 1.0,
                                batch["has_hand"], wheat=wheat)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0 or step == steps:
                logs.append({k: round(float(v), 4) for k, v in out.items()} | {"step": step})
                print(logs[-1], flush=True)
            if step >= steps:
                break
    return logs


def err2d(net: KeypointNet, items: dict[str, torch.Tensor], size: int = 64) -> dict[str, float]:
    """Mean 2-D error (px) of ``net`` on stacked items, in eval mode (running BN statistics) and in train
    mode (batch statistics, no update): a gap between them points at batch-norm statistics."""
    out = {}
    for mode in ("eval", "batchstats"):
        net.eval()
        if mode == "batchstats":
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
                    m.momentum = 0.0
        with torch.no_grad():
            uv = torch.cat([net(normalise(items["image"][i:i + 128]))["uv"] for i in range(0, len(items["image"]), 128)])
        out[f"err2d_{mode}"] = round(float((uv - items["uv"]).norm(dim=-1).mean() * size), 3)
    net.eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    return out


def cmd_overfit(args: argparse.Namespace) -> dict:
    """Can the estimator memorise ``--count`` crops? One FIXED draw of the augmentation (``--parts``) per crop,
    trained on for ``--steps`` and scored on exactly those crops: with consistent labels this reaches ~1 px."""
    torch.manual_seed(args.seed)
    pool = open_labelled(args.data or DATA / "finetune", 64, args.sequences, with_foreground=True)
    idx = labelled_subset(len(pool.samples), min(1.0, args.count / len(pool.samples)), args.seed)[:args.count]
    parts = parse_parts(args.parts)
    data = LabelledHands(pool, idx, bool(parts), backgrounds=background_pool(64, 96, args.seed), negative_rate=0.0,
                         right_hands=args.hands == "right")
    data.augment_parts = parts
    np.random.seed(args.seed)
    fixed = stack_items([data[i] for i in range(len(idx))])
    net = KeypointNet("resnet10_small", args.width, 256, None, "heatmap", lifter=False, hands=args.hands)
    gen = torch.Generator().manual_seed(args.seed)

    def batches():
        order = torch.randperm(len(idx), generator=gen)
        for i in range(0, len(order) - args.batch + 1, args.batch):
            yield {k: v[order[i:i + args.batch]] for k, v in fixed.items()}

    started = time.time()
    logs = train_net(net, batches, args.steps, args.lr, args.wheat)
    return {"parts": sorted(parts), "count": len(idx), "steps": args.steps, "seconds": round(time.time() - started, 1),
            "last": logs[-1], "fixed_crops": err2d(net, fixed)}


def cmd_ablate(args: argparse.Namespace) -> dict:
    """Train on fresh augmented draws (``--parts``) of ``--labels`` images for ``--steps``; score 2-D on a
    fixed set of 256 fresh draws of the same images with the same parts (the training distribution), on
    the same images unaugmented, and on the validation split (clean, right-handed view). ``--size``: the
    network's input side (the 64-px renders resized); errors are always in pixels of a 64-px crop.
    ``--save``: the trained network's state dict (to score it further)."""
    torch.manual_seed(args.seed)
    pool = open_labelled(args.data or DATA / "finetune", args.size, args.sequences, with_foreground=True)
    idx = labelled_subset(len(pool.samples), min(1.0, args.labels / len(pool.samples)), args.seed)
    parts = parse_parts(args.parts)
    right = args.hands == "right"
    data = LabelledHands(pool, idx, bool(parts), min_length=args.batch, backgrounds=background_pool(args.size, 96, args.seed),
                         negative_rate=args.negatives, right_hands=right)
    data.augment_parts = parts
    np.random.seed(args.seed + 1000)
    probe = np.random.default_rng(args.seed).choice(len(idx), min(256, len(idx)), replace=False)
    held = stack_items([data[int(i)] for i in probe])
    plain = LabelledHands(pool, idx, False, right_hands=right, negative_rate=0.0)
    clean = stack_items([plain[int(i)] for i in probe])
    val_ds = HanCo(args.val or DATA / "val")
    val = HanCoImages(val_ds, val_ds.sequences, args.size)
    vdata = LabelledHands(val, np.arange(len(val.samples)), False, right_hands=right, negative_rate=0.0)
    val_items = stack_items([vdata[i] for i in range(len(val.samples))])
    net = KeypointNet("resnet10_small", args.width, 256, None, "heatmap", lifter=False, hands=args.hands)
    loader = torch.utils.data.DataLoader(data, args.batch, shuffle=True, drop_last=True)
    np.random.seed(args.seed)
    started = time.time()
    logs = train_net(net, lambda: iter(loader), args.steps, args.lr, args.wheat)
    if args.save:
        torch.save(net.state_dict(), args.save)
    return {"parts": sorted(parts), "size": args.size, "width": args.width, "labels": len(idx), "steps": args.steps, "seconds": round(time.time() - started, 1),
            "last": logs[-1], "train_aug": err2d(net, held), "train_clean": err2d(net, clean), "val": err2d(net, val_items)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("lift", "lifter", "fit", "look", "overfit", "ablate", "labels"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--log", default="runs/hand_diag/log.jsonl")
    ap.add_argument("--data", default="")
    ap.add_argument("--val", default="", help="ablate: validation root (default runs/hand_bench/data/val)")
    ap.add_argument("--sequences", default="", help="overfit/ablate: HanCo sequences of --data (\"0-29\"; \"\" = all)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--labels", type=int, default=384)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--augment", type=int, default=1)
    ap.add_argument("--negatives", type=float, default=0.0)
    ap.add_argument("--w3d", type=float, default=1.0)
    ap.add_argument("--wheat", type=float, default=1.0)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--size", type=int, default=64, help="ablate: network input side (renders resized)")
    ap.add_argument("--head", default="heatmap")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--left", type=float, default=0.5, help="lifter: fraction of left hands in its training")
    ap.add_argument("--lifter-width", type=int, default=512,
                    help="lifter: MLP width (the estimator's 512; before 2026-12-07 08:00 this read --width, default 16)")
    ap.add_argument("--blocks", type=int, default=2, help="lifter: residual blocks")
    ap.add_argument("--lifter-batch", type=int, default=256, help="lifter: sampled hands per step")
    ap.add_argument("--lifter-lr", type=float, default=1e-3, help="lifter: peak learning rate (cosine)")
    ap.add_argument("--sweep", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0],
                    help="lifter: Gaussian 2-D noise levels (px of 64) of the validation scores")
    ap.add_argument("--curve", action="store_true", help="lifter: exact-2-D validation score every 500 steps")
    ap.add_argument("--checkpoint", default="", help="lifter: checkpoint file (a rerun resumes from it)")
    ap.add_argument("--stop-after-min", type=float, default=0.0, help="lifter: save and stop after this many minutes")
    ap.add_argument("--save", default="")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--parts", default="all", help="overfit/ablate: all | none | only:a,b | -a,b (augmentation parts)")
    ap.add_argument("--lifter-steps", type=int, default=0, help="fit: > 0 adds the kinematic-prior lifter (3-D from 2-D)")
    ap.add_argument("--hands", default="both", choices=("both", "right"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    result = {"what": args.what, "tag": args.tag, **{"lift": cmd_lift, "lifter": cmd_lifter, "fit": cmd_fit, "look": cmd_look, "overfit": cmd_overfit, "ablate": cmd_ablate, "labels": cmd_labels}[args.what](args)}
    print(json.dumps(result), flush=True)
    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as handle:
        handle.write(json.dumps({**result, "args": vars(args)}) + "\n")


if __name__ == "__main__":
    main()
