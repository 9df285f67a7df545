"""Held-out scores of the shipped hand models (test split of bench_hand, image-blind controls, FreiHAND protocol);
with --install, copy the recipe outputs (runs/hand_pretrain_abc, runs/hand_keypoints_full) into weights/ and record
them in weights/MANIFEST.json.

    python -m evaluation.hand_shipped [--install]
"""
import json, shutil, subprocess, sys
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]; sys.path.insert(0, str(ROOT))
import os; os.chdir(ROOT)
from apps.hand.data import HanCo, FreiHAND
from apps.hand.train import HanCoImages, labelled_subset, open_labelled
from apps.hand.model import KeypointNet
from apps.hand.infer import evaluate_hanco, evaluate_controls, predict_freihand
from apps.hand.evaluate import evaluate
from shared.weights import add_manifest_entry
enc, reg = ROOT / "runs/hand_pretrain_abc/model.safetensors", ROOT / "runs/hand_keypoints_full/model.safetensors"
ds = HanCo("runs/hand_bench/data/test"); test = HanCoImages(ds, ds.sequences, 64)
net, _ = KeypointNet.from_file(reg)
m = evaluate_hanco(net, test, shuffled=True)
pool = open_labelled("runs/hand_bench/data/finetune", 64)
ctrl = evaluate_controls(pool, np.arange(len(pool.samples)), test)
fh = Path("runs/hand_ship/fh_test")
if not (fh / "evaluation_xyz.json").is_file():
    subprocess.run([sys.executable, "-m", "shared.cli", "hand", "synth", "--out", str(fh), "--sequences", "4", "--seed", "13",
                    "--frames", "12", "--size", "64", "--layout", "freihand", "--force"], check=True)
xyz, verts = predict_freihand(net, 64, fh)
f = FreiHAND(fh)
sc = evaluate(f.xyz(), f.verts(), xyz, verts)
out = {"test": m, "controls": ctrl, "freihand": {k: sc[k] for k in ("xyz_mean3d", "xyz_al_mean3d", "xyz_al_auc3d")}}
print(json.dumps(out, indent=1, default=float))
(ROOT / "evaluation/results").mkdir(exist_ok=True); (ROOT / "evaluation/results/hand_shipped.json").write_text(json.dumps(out, indent=1, default=float))
if "--install" in sys.argv:
    shutil.copyfile(enc, ROOT / "weights/hand_moco_bgswap_multiview.safetensors")
    shutil.copyfile(reg, ROOT / "weights/hand_keypoints.safetensors")
    pre = [json.loads(l) for l in open(ROOT / "runs/hand_pretrain_abc/metrics.jsonl")][-1]
    add_manifest_entry("hand_moco_bgswap_multiview", ROOT / "weights/hand_moco_bgswap_multiview.safetensors",
        "cvsuite hand synth --out runs/hand_bench/data/pretrain --sequences 30 --seed 11 --frames 16 --size 64; "
        "OMP_NUM_THREADS=1 cvsuite hand pretrain --config apps/hand/configs/pretrain_abc.yaml (MoCo, positives a+b+c, "
        "shuffle-BN 4 groups, queue 4096 of both views' keys, m 0.99, 400 steps x 32 pairs, 64 px)",
        {"final_infonce_loss": round(pre["loss"], 3), "final_pos_cos": round(pre["pos_cos"], 3)},
        {"app": "hand", "arch": "resnet10_small width 16 + MLP projector 128-d (encoder.*, projector.*)",
         "train_data": "synthetic HanCo, cvsuite hand synth --sequences 30 --seed 11 --frames 16 --size 64 (3840 images)"})
    add_manifest_entry("hand_keypoints", ROOT / "weights/hand_keypoints.safetensors",
        "cvsuite hand synth --out runs/hand_bench/data/pretrain --sequences 30 --seed 11 --frames 16 --size 64; "
        "cvsuite hand synth --out runs/hand_bench/data/finetune --sequences 30 --seed 12 --frames 16 --size 64; "
        "OMP_NUM_THREADS=1 cvsuite hand pretrain --config apps/hand/configs/pretrain_abc.yaml; "
        "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_full.yaml",
        {"test_pa_mpjpe_mm": round(m["pa_mpjpe_mm"], 2), "test_pa_auc_0_50mm": round(m["pa_auc"], 4),
         "test_err2d_px_of_64": round(m["err2d_px"], 2), "test_pck2d_3.2px": round(m["pck2d"], 4),
         "test_shuffled_pa_mpjpe_mm": round(m["shuffled_pa_mpjpe_mm"], 2), "test_shuffled_err2d_px": round(m["shuffled_err2d_px"], 2),
         "aligned_mean_pose_pa_mpjpe_mm": round(ctrl["aligned_mean"]["pa_mpjpe_mm"], 2),
         "freihand_xyz_mean3d_cm": round(sc["xyz_mean3d"], 3), "freihand_xyz_al_mean3d_cm": round(sc["xyz_al_mean3d"], 3),
         "freihand_xyz_al_auc3d": round(sc["xyz_al_auc3d"], 4)},
        {"app": "hand", "arch": "resnet10_small width 16 + heatmap head (soft-argmax 2-D, location-map 3-D root-relative / ref bone, presence), 64 px",
         "train_data": "synthetic HanCo seed 12 (30 sequences x 16 frames x 8 cameras, 3840 images) with apps/hand/augment.py",
         "eval_data": "held-out synthetic seed 13 (8 sequences, 1024 images: runs/hand_bench/data/test) and a FreiHAND-layout split: "
                      "cvsuite hand synth --out runs/hand_ship/fh_test --sequences 4 --seed 13 --frames 12 --size 64 --layout freihand; "
                      "cvsuite hand predict; cvsuite hand eval"})
    print("installed")
