#!/bin/bash
# Stage 2 of the SR photos recipe for the given arms and seeds (issue 23), resumable:
#   evaluation/sr_stage2_runs.sh "crl ablation" "0 1 2"
# Each run continues runs/sr_<arm>_x4_photos_s<S>/sr_model.safetensors (stage 1, apps/sr/README.md) with
# apps/sr/configs/<arm>_x4_stage2.yaml, train.seed=S, into runs/sr_<arm>_x4_stage2_s<S>. A finished run (DONE)
# is skipped; an interrupted one continues from its checkpoint (--resume). Run it from the repository root.
set -euo pipefail
PY=${PYTHON:-python}
for seed in $2; do
  for arm in $1; do
    out=runs/sr_${arm}_x4_stage2_s${seed}
    [ -f "$out/DONE" ] && { echo "skip $out (done)"; continue; }
    resume=()
    [ -f "$out/checkpoints/last.pt" ] && resume=(--resume)
    "$PY" -m shared.cli sr train --config "apps/sr/configs/${arm}_x4_stage2.yaml" train.seed="$seed" \
      --init-from "runs/sr_${arm}_x4_photos_s${seed}/sr_model.safetensors" --out "$out" "${resume[@]}" train.progress=false
    touch "$out/DONE"
  done
done
