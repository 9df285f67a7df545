#!/bin/bash
# Stage 2, 3 or 4 of the SR photos recipe (issue 23; apps/sr/README.md) for the given arms and seeds, resumable:
#   evaluation/sr_stage_runs.sh STAGE "crl ablation" "0 1 2" [TAG [key=value ...]]
# The shipped stages (both arms, seeds 0 1 2):
#   evaluation/sr_stage_runs.sh 2 "crl ablation" "0 1 2"
#   evaluation/sr_stage_runs.sh 3 "crl ablation" "0 1 2" _mild35 loss.ssim_weight=0 'data.kind_probs=[0.45,0.35,0.10,0.10]'
# The stage-4 validation pilot (fourth round): STAGE 4 = + the new photos, 4_control = the same 20 photos:
#   evaluation/sr_stage_runs.sh 4_control "crl" "0 1";  evaluation/sr_stage_runs.sh 4 "crl" "0 1"
# Each run continues the previous stage's runs/sr_<arm>_x4_<prev>_s<S>/sr_model.safetensors (stage 1 = the
# `photos` runs, stage 3 = the shipped `stage3_mild35` runs) with apps/sr/configs/<arm>_x4_stage<STAGE>.yaml,
# train.seed=S (S+40 for stage 4: fresh patch draws, not a replay of stage 3's) and the optional overrides (e.g.
# loss.ssim_weight=0.5 for a stage-3 pilot), into runs/sr_<arm>_x4_stage<STAGE><TAG>_s<S>. A finished run (DONE) is
# skipped; an interrupted one continues from its checkpoint (--resume). Run it from the repository root.
set -euo pipefail
PY=${PYTHON:-python}
stage=$1
seed_offset=0
case $stage in
  2) previous=photos ;;
  3) previous=stage2 ;;
  4|4_control) previous=stage3_mild35; seed_offset=40 ;;
  *) echo "sr_stage_runs.sh: STAGE must be 2, 3, 4 or 4_control, got '$stage'" >&2; exit 2 ;;
esac
tag=${4:-}
overrides=("${@:5}")
for seed in $3; do
  for arm in $2; do
    out=runs/sr_${arm}_x4_stage${stage}${tag}_s${seed}
    [ -f "$out/DONE" ] && { echo "skip $out (done)"; continue; }
    resume=()
    [ -f "$out/checkpoints/last.pt" ] && resume=(--resume)
    "$PY" -m shared.cli sr train --config "apps/sr/configs/${arm}_x4_stage${stage}.yaml" train.seed="$((seed + seed_offset))" \
      --init-from "runs/sr_${arm}_x4_${previous}_s${seed}/sr_model.safetensors" --out "$out" "${resume[@]}" \
      train.progress=false "${overrides[@]}"
    touch "$out/DONE"
  done
done
