#!/bin/bash
# Stage 2 or 3 of the SR photos recipe (issue 23; apps/sr/README.md) for the given arms and seeds, resumable:
#   evaluation/sr_stage_runs.sh STAGE "crl ablation" "0 1 2" [TAG [key=value ...]]
# The shipped stages (both arms, seeds 0 1 2):
#   evaluation/sr_stage_runs.sh 2 "crl ablation" "0 1 2"
#   evaluation/sr_stage_runs.sh 3 "crl ablation" "0 1 2" _mild35 loss.ssim_weight=0 'data.kind_probs=[0.45,0.35,0.10,0.10]'
# Each run continues the previous stage's runs/sr_<arm>_x4_<prev>_s<S>/sr_model.safetensors (stage 1 = the
# `photos` runs) with apps/sr/configs/<arm>_x4_stage<STAGE>.yaml, train.seed=S and the optional overrides (e.g.
# loss.ssim_weight=0.5 for a stage-3 pilot), into runs/sr_<arm>_x4_stage<STAGE><TAG>_s<S>. A finished run (DONE) is
# skipped; an interrupted one continues from its checkpoint (--resume). Run it from the repository root.
set -euo pipefail
PY=${PYTHON:-python}
stage=$1
case $stage in
  2) previous=photos ;;
  3) previous=stage2 ;;
  *) echo "sr_stage_runs.sh: STAGE must be 2 or 3, got '$stage'" >&2; exit 2 ;;
esac
tag=${4:-}
overrides=("${@:5}")
for seed in $3; do
  for arm in $2; do
    out=runs/sr_${arm}_x4_stage${stage}${tag}_s${seed}
    [ -f "$out/DONE" ] && { echo "skip $out (done)"; continue; }
    resume=()
    [ -f "$out/checkpoints/last.pt" ] && resume=(--resume)
    "$PY" -m shared.cli sr train --config "apps/sr/configs/${arm}_x4_stage${stage}.yaml" train.seed="$seed" \
      --init-from "runs/sr_${arm}_x4_${previous}_s${seed}/sr_model.safetensors" --out "$out" "${resume[@]}" \
      train.progress=false "${overrides[@]}"
    touch "$out/DONE"
  done
done
