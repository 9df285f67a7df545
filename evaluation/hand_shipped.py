"""Held-out scores of the shipped hand models: the bench_hand test split (1024 images) with the
shuffled-image control, the image-blind controls (aligned mean pose, fixed pose, camera-frame mean) from
the whole labelled pool, and the FreiHAND protocol on a FreiHAND-layout synthetic split. With
``--install`` the recipe outputs (``runs/hand_pretrain_abc``, ``runs/hand_keypoints_full``) are copied into
``weights/`` and recorded in ``weights/MANIFEST.json``.

    python -m evaluation.hand_shipped [--install]      # after the two recipe commands of the README
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.hand.data import FreiHAND, HanCo  # noqa: E402
from apps.hand.evaluate import evaluate  # noqa: E402
from apps.hand.infer import evaluate_controls, evaluate_hanco, predict_freihand  # noqa: E402
from apps.hand.model import KeypointNet  # noqa: E402
from apps.hand.train import HanCoImages, open_labelled  # noqa: E402
from shared.weights import add_manifest_entry  # noqa: E402

ENCODER = ROOT / "runs/hand_pretrain_abc/model.safetensors"
REGRESSOR = ROOT / "runs/hand_keypoints_full/model.safetensors"
DATA = ROOT / "runs/hand_bench/data"
FH_SPLIT = ROOT / "runs/hand_ship/fh_test"


def scores(weights: Path) -> dict:
    ds = HanCo(DATA / "test")
    test = HanCoImages(ds, ds.sequences, 64)
    net, _ = KeypointNet.from_file(weights)
    matched = evaluate_hanco(net, test, shuffled=True)
    pool = open_labelled(DATA / "finetune", 64)
    controls = evaluate_controls(pool, np.arange(len(pool.samples)), test)
    if not (FH_SPLIT / "evaluation_xyz.json").is_file():
        subprocess.run([sys.executable, "-m", "shared.cli", "hand", "synth", "--out", str(FH_SPLIT), "--sequences", "4",
                        "--seed", "13", "--frames", "12", "--size", "64", "--layout", "freihand"], check=True, cwd=ROOT)
    xyz, verts = predict_freihand(net, 64, FH_SPLIT)
    fh = FreiHAND(FH_SPLIT)
    official = evaluate(fh.xyz(), fh.verts(), xyz, verts)
    return {"test": matched, "controls": controls,
            "freihand": {k: official[k] for k in ("xyz_mean3d", "xyz_al_mean3d", "xyz_al_auc3d")}}


def install(result: dict) -> None:
    m, ctrl, fh = result["test"], result["controls"], result["freihand"]
    shutil.copyfile(ENCODER, ROOT / "weights/hand_moco_bgswap_multiview.safetensors")
    shutil.copyfile(REGRESSOR, ROOT / "weights/hand_keypoints.safetensors")
    pre = [json.loads(line) for line in open(ENCODER.parent / "metrics.jsonl")][-1]
    add_manifest_entry(
        "hand_moco_bgswap_multiview", ROOT / "weights/hand_moco_bgswap_multiview.safetensors",
        "cvsuite hand synth --out runs/hand_bench/data/pretrain --sequences 30 --seed 11 --frames 16 --size 64; "
        "OMP_NUM_THREADS=1 cvsuite hand pretrain --config apps/hand/configs/pretrain_abc.yaml (MoCo, positives a+b+c, "
        "shuffle-BN 4 groups, queue 4096 of both views' keys, m 0.99, 400 steps x 32 pairs, 64 px)",
        {"final_infonce_loss": round(pre["loss"], 3), "final_pos_cos": round(pre["pos_cos"], 3)},
        {"app": "hand", "arch": "resnet10_small width 16 + MLP projector 128-d (encoder.*, projector.*)",
         "train_data": "synthetic HanCo, cvsuite hand synth --sequences 30 --seed 11 --frames 16 --size 64 (3840 images)"})
    add_manifest_entry(
        "hand_keypoints", ROOT / "weights/hand_keypoints.safetensors",
        "cvsuite hand synth --out runs/hand_bench/data/pretrain --sequences 30 --seed 11 --frames 16 --size 64; "
        "cvsuite hand synth --out runs/hand_bench/data/finetune --sequences 30 --seed 12 --frames 16 --size 64; "
        "OMP_NUM_THREADS=1 cvsuite hand pretrain --config apps/hand/configs/pretrain_abc.yaml; "
        "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_full.yaml",
        {"test_pa_mpjpe_mm": round(m["pa_mpjpe_mm"], 2), "test_pa_auc_0_50mm": round(m["pa_auc"], 4),
         "test_err2d_px_of_64": round(m["err2d_px"], 2), "test_pck2d_3.2px": round(m["pck2d"], 4),
         "test_shuffled_pa_mpjpe_mm": round(m["shuffled_pa_mpjpe_mm"], 2),
         "test_shuffled_err2d_px": round(m["shuffled_err2d_px"], 2),
         "aligned_mean_pose_pa_mpjpe_mm": round(ctrl["aligned_mean"]["pa_mpjpe_mm"], 2),
         "freihand_xyz_mean3d_cm": round(fh["xyz_mean3d"], 3), "freihand_xyz_al_mean3d_cm": round(fh["xyz_al_mean3d"], 3),
         "freihand_xyz_al_auc3d": round(fh["xyz_al_auc3d"], 4)},
        {"app": "hand", "arch": "resnet10_small width 16 + heatmap head (soft-argmax 2-D, location-map 3-D root-relative "
                                "/ ref bone, presence), 64 px",
         "train_data": "synthetic HanCo seed 12 (30 sequences x 16 frames x 8 cameras, 3840 images) with apps/hand/augment.py",
         "eval_data": "held-out synthetic seed 13 (8 sequences, 1024 images: runs/hand_bench/data/test) and a FreiHAND-layout "
                      "split: cvsuite hand synth --out runs/hand_ship/fh_test --sequences 4 --seed 13 --frames 12 --size 64 "
                      "--layout freihand; cvsuite hand predict; cvsuite hand eval"})


def main() -> None:
    torch.set_num_threads(1)
    result = scores(REGRESSOR if "--install" in sys.argv else ROOT / "weights/hand_keypoints.safetensors")
    out = ROOT / "evaluation/results/hand_shipped.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(result, indent=1, default=float))
    if "--install" in sys.argv:
        install(result)


if __name__ == "__main__":
    main()
