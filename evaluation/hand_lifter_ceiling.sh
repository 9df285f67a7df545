#!/bin/bash
# The lifter's ceiling on exact validation 2-D and a longer-pretrained lifter for the shipped estimator
# (apps/hand/README.md, "(g)"). Each stage is one job (run it under your CPU-slot wrapper, if any); a stage whose lifter
# fit has --checkpoint/--stop-after-min resumes when run again. Lines: evaluation/results/hand_lifter_ceiling*.jsonl.
#   bash evaluation/hand_lifter_ceiling.sh STAGE [SEED]
set -euo pipefail
PY=${PY:-python}
stage=$1; seed=${2:-0}
out=runs/hand_lifter_ceiling; mkdir -p $out
lifter() {  # lifter TAG STEPS WIDTH BLOCKS BATCH [more hand_diag args]: a right-hand lifter on sampled hands, scored on exact val 2-D
  local tag=$1 steps=$2 width=$3 blocks=$4 batch=$5; shift 5
  $PY -m evaluation.hand_diag lifter --left 0 --steps $steps --lifter-width $width --blocks $blocks --lifter-batch $batch \
    --seed $seed --curve --sweep 0 1 2 4 6 8 --tag ${tag}_s$seed --save $out/${tag}_s$seed.pt \
    --checkpoint $out/${tag}_s$seed.ckpt --stop-after-min 18 --log evaluation/results/hand_lifter_ceiling.jsonl "$@"
}
refit() {  # refit LIFTER.pt: the shipped refit (L1 + 4 x PA, half sampled hands, 2000 steps) from it, refit seeds 0 and 1
  $PY -m evaluation.hand_lifter compare --cache runs/hand_lifter/cache_s3.npz --variants refit_mix0.5_pa4 --pretrained "$1" \
    --results evaluation/results/hand_lifter_ceiling_refit.jsonl
}
case $stage in
  base3k) lifter w512b2_3k 3000 512 2 256 ;;                       # the estimator recipe's pretraining (lifter_steps 3000)
  cache)  # the shipped CNN (stage-3 seed-0 run file) on its 12800 training images and the validation split; references
    $PY -m evaluation.hand_lifter cache --weights runs/hand_keypoints_views_w32_cont2/model.safetensors \
      --pool runs/hand_bench/data/views_k1 --out runs/hand_lifter/cache_s3.npz
    $PY -m evaluation.hand_lifter compare --cache runs/hand_lifter/cache_s3.npz --reference \
      --results evaluation/results/hand_lifter_ceiling_refit.jsonl ;;
  refit3k) refit $out/w512b2_3k_s$seed.pt ;;                       # control: the recipe's 3000-step lifter + the same refit
  long30k) lifter w512b2_30k 30000 512 2 256 ;;
  long100k) lifter w512b2_100k 100000 512 2 256 ;;                 # several jobs (resumes)
  long60k) lifter w512b2_60k 60000 512 2 256 ;;                   # two jobs (run twice: the second resumes)
  base10k) lifter w512b2_10k 10000 512 2 256 ;;                   # the reference for the wider / deeper lifters
  wide10k) lifter w1024b2_10k 10000 1024 2 256 ;;
  deep10k) lifter w512b4_10k 10000 512 4 256 ;;
  both3k) lifter w512b2_3k_both 3000 512 2 256 --left 0.5 ;;       # both hands (no mirroring): the right-hand convention's reason
  noisy) bash $0 noisy50 $seed; bash $0 noisy25 $seed; bash $0 base10k $seed; bash $0 both3k $seed ;;
  noisy25) lifter w512b2_10k_n25 10000 512 2 256 --noise 0.25 ;;   # 2-D noise sigma 0-0.375 x RMS radius (0-4 px) in training
  noisy50) lifter w512b2_10k_n50 10000 512 2 256 --noise 0.5 ;;    # 0-0.75 x RMS radius (0-8 px)
  noisy50long) lifter w512b2_20k_n50 20000 512 2 256 --noise 0.5 ;;
  refit) refit "$3" ;;                                             # refit SEED PATH: any saved lifter
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
