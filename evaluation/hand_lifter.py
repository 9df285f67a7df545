"""Lifter trained on the 2-D the estimator really produces — the validation-split comparison (seed 14, 512
images; the test split is never read here).

The shipped estimator's lifter was trained on sampled hands with near-exact 2-D, so its ~10-px 2-D error turns into
confident, wrong articulation (its 3-D is worse than the image-blind aligned mean pose). This script

1. ``cache``: runs an estimator on every image of its training pool (clean renders, left hands mirrored as for
   training) and on the validation split, and stores its 2-D predictions, joint confidences and the true
   root-relative 3-D (reference-bone units) in an ``.npz`` (plus the image-blind controls of the pool on the
   validation images);
2. ``compare``: fits lifter variants on the pool pairs (:func:`apps.hand.lifting.refit_lifter`) and scores each on
   the validation predictions beside the current lifter, the aligned mean pose and the shuffled-image control;
   one JSON line per variant and seed in ``--results``.

    python -m evaluation.hand_lifter cache --weights weights/hand_keypoints.safetensors --pool runs/hand_bench/data/views_k1 \\
        --out runs/hand_lifter/cache.npz
    python -m evaluation.hand_lifter compare --cache runs/hand_lifter/cache.npz --weights weights/hand_keypoints.safetensors
    python -m evaluation.hand_lifter compare --cache runs/hand_lifter/cache.npz --variants refit_mix0.5_pa4 \\
        --pretrained runs/hand_lifter_ceiling/w512b2_30k_s0.pt     # the shipped refit from another pretrained lifter
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.hand.data import HanCo  # noqa: E402
from apps.hand.evaluate import pose_scores, shuffled_scores  # noqa: E402
from apps.hand.infer import evaluate_controls, hanco_targets, predict, right_handed_view  # noqa: E402
from apps.hand.lifting import Lifter, refit_lifter  # noqa: E402
from apps.hand.model import KeypointNet  # noqa: E402
from apps.hand.train import HanCoImages, open_labelled  # noqa: E402

VAL = ROOT / "runs/hand_bench/data/val"   # cvsuite hand synth --out DIR --sequences 4 --seed 14 --frames 16 --size 64


def predictions(net: KeypointNet, images: HanCoImages, prefix: str) -> dict[str, np.ndarray]:
    """The estimator's 2-D (crop units), joint confidences and 3-D on ``images`` (left hands mirrored for a
    right-hand estimator) with their truth: root-relative 3-D in metres and in reference-bone units, 2-D in pixels."""
    gt = hanco_targets(images)
    pixels = images.images
    if net.hands == "right":
        pixels, gt = right_handed_view(images, gt)
    uv, xyz, conf = predict(net, pixels, with_confidence=True)
    weight, net.lifter_weight = net.lifter_weight, 0.0     # the location maps' 3-D too
    xyz_maps = predict(net, pixels)[1]
    net.lifter_weight = weight
    return {f"{prefix}_uv": uv.astype(np.float32), f"{prefix}_conf": conf["joint_confidence"].astype(np.float32),
            f"{prefix}_xyz": xyz.astype(np.float32), f"{prefix}_xyz_maps": xyz_maps.astype(np.float32),
            f"{prefix}_rel_m": gt["rel"], f"{prefix}_scale": gt["scale"],
            f"{prefix}_rel": (gt["rel"] / gt["scale"][:, None, None]).astype(np.float32), f"{prefix}_uv_px": gt["uv"],
            f"{prefix}_size": np.array(images.size)}


def cache(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    net, _ = KeypointNet.from_file(args.weights)
    ds = HanCo(VAL)
    val = HanCoImages(ds, ds.sequences, 64)
    pool = open_labelled(args.pool, 64, args.sequences)
    arrays = {**predictions(net, pool, "pool"), **predictions(net, val, "val")}
    controls = evaluate_controls(pool, np.arange(len(pool.samples)), val, right_hands=net.hands == "right")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    meta = {"weights": str(args.weights), "pool": str(args.pool), "sequences": args.sequences,
            "pool_images": len(pool.samples), "val_images": len(val.samples),
            "controls": {k: {m: float(v) for m, v in c.items()} for k, c in controls.items() if k != "camera_mean"},
            "seconds": round(time.perf_counter() - started, 1)}
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))


def score(c: dict[str, np.ndarray], split: str, rel_units: np.ndarray) -> dict[str, float]:
    """PA-MPJPE (and AUC) of 3-D predictions in reference-bone units, with the shuffled-image control."""
    pred = rel_units * c[f"{split}_scale"][:, None, None]
    gt = c[f"{split}_rel_m"]
    out = pose_scores(gt, pred)
    out["rel_mpjpe_mm"] = 1000 * float(np.linalg.norm(pred - gt, axis=-1).mean())  # camera frame, no alignment
    out.update({f"shuffled_{k}": v for k, v in shuffled_scores(gt, pred).items()})
    return {k: round(float(v), 3) for k, v in out.items()}


@torch.no_grad()
def lift(lifter: Lifter, c: dict[str, np.ndarray], split: str) -> np.ndarray:
    conf = torch.from_numpy(c[f"{split}_conf"]) if lifter.confidence_inputs else None
    return lifter.eval()(torch.from_numpy(c[f"{split}_uv"]), conf).numpy()


def lifter_from_state(path: Path) -> Lifter:
    """A :class:`Lifter` saved as a state dict (``hand_diag lifter --save``; loaded without running code, ``shared.engine.checkpoint``); its
    width, block count and confidence inputs are read from the tensors' shapes."""
    from apps.hand.lifting import LAYOUT_DIM
    from shared.engine.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    width, inputs = state["inp.weight"].shape
    blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    net = Lifter(width, blocks, confidence_inputs=inputs > LAYOUT_DIM)
    net.load_state_dict(state)
    return net.eval()


def shipped_lifter(weights: Path) -> Lifter:
    net, _ = KeypointNet.from_file(weights)
    if net.lifter is None:
        raise SystemExit(f"{weights}: no lifter")
    return net.lifter


VARIANTS = {  # name -> (start from the shipped lifter?, refit_lifter keyword arguments); in order of priority
    "refit_mix0.5": (True, {"steps": 2000, "prior_fraction": 0.5}),
    "refit_pairs": (True, {"steps": 2000, "prior_fraction": 0.0}),
    "refit_mix0.5_pa": (True, {"steps": 2000, "prior_fraction": 0.5, "pa_weight": 1.0}),
    "fresh_pairs_conf": (False, {"steps": 2000, "prior_fraction": 0.0, "lr": 1e-3, "confidence": True}),
    "fresh_pairs": (False, {"steps": 2000, "prior_fraction": 0.0, "lr": 1e-3}),
    # second round (after the first showed that the Procrustes-aligned term is what helps)
    "refit_mix0.5_pa4": (True, {"steps": 2000, "prior_fraction": 0.5, "pa_weight": 4.0}),
    "refit_pairs_pa": (True, {"steps": 2000, "prior_fraction": 0.0, "pa_weight": 1.0}),
    "refit_mix0.5_pa_4000": (True, {"steps": 4000, "prior_fraction": 0.5, "pa_weight": 1.0}),
    "refit_prior_only_pa": (True, {"steps": 2000, "prior_fraction": 1.0, "pa_weight": 1.0}),  # control: no own pairs
    "fresh_pairs_conf_pa": (False, {"steps": 2000, "prior_fraction": 0.0, "lr": 1e-3, "pa_weight": 1.0,
                                    "confidence": True}),
}


def compare(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    c = dict(np.load(args.cache))
    meta = json.loads(args.cache.with_suffix(".json").read_text())
    out = args.results
    out.parent.mkdir(exist_ok=True)

    def record(name: str, seed: int | None, lifter: Lifter, seconds: float, **extra) -> None:
        rec = {"variant": name, "seed": seed, "cache": str(args.cache), "weights": meta["weights"],
               "split": "val seed 14", "val": score(c, "val", lift(lifter, c, "val")),
               "pool (training pairs)": {k: v for k, v in score(c, "pool", lift(lifter, c, "pool")).items()
                                         if not k.startswith("shuffled")},
               "seconds": round(seconds, 1), **extra}
        with out.open("a") as handle:
            handle.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)

    base = shipped_lifter(Path(meta["weights"]))
    start_note = {}
    if args.pretrained:  # the refits start from a lifter pretrained elsewhere (e.g. longer) instead of the file's
        base = lifter_from_state(args.pretrained)
        start_note = {"start": str(args.pretrained), "start_arch": f"width {base.inp.out_features}, {len(base.blocks)} blocks"}
        record("pretrained lifter, no refit", None, base, 0.0, **start_note)
    elif not args.variants or args.reference:  # references: the current lifter, the location maps, the image-blind controls
        record("shipped lifter", None, base, 0.0, controls_on_val=meta["controls"],
               location_maps_val=score(c, "val", c["val_xyz_maps"]))
    if args.reference:
        return
    names = args.variants or list(VARIANTS)
    if args.steps:
        VARIANTS.update({n: (VARIANTS[n][0], {**VARIANTS[n][1], "steps": args.steps}) for n in names})
    for seed in args.seeds:
        for name in names:
            from_shipped, kw = VARIANTS[name]
            kw = dict(kw)
            use_conf = kw.pop("confidence", False)
            started = time.perf_counter()
            start = base if from_shipped else Lifter(confidence_inputs=use_conf)
            fitted = refit_lifter(start, c["pool_uv"], c["pool_rel"], c["pool_conf"] if use_conf else None,
                                  seed=seed, **kw)
            record(name, seed, fitted, time.perf_counter() - started, settings={k: v for k, v in kw.items()},
                   **(start_note if from_shipped else {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("cache")
    a.add_argument("--weights", type=Path, default=ROOT / "weights/hand_keypoints.safetensors")
    a.add_argument("--pool", type=Path, default=ROOT / "runs/hand_bench/data/views_k1")
    a.add_argument("--sequences", default="", help="pool sequences (default all), e.g. 0-63 for a quick look")
    a.add_argument("--out", type=Path, default=ROOT / "runs/hand_lifter/cache.npz")
    b = sub.add_parser("compare")
    b.add_argument("--cache", type=Path, default=ROOT / "runs/hand_lifter/cache.npz")
    b.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS))
    b.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    b.add_argument("--steps", type=int, default=0, help="override every variant's step count")
    b.add_argument("--results", type=Path, default=ROOT / "evaluation/results/hand_lifter.jsonl")
    b.add_argument("--reference", action="store_true", help="only the file's lifter, location maps and controls")
    b.add_argument("--pretrained", type=Path, default=None,
                   help="a lifter state dict (hand_diag lifter --save): refits start from it instead of the file's lifter")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cache(args) if args.cmd == "cache" else compare(args)


if __name__ == "__main__":
    main()
