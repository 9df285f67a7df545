#!/bin/bash
# Stage 3 of the SR photos recipe (issue 23, third round; apps/sr/README.md "Stage 3 pilot") for the given arms and
# seeds, resumable:
#   evaluation/sr_stage3_runs.sh "crl ablation" "0 1 2" [TAG [key=value ...]]
# The shipped stage 3 (both arms, seeds 0 1 2):
#   evaluation/sr_stage3_runs.sh "crl ablation" "0 1 2" _mild35 loss.ssim_weight=0 'data.kind_probs=[0.45,0.35,0.10,0.10]'
# Each run continues runs/sr_<arm>_x4_stage2_s<S>/sr_model.safetensors (stage 2, apps/sr/README.md) with
# apps/sr/configs/<arm>_x4_stage3.yaml, train.seed=S (and the optional overrides, e.g. loss.ssim_weight=0 for the
# L1-only control of the pilot), into runs/sr_<arm>_x4_stage3<TAG>_s<S>. A finished run (DONE) is skipped; an
# interrupted one continues from its checkpoint (--resume). Run it from the repository root.
set -euo pipefail
PY=${PYTHON:-python}
tag=${3:-}
overrides=("${@:4}")
for seed in $2; do
  for arm in $1; do
    out=runs/sr_${arm}_x4_stage3${tag}_s${seed}
    [ -f "$out/DONE" ] && { echo "skip $out (done)"; continue; }
    resume=()
    [ -f "$out/checkpoints/last.pt" ] && resume=(--resume)
    "$PY" -m shared.cli sr train --config "apps/sr/configs/${arm}_x4_stage3.yaml" train.seed="$seed" \
      --init-from "runs/sr_${arm}_x4_stage2_s${seed}/sr_model.safetensors" --out "$out" "${resume[@]}" \
      train.progress=false "${overrides[@]}"
    touch "$out/DONE"
  done
done
