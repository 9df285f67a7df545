"""Validation scores (seed-14 split, 512 images, never the test split) of a hand keypoint estimator while
its training continues: the decision whether stage 2 of the shipped recipe
(``apps/hand/configs/keypoints_full_cont.yaml``) is kept. Reads a ``hand train`` checkpoint
(``checkpoints/last.pt``, loaded with ``weights_only``) or a ``.safetensors`` result and appends one JSON line
to ``evaluation/results/hand_continue.jsonl``:

    python -m evaluation.hand_continue --weights weights/hand_keypoints.safetensors --label "stage 1 (shipped)"
    python -m evaluation.hand_continue --ckpt runs/hand_keypoints_cont/checkpoints/last.pt
    python -m evaluation.hand_continue --weights runs/hand_keypoints_views/model.safetensors \
        --controls runs/hand_bench/data/views_k1 --results evaluation/results/hand_views.jsonl

``--controls POOL`` adds the image-blind references of a training pool on the same validation images (its
labelled poses' aligned mean pose with their mean 2-D layout, one fixed open hand; right hands), beside the
shuffled-image control that is always computed.
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
from apps.hand.infer import evaluate_controls, evaluate_hanco  # noqa: E402
from apps.hand.model import KeypointNet  # noqa: E402
from apps.hand.train import HanCoImages, open_labelled  # noqa: E402
from shared.engine.checkpoint import load_checkpoint  # noqa: E402
from shared.weights import load_into  # noqa: E402

VAL = ROOT / "runs/hand_bench/data/val"   # cvsuite hand synth --out DIR --sequences 4 --seed 14 --frames 16 --size 64


def net_from_checkpoint(path: Path) -> tuple[KeypointNet, int]:
    """The shipped architecture (heatmap head + lifter, right hands, lifter weight 1; the encoder width from the
    run's config) with a checkpoint's tensors."""
    state = load_checkpoint(path)
    cfg = state.get("config") or {}
    width = int(cfg.get("width", 16))
    net = KeypointNet("resnet10_small", width, 256, None, "heatmap", True, "right", 1.0, int(cfg.get("heatmap_stride", 4)))
    load_into(net, {k[len("net."):]: v for k, v in state["model"].items() if k.startswith("net.")}, path)
    net.eval()
    return net, int(state["step"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", type=Path)
    src.add_argument("--weights", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--controls", type=Path, action="append", default=[],
                    help="a training pool (HanCo root): add its image-blind controls on the validation images")
    ap.add_argument("--results", type=Path, default=ROOT / "evaluation/results/hand_continue.jsonl",
                    help="JSON-lines file the record is appended to")
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    if args.ckpt:
        net, step = net_from_checkpoint(args.ckpt)
    else:
        net, meta = KeypointNet.from_file(args.weights)
        step = int(meta.get("step", -1))
    ds = HanCo(VAL)
    val = HanCoImages(ds, ds.sequences, 64)
    scores = {}
    for w in (1.0, 0.0):  # the lifter's 3-D (shipped) and the location maps' 3-D
        net.lifter_weight = w
        s = evaluate_hanco(net, val, shuffled=w == 1.0)
        scores[f"lifter_weight_{w:g}"] = {k: round(float(v), 4) for k, v in s.items()}
    controls = {}
    for pool_root in args.controls:
        pool = open_labelled(pool_root, 64)
        ctrl = evaluate_controls(pool, np.arange(len(pool.samples)), val, right_hands=net.hands == "right")
        controls[str(pool_root)] = {name: {k: round(float(v), 4) for k, v in c.items()}
                                    for name, c in ctrl.items() if name != "camera_mean"}
    record = {"source": str(args.ckpt or args.weights), "label": args.label, "step": step, "split": "val seed 14",
              **scores, **({"controls": controls} if controls else {}), "seconds": round(time.perf_counter() - started, 1)}
    out = args.results
    out.parent.mkdir(exist_ok=True)
    with out.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
