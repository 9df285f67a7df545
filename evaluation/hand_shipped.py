"""Held-out scores of the shipped hand models: the bench_hand test split (1024 images) with the
shuffled-image control, the image-blind controls (aligned mean pose, fixed pose, camera-frame mean) from
the whole labelled pool, and the FreiHAND protocol on a FreiHAND-layout synthetic split. With
``--install`` the recipe outputs (``runs/hand_pretrain_abc``; the estimator: ``runs/hand_keypoints_views_w32_cont2``
(width 32, three stages, refitted lifter) when it exists, else ``runs/hand_keypoints_views_w32_cont`` (two stages) when it exists, else ``runs/hand_keypoints_views_cont`` (the 12800-pose recipe) when it exists, else ``runs/hand_keypoints_cont`` = stage 2, else ``runs/hand_keypoints_full``) are copied into ``weights/`` and recorded in
``weights/MANIFEST.json``; the estimator is shipped (and scored) as a float16 copy (integer buffers kept).

    python -m evaluation.hand_shipped [--install]      # after the recipe commands of the README

With ``--install`` the lifter/location-map blend of the new estimator is first chosen on the validation
split (:func:`choose_lifter_weight`) and written into its metadata.
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
from shared.weights import add_manifest_entry, save_float16_copy  # noqa: E402

ENCODER = ROOT / "runs/hand_pretrain_abc/model.safetensors"
STAGE1 = ROOT / "runs/hand_keypoints_full/model.safetensors"    # apps/hand/configs/keypoints_full.yaml
STAGE2 = ROOT / "runs/hand_keypoints_cont/model.safetensors"    # apps/hand/configs/keypoints_full_cont.yaml (from stage 1)
VIEWS1 = ROOT / "runs/hand_keypoints_views/model.safetensors"   # apps/hand/configs/keypoints_views.yaml
VIEWS2 = ROOT / "runs/hand_keypoints_views_cont/model.safetensors"  # apps/hand/configs/keypoints_views_cont.yaml (from VIEWS1)
WIDE2 = ROOT / "runs/hand_keypoints_views_w32_cont/model.safetensors"  # keypoints_views_w32.yaml, then keypoints_views_w32_cont.yaml
WIDE3 = ROOT / "runs/hand_keypoints_views_w32_cont2/model.safetensors"  # then keypoints_views_w32_cont2.yaml (from WIDE2)
DATA = ROOT / "runs/hand_bench/data"
EVAL_SYNTH = ("cvsuite hand synth --out runs/hand_bench/data/test --sequences 8 --seed 13 --frames 16 --size 64; "
              "cvsuite hand synth --out runs/hand_bench/data/val --sequences 4 --seed 14 --frames 16 --size 64; ")
INSTALL = ("python -m evaluation.hand_shipped --install (chooses lifter_weight on the validation split, writes the "
           "float16 copy that is shipped, then scores that copy on the test split)")
FORMER_POOL_DATA = ("synthetic HanCo seed 12 (100 sequences x 16 frames x 8 cameras, 12800 images, a new pose every "
                    "frame: 1600 distinct poses) with apps/hand/augment.py; lifter: 3000 x 256 hands sampled from "
                    "the kinematic model")
FULL_STAGE1 = ("OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_full.yaml (in resumable pieces: "
               "repeat with train.resume=true until done); ")
# estimator run -> (its labelled pool under DATA: the image-blind controls come from it, the pool's synth command,
# the training commands, the manifest's train_data)
VIEWS_SYNTH = ("cvsuite hand synth --out runs/hand_bench/data/views_k1 --sequences 800 --seed 21 --frames 16 --size 64 "
               "--key-every 1 --cameras 1; ")
WIDE_TRAIN_DATA = ("synthetic HanCo seed 21 (800 sequences x 16 frames x 1 camera, 12800 images, one view per pose: 12800 "
                   "distinct poses) with apps/hand/augment.py; lifter: 3000 x 256 hands sampled from the kinematic model, "
                   "refitted (2000 x 256: half the estimator's own predictions on the 12800 training images, half sampled "
                   "hands; L1 + 4 x the Procrustes-aligned error)")
ESTIMATOR_RECIPES: dict[Path, tuple[str, str, str, str]] = {
    WIDE3: ("views_k1", VIEWS_SYNTH,
            "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views_w32.yaml; then from its result "
            "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views_w32_cont.yaml; then from that "
            "result OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views_w32_cont2.yaml (each in "
            "resumable pieces: repeat with train.resume=true until done; the second and the third end by refitting the "
            "lifter on the estimator's own 2-D predictions on its training images with the Procrustes-aligned loss; width "
            "32, the refit and the third stage were chosen on the validation split: evaluation/results/hand_width.jsonl, "
            "hand_lifter.jsonl); ",
            WIDE_TRAIN_DATA),
    WIDE2: ("views_k1", VIEWS_SYNTH,
            "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views_w32.yaml; then from its result "
            "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views_w32_cont.yaml (each in resumable "
            "pieces: repeat with train.resume=true until done; the second ends by refitting the lifter on the estimator's "
            "own 2-D predictions on its training images with the Procrustes-aligned loss; width 32 and the refit were "
            "chosen on the validation split: evaluation/results/hand_width.jsonl, hand_lifter.jsonl); ",
            WIDE_TRAIN_DATA),
    VIEWS2: ("views_k1", VIEWS_SYNTH,
             "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views.yaml; then from its result "
             "OMP_NUM_THREADS=1 cvsuite hand train --config apps/hand/configs/keypoints_views_cont.yaml (each in resumable "
             "pieces: repeat with train.resume=true until done; kept because its validation scores beat the former "
             "1600-pose recipe's: evaluation/results/hand_views.jsonl); ",
             "synthetic HanCo seed 21 (800 sequences x 16 frames x 1 camera, 12800 images, one view per pose: 12800 "
             "distinct poses) with apps/hand/augment.py; lifter: 3000 x 256 hands sampled from the kinematic model"),
    STAGE2: ("finetune_k1",
             "cvsuite hand synth --out runs/hand_bench/data/finetune_k1 --sequences 100 --seed 12 --frames 16 --size 64 "
             "--key-every 1; ",
             FULL_STAGE1 + "then stage 2 from its result: OMP_NUM_THREADS=1 cvsuite hand train --config "
             "apps/hand/configs/keypoints_full_cont.yaml (resumable pieces likewise; kept because its validation "
             "scores beat stage 1's: evaluation/results/hand_continue.jsonl); ",
             FORMER_POOL_DATA),
}
ESTIMATOR_RECIPES[STAGE1] = ESTIMATOR_RECIPES[STAGE2][:2] + (FULL_STAGE1, FORMER_POOL_DATA)
# the current recipe (one view per pose, 12800 poses; chosen on validation, README "more distinct poses") when its
# output exists, else the former one (1600 poses)
REGRESSOR = next((p for p in (WIDE3, WIDE2, VIEWS2, STAGE2, STAGE1) if p.is_file()), STAGE1)
POOL = DATA / ESTIMATOR_RECIPES[REGRESSOR][0]
FH_SPLIT = ROOT / "runs/hand_ship/fh_test"
SHIPPED_FORM = REGRESSOR.with_name("model_float16.safetensors")  # what is scored and installed: half the size


HELD_OUT_PHOTOS = ("coins", "page", "text", "moon", "clock", "colorwheel", "cell")  # never used as backgrounds


def presence(net: KeypointNet, test: HanCoImages) -> dict:
    """Hand score (presence head) on the test hands, on the bundled photos the negatives are cut from (whole
    image, padded as ``hand infer`` does), and on scikit-image photos never seen in training."""
    import skimage.data

    from apps.hand.infer import crop_square, predict
    from apps.hand.synth import PHOTOS
    from shared.data.images import bundled_photo

    def rgb(img: np.ndarray) -> np.ndarray:
        img = np.asarray(img)
        img = (img * 255).astype(np.uint8) if img.dtype != np.uint8 else img
        return np.repeat(img[..., None], 3, 2) if img.ndim == 2 else np.ascontiguousarray(img[..., :3])

    def scores_of(photos: list) -> list[float]:
        crops = np.stack([crop_square(rgb(p), None, 64)[0] for p in photos])
        return [round(float(v), 3) for v in predict(net, crops, with_confidence=True)[-1]["hand_score"]]

    hands = predict(net, test.images, with_confidence=True)[-1]["hand_score"]
    seen = scores_of([bundled_photo(n) for n in PHOTOS])
    unseen = scores_of([getattr(skimage.data, n)() for n in HELD_OUT_PHOTOS])
    return {"test_hands_mean": float(hands.mean()), "test_hands_frac_ge_0.5": float((hands >= 0.5).mean()),
            "training_photos": dict(zip(PHOTOS, seen)), "held_out_photos": dict(zip(HELD_OUT_PHOTOS, unseen)),
            "held_out_photos_frac_ge_0.5": float(np.mean(np.array(unseen) >= 0.5))}


def scores(weights: Path) -> dict:
    ds = HanCo(DATA / "test")
    test = HanCoImages(ds, ds.sequences, 64)
    net, _ = KeypointNet.from_file(weights)
    matched = evaluate_hanco(net, test, shuffled=True)
    pool = open_labelled(POOL, 64)
    controls = evaluate_controls(pool, np.arange(len(pool.samples)), test, right_hands=net.hands == "right")
    if not (FH_SPLIT / "evaluation_xyz.json").is_file():
        subprocess.run([sys.executable, "-m", "shared.cli", "hand", "synth", "--out", str(FH_SPLIT), "--sequences", "4",
                        "--seed", "13", "--frames", "12", "--size", "64", "--layout", "freihand"], check=True, cwd=ROOT)
    xyz, verts = predict_freihand(net, 64, FH_SPLIT)
    fh = FreiHAND(FH_SPLIT)
    official = evaluate(fh.xyz(), fh.verts(), xyz, verts)
    return {"test": matched, "controls": controls, "presence": presence(net, test), "width": net.arch["width"],
            "freihand": {k: official[k] for k in ("xyz_mean3d", "xyz_al_mean3d", "xyz_al_auc3d")}}


def install(result: dict) -> None:
    m, ctrl, fh = result["test"], result["controls"], result["freihand"]
    shutil.copyfile(SHIPPED_FORM, ROOT / "weights/hand_keypoints.safetensors")
    if ENCODER.is_file():  # the MoCo encoder is shipped on its own (the estimator's recipe starts from random init)
        shutil.copyfile(ENCODER, ROOT / "weights/hand_moco_bgswap_multiview.safetensors")
        pre = [json.loads(line) for line in open(ENCODER.parent / "metrics.jsonl")][-1]
        add_manifest_entry(
            "hand_moco_bgswap_multiview", ROOT / "weights/hand_moco_bgswap_multiview.safetensors",
            "cvsuite hand synth --out runs/hand_bench/data/pretrain --sequences 30 --seed 11 --frames 16 --size 64; "
            "OMP_NUM_THREADS=1 cvsuite hand pretrain --config apps/hand/configs/pretrain_abc.yaml (MoCo, positives a+b+c, "
            "shuffle-BN 4 groups, queue 4096 of both views' keys, m 0.99, 400 steps x 32 pairs, 64 px)",
            {"final_infonce_loss": round(pre["loss"], 3), "final_pos_cos": round(pre["pos_cos"], 3)},
            {"app": "hand", "arch": "resnet10_small width 16 + MLP projector 128-d (encoder.*, projector.*)",
             "train_data": "synthetic HanCo, cvsuite hand synth --sequences 30 --seed 11 --frames 16 --size 64 (3840 images)"})
    _, pool_synth, training, train_data = ESTIMATOR_RECIPES[REGRESSOR]
    add_manifest_entry(
        "hand_keypoints", ROOT / "weights/hand_keypoints.safetensors", pool_synth + EVAL_SYNTH + training + INSTALL,
        {"test_pa_mpjpe_mm": round(m["pa_mpjpe_mm"], 2), "test_pa_auc_0_50mm": round(m["pa_auc"], 4),
         "test_err2d_px_of_64": round(m["err2d_px"], 2), "test_pck2d_3.2px": round(m["pck2d"], 4),
         "test_shuffled_pa_mpjpe_mm": round(m["shuffled_pa_mpjpe_mm"], 2),
         "test_shuffled_err2d_px": round(m["shuffled_err2d_px"], 2),
         "lifter_weight": result["lifter_weight_choice"].get("chosen"),
         "aligned_mean_pose_pa_mpjpe_mm": round(ctrl["aligned_mean"]["pa_mpjpe_mm"], 2),
         "aligned_mean_pose_err2d_px": round(ctrl["aligned_mean"]["err2d_px"], 2),
         "fixed_pose_pa_mpjpe_mm": round(ctrl["fixed_pose"]["pa_mpjpe_mm"], 2),
         "hand_score_held_out_photos_frac_ge_0.5": round(result["presence"]["held_out_photos_frac_ge_0.5"], 3),
         "freihand_xyz_mean3d_cm": round(fh["xyz_mean3d"], 3), "freihand_xyz_al_mean3d_cm": round(fh["xyz_al_mean3d"], 3),
         "freihand_xyz_al_auc3d": round(fh["xyz_al_auc3d"], 4)},
        {"app": "hand", "arch": f"resnet10_small width {result['width']} + heatmap head (soft-argmax 2-D, presence) + kinematic-prior "
                                "lifter (2-D -> root-relative 3-D / ref bone), right hands (left ones mirrored), 64 px",
         "train_data": train_data,
         "eval_data": "held-out synthetic seed 13 (8 sequences, 1024 images: runs/hand_bench/data/test; left hands mirrored "
                      "for the right-hand estimator) and a FreiHAND-layout "
                      "split: cvsuite hand synth --out runs/hand_ship/fh_test --sequences 4 --seed 13 --frames 12 --size 64 "
                      "--layout freihand; cvsuite hand predict; cvsuite hand eval"})


def choose_lifter_weight(weights: Path) -> dict:
    """The recipe's last step, on the validation split only (seed 14, 512 images): the weight of the
    lifter's 3-D against the location maps' (both heads are trained) with the lowest PA-MPJPE is written
    into the weights' metadata (``lifter_weight``)."""
    from apps.hand.model import read_metadata
    from shared.weights import load_state_dict, save_safetensors

    ds = HanCo(DATA / "val")
    val = HanCoImages(ds, ds.sequences, 64)
    net, meta = KeypointNet.from_file(weights)
    if net.lifter is None:
        return {}
    scores_by_w = {}
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        net.lifter_weight = w
        scores_by_w[w] = evaluate_hanco(net, val)["pa_mpjpe_mm"]
    best = min(scores_by_w, key=scores_by_w.get)
    save_safetensors(load_state_dict(weights), weights, metadata={**read_metadata(weights), "lifter_weight": str(best)})
    return {"val_pa_mpjpe_mm_by_lifter_weight": scores_by_w, "chosen": best}


def main() -> None:
    torch.set_num_threads(1)
    choice = {}
    if "--install" in sys.argv:
        choice = choose_lifter_weight(REGRESSOR)
        save_float16_copy(REGRESSOR, SHIPPED_FORM)  # the shipped form is the one scored
    result = scores(SHIPPED_FORM if "--install" in sys.argv else ROOT / "weights/hand_keypoints.safetensors")
    result["lifter_weight_choice"] = choice
    out = ROOT / "evaluation/results/hand_shipped.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(result, indent=1, default=float))
    if "--install" in sys.argv:
        install(result)


if __name__ == "__main__":
    main()
