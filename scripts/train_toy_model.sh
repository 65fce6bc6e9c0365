#!/usr/bin/env bash
# Train the built-in toy model in stretches that survive a replaced machine (rerun to go on):
#   1. images only (omni/configs/train/toy-images.yaml), to its step count;
#   2. every task (omni/configs/train/toy.yaml), from stage 1's export, or from the shipped model
#      (omni/assets/toy) when no run folder exists, for MINUTES of wall time (default 60);
#   3. its export is what scripts/install_toy_model.py installs as omni/assets/toy.
# Runs live outside the work tree: OMNI_RUNS (default ~/.cache/omni/runs). The codecs need no training.
# Usage: scripts/train_toy_model.sh [MINUTES]        DEVICE=cuda on a GPU (default auto)
#        DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni
runs=${OMNI_RUNS:-$HOME/.cache/omni/runs}
minutes=${1:-60}
run() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
has_checkpoint() { compgen -G "$1/step_*" > /dev/null; }

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
