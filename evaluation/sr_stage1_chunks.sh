#!/bin/bash
# Stage 1 of the SR photos recipe for one config and the given seeds, in resumable chunks (issue 23, capacity
# pilot; apps/sr/README.md "Capacity pilot"): each chunk runs at most CHUNK_S seconds (default 1080 = 18 min;
# then SIGTERM), the next chunk resumes from the run's last checkpoint (every 500 steps;
# the engine's resume is exact), until the run has written sr_model.safetensors; then DONE is touched. A finished run
# is skipped. Every chunk's start/end time and step are appended to OUT/chunks.log (time per step).
#   evaluation/sr_stage1_chunks.sh CONFIG OUT_PREFIX "0 1" [key=value ...]
# e.g. evaluation/sr_stage1_chunks.sh apps/sr/configs/crl_x4_photos_w56.yaml runs/sr_crl_x4_photos_w56 "0 1"
# -> runs/sr_crl_x4_photos_w56_s0, _s1. Run it from the repository root.
set -uo pipefail
PY=${PYTHON:-python}
HEAVY=${HEAVY:-}   # optional wrapper that queues a job for a CPU slot (it gets HEAVY_MAX_S); empty = run directly
chunk=${CHUNK_S:-1080}
config=$1; prefix=$2; seeds=$3; overrides=("${@:4}")
step_of() { [ -f "$1/checkpoints/last.pt" ] && tail -1 "$1/metrics.jsonl" 2>/dev/null | sed 's/.*"step": \([0-9]*\).*/\1/' || echo 0; }
for seed in $seeds; do
  out=${prefix}_s${seed}
  [ -f "$out/DONE" ] && { echo "skip $out (done)"; continue; }
  while [ ! -f "$out/sr_model.safetensors" ]; do
    resume=()
    [ -f "$out/checkpoints/last.pt" ] && resume=(--resume)
    mkdir -p "$out"
    echo "start $(date -u +%FT%TZ) step $(step_of "$out")" >> "$out/chunks.log"
    HEAVY_MAX_S=$chunk $HEAVY timeout --signal=TERM "$chunk" "$PY" -m shared.cli sr train --config "$config" train.seed="$seed" --out "$out" \
      "${resume[@]}" train.progress=false "${overrides[@]}"
    rc=$?
    echo "end $(date -u +%FT%TZ) step $(step_of "$out") rc $rc" >> "$out/chunks.log"
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 143 ]; then echo "chunk failed (rc $rc)" >&2; exit $rc; fi
  done
  touch "$out/DONE"
done
