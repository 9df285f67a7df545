"""Do the fingers spread? Validation split only (seed 14, 512 images, right-hand view): for each estimator, the 2-D
error per joint group (wrist, MCP, PIP, DIP, tip), the predicted skeleton's RMS size over the true one's, and the
fingertips' spread (RMS distance of the five predicted tips from their own centroid, over the true tips'), then a PNG
of ``--count`` crops at 4x: the truth, then each estimator's skeleton, side by side (to look at):

    python -m evaluation.hand_look_val --weights runs/A/model.safetensors --weights runs/B/model.safetensors \
        --save runs/hand_look/val.png [--results evaluation/results/hand_limbs_look.jsonl]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.hand.data import HanCo  # noqa: E402
from apps.hand.infer import hanco_targets, predict, right_handed_view  # noqa: E402
from apps.hand.model import KeypointNet  # noqa: E402
from apps.hand.train import HanCoImages  # noqa: E402
from evaluation.hand_diag import GROUPS, draw_labels  # noqa: E402

VAL = ROOT / "runs/hand_bench/data/val"
TIPS = GROUPS["tip"]


def rms_size(uv: np.ndarray) -> np.ndarray:
    """RMS distance of the points (N, K, 2) from their centroid, per item."""
    return np.sqrt(((uv - uv.mean(1, keepdims=True)) ** 2).sum(-1).mean(1))


def spread_stats(pred_px: np.ndarray, true_px: np.ndarray) -> dict[str, float]:
    err = np.linalg.norm(pred_px - true_px, axis=-1)                  # (N, 21)
    out = {f"err2d_{g}_px": float(err[:, j].mean()) for g, j in GROUPS.items()}
    out["err2d_px"] = float(err.mean())
    out["skeleton_size_ratio"] = float((rms_size(pred_px) / rms_size(true_px)).mean())
    out["tip_spread_ratio"] = float((rms_size(pred_px[:, TIPS]) / rms_size(true_px[:, TIPS])).mean())
    return out


def main() -> None:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, action="append", required=True)
    ap.add_argument("--save", type=Path, required=True)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--results", type=Path, default=None, help="JSON-lines file the record is appended to")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = HanCo(VAL)
    val = HanCoImages(ds, ds.sequences, 64)
    pixels, gt = right_handed_view(val, hanco_targets(val))
    record: dict = {"split": "val seed 14", "images": len(pixels), "models": {}}
    preds = []
    for w in args.weights:
        net, _ = KeypointNet.from_file(w)
        uv = predict(net, pixels)[0] * val.size
        preds.append(uv)
        record["models"][str(w)] = {k: round(v, 4) for k, v in spread_stats(uv, gt["uv"]).items()}
    chosen = np.linspace(0, len(pixels) - 1, args.count).round().astype(int)
    rows = []
    for i in chosen:
        tiles = [draw_labels(pixels[i], (gt["uv"][i]) / val.size)]
        tiles += [draw_labels(pixels[i], p[i] / val.size) for p in preds]
        gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        rows.append(np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], 1))
    args.save.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.save), np.concatenate(rows, 0)[..., ::-1])
    record["saved"] = str(args.save)
    if args.results:
        with args.results.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
