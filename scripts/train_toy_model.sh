#!/usr/bin/env bash
# Train the built-in toy model in stretches that survive a replaced machine (rerun to go on):
#   1. images only (omni/configs/train/toy-images.yaml), to its step count;
#   2. every task (omni/configs/train/toy.yaml), from stage 1's export, or from the shipped model
#      (omni/assets/toy) when no run folder exists, for MINUTES of wall time (default 60);
#   3. its export is what scripts/install_toy_model.py installs as omni/assets/toy.
# Runs live outside the work tree: OMNI_RUNS (default ~/.cache/omni/runs). The codecs need no training.
#
# --gpu OUT: the same two stages from scratch on one CUDA GPU in 7 minutes of training (stage 1 for
# GPU_IMAGE_MINUTES, default 2.5, stage 2 for GPU_VIDEO_MINUTES, default 4.5), with batches sized for the GPU
# (the toy step is launch-bound at the CPU's batches), bf16 autocast and a data worker per spare core; the
# model is installed in OUT (fp16, every file under 16 MB) and scored into OUT/eval.json (GPU_EVAL_SEEDS
# scenes a capability, default 16).
#
# Usage: scripts/train_toy_model.sh [MINUTES]
#        scripts/train_toy_model.sh --gpu OUT
#        DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni
python=.venv/bin/python
runs=${OMNI_RUNS:-$HOME/.cache/omni/runs}
run() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
has_checkpoint() { compgen -G "$1/step_*" > /dev/null; }

if [ "${1:-}" = "--gpu" ]; then
  out=${2:?"usage: scripts/train_toy_model.sh --gpu OUT (the folder the trained model is written to)"}
  workers=$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))
  gpu=(--set parallel.mixed_precision=bf16 --set data.num_workers="$workers")
  images=$runs/toy-images-gpu
  video=$runs/toy-gpu
  run $omni train --config toy-images --no-resume --set checkpoint.dir="$images" "${gpu[@]}" \
    --set data.batch_size=256 --set steps=100000 --set checkpoint.export_every=100000 \
    --minutes "${GPU_IMAGE_MINUTES:-2.5}"
  run $omni train --config toy --no-resume --set checkpoint.dir="$video" "${gpu[@]}" \
    --set model.preset=null --set model.init="$images/export" --set data.batch_size=64 \
    --set checkpoint.export_every=100000 --minutes "${GPU_VIDEO_MINUTES:-4.5}"
  run $python scripts/install_toy_model.py "$video/export" "$out"
  run $omni eval toyworld --model "$out" --seeds "${GPU_EVAL_SEEDS:-16}" --out "$out/eval.json"
  exit 0
fi

minutes=${1:-60}
images=$runs/toy-images
video=$runs/toy
if ! has_checkpoint "$video"; then
  if [ -e omni/assets/toy/model_index.json ] && ! has_checkpoint "$images"; then
    init=omni/assets/toy                      # a new machine: go on from the shipped model
  else
    run $omni train --config toy-images --set checkpoint.dir="$images" --minutes "$minutes"
    [ -e "$images/export/model_index.json" ] || [ -n "${DRY_RUN:-}" ] || exit 0   # stage 1 not finished yet
    init=$images/export
  fi
  start=(--set model.preset=null --set model.init="$init")
else
  start=()
fi
run $omni train --config toy --set checkpoint.dir="$video" "${start[@]}" --minutes "$minutes"
