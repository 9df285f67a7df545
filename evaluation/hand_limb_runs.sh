#!/bin/bash
# Stage 4 with limb maps (apps/hand/configs/keypoints_views_w32_cont3_bones.yaml) for the seed-0 and seed-1 chains,
# then the validation scores of each (evaluation/results/hand_limbs.jsonl). Resumable: a finished run is not
# retrained, a run stopped half-way continues from its last checkpoint, a scored run is not scored again. Each
# step is one job through /work/bin/heavy (one CPU slot, one thread), one at a time:
#   bash evaluation/hand_limb_runs.sh [0] [1]
set -u
cd "$(dirname "$0")/.."
PY=${PY:-/work/main/.venv/bin/python}
HEAVY=${HEAVY:-/work/bin/heavy}
CFG=apps/hand/configs/keypoints_views_w32_cont3_bones.yaml
RESULTS=evaluation/results/hand_limbs.jsonl
seeds=("$@"); [ ${#seeds[@]} -eq 0 ] && seeds=(0 1)
for seed in "${seeds[@]}"; do
  if [ "$seed" = 0 ]; then out=runs/hand_keypoints_views_w32_cont3_bones; extra=()
  else out=runs/hand_keypoints_views_w32_cont3_bones_s1
       extra=(init=runs/hand_keypoints_views_w32_cont2_s1/model.safetensors train.seed=5 train.out_dir=$out); fi
  if [ ! -f "$out/model.safetensors" ]; then
    resume=(); [ -f "$out/checkpoints/last.pt" ] && resume=(train.resume=true)
    echo "$(date -u +%T) train seed $seed ${resume[*]}"
    $HEAVY "$PY" -m shared.cli hand train --config "$CFG" "${extra[@]}" "${resume[@]}" || { echo "train seed $seed stopped"; exit 1; }
  fi
  if ! grep -qs "\"source\": \"$out/model.safetensors\"" "$RESULTS"; then
    echo "$(date -u +%T) score seed $seed"
    $HEAVY "$PY" -m evaluation.hand_continue --weights "$out/model.safetensors" --results "$RESULTS" \
      --label "width 32, stage 4 WITH limb maps (wbone 1), chain seed $seed, lifter refitted" || exit 1
  fi
done
echo "$(date -u +%T) done"
