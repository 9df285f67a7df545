#!/bin/bash
# Stage 4 of the width-32 hand recipe with ONE design change (the matched control: keypoints_views_w32_cont3.yaml's
# runs, same seeds), for the seed-0 and seed-1 chains, then the validation scores of each
# (evaluation/results/hand_limbs.jsonl). VARIANT = bones (keypoints_views_w32_cont3_bones.yaml: limb maps) or s2
# (keypoints_views_w32_cont3_s2.yaml: stride-2 heatmaps). Resumable: a finished run is not retrained, a run stopped
# half-way (e.g. by the 20-minute job limit) continues from its last checkpoint, a scored run is not scored again.
# Each step is one job, one at a time; HEAVY= a wrapper that runs a command under a job limit (e.g. one CPU
# slot, one thread, 20 minutes), empty = run it directly; PY = the project's Python:
#   [PY=.venv/bin/python] [HEAVY=...] bash evaluation/hand_stage4_runs.sh VARIANT [0] [1]
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}
HEAVY=${HEAVY:-}
variant=${1:?usage: hand_stage4_runs.sh bones|s2 [SEED ...]}; shift
case "$variant" in
  bones) what="limb maps (wbone 1)";;
  s2) what="stride-2 heatmaps";;
  *) echo "unknown variant $variant (bones or s2)"; exit 2;;
esac
CFG=apps/hand/configs/keypoints_views_w32_cont3_$variant.yaml
RESULTS=evaluation/results/hand_limbs.jsonl
seeds=("$@"); [ ${#seeds[@]} -eq 0 ] && seeds=(0 1)
for seed in "${seeds[@]}"; do
  if [ "$seed" = 0 ]; then out=runs/hand_keypoints_views_w32_cont3_$variant; extra=()
  else out=runs/hand_keypoints_views_w32_cont3_${variant}_s1
       extra=(init=runs/hand_keypoints_views_w32_cont2_s1/model.safetensors train.seed=5 train.out_dir=$out); fi
  done_run() {  # the run's file exists AND carries the lifter refit (a job stopped during the refit leaves it without)
    [ -f "$out/model.safetensors" ] && "$PY" -c "import sys; from apps.hand.model import read_metadata; \
sys.exit(0 if 'lifter_refit' in read_metadata(sys.argv[1]) else 1)" "$out/model.safetensors"
  }
  for piece in 1 2 3 4; do
    done_run && break
    resume=(); [ -f "$out/checkpoints/last.pt" ] && resume=(train.resume=true)
    echo "$(date -u +%T) train $variant seed $seed piece $piece ${resume[*]}"
    $HEAVY "$PY" -m shared.cli hand train --config "$CFG" "${extra[@]}" "${resume[@]}" || echo "$(date -u +%T) piece $piece stopped"
  done
  done_run || { echo "seed $seed not finished"; exit 1; }
  if ! grep -qs "\"source\": \"$out/model.safetensors\"" "$RESULTS"; then
    echo "$(date -u +%T) score $variant seed $seed"
    $HEAVY "$PY" -m evaluation.hand_continue --weights "$out/model.safetensors" --results "$RESULTS" \
      --label "width 32, stage 4 WITH $what, chain seed $seed, lifter refitted" || exit 1
  fi
done
echo "$(date -u +%T) done"
