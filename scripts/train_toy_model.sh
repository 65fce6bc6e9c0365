#!/usr/bin/env bash
# Train the built-in toy model in stretches that survive a replaced machine (rerun to go on):
#   1. images only (omni/configs/train/toy-images.yaml);
#   2. video alone, one object, every scene in lanes (toy-lanes.yaml), where the motion word is learned;
#   3. video alone, half the scenes drawn freely (toy-video.yaml), where the word carries over and shape firms;
#   4. the same cooled down, the learning rate falling to 2% (toy-cool.yaml), where the outline settles;
#   5. free-scene video with circles and still objects drawn twice as often (toy-motion.yaml);
#   6. the conditioned video tasks: motion control on keypoint paths, and continuing a clip (toy-control.yaml);
#   7. the tasks with sound, the video expert at a tenth of the rate (toy-sound.yaml), which keeps the picture;
#   8. every task (toy.yaml), open-ended.
# Stages 1-7 train to their configs' step counts, each from the export of the one before; stage 8 goes on
# from stage 7's export, or from the shipped model (omni/assets/toy) when no run folder exists (the shipped
# model has been through stages 1-7). One call trains for MINUTES of wall time (default 60) in all, across
# stages; stage 7's export is what scripts/install_toy_model.py installs as omni/assets/toy.
# Runs live outside the work tree: OMNI_RUNS (default ~/.cache/omni/runs). The codecs need no training.
#
# --gpu OUT: stages 1-7 from scratch on one CUDA GPU in 6.5 minutes of training (GPU_IMAGE_MINUTES,
# GPU_LANES_MINUTES, GPU_FREE_MINUTES, GPU_COOL_MINUTES, GPU_MOTION_MINUTES, GPU_CONTROL_MINUTES and
# GPU_SOUND_MINUTES, default 2, 1.5, 1, 0.5, 0.5, 0.5 and 0.5; the cooling stage runs its 500 steps, at most
# its minutes), with batches sized for the GPU (the toy step is launch-bound at the CPU's batches), bf16
# autocast and a data worker per spare core; stage 7's model is installed in OUT (fp16, every file under
# 16 MB) and scored into OUT/eval.json (GPU_EVAL_SEEDS scenes a capability, default 16).
#
# Usage: scripts/train_toy_model.sh [MINUTES]
#        scripts/train_toy_model.sh --gpu OUT
#        DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni
python=.venv/bin/python
runs=${OMNI_RUNS:-$HOME/.cache/omni/runs}
stages=(toy-images toy-lanes toy-video toy-cool toy-motion toy-control toy-sound)   # then toy, open-ended
run() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
has_checkpoint() { compgen -G "$1/step_*" > /dev/null; }
newest_step() {   # the newest checkpoint's step in run folder $1 (0 when none)
  local step=0 dir
  for dir in "$1"/step_*; do
    [ -d "$dir" ] || continue
    dir=${dir##*/step_}
    (( 10#$dir > step )) && step=$((10#$dir))
  done
  echo "$step"
}
declare -A stage_steps=()
finished() {   # stage $1 has trained to its config's step count
  if [ ${#stage_steps[@]} -eq 0 ]; then   # read once, by the loader itself (bases and all)
    local line
    for line in $($python -c 'import sys
from omni.train.config import load_train_config
for name in sys.argv[1:]:
    print(name, load_train_config("omni/configs/train/" + name + ".yaml").steps, sep="=")' "${stages[@]}"); do
      stage_steps[${line%%=*}]=${line#*=}
    done
  fi
  [ "$(newest_step "$runs/$1")" -ge "${stage_steps[$1]}" ]
}

if [ "${1:-}" = "--gpu" ]; then
  out=${2:?"usage: scripts/train_toy_model.sh --gpu OUT (the folder the trained model is written to)"}
  workers=$(( $(nproc) > 4 ? $(nproc) - 2 : 2 ))
  gpu=(--no-resume --set parallel.mixed_precision=bf16 --set data.num_workers="$workers"
       --set checkpoint.export_every=100000)
  init=()
  for stage in "${stages[@]}"; do
    steps=(--set steps=100000)   # a stage trains for its minutes, except the cooling, whose rate falls by step
    case $stage in
      toy-images) batch=256; minutes=${GPU_IMAGE_MINUTES:-2} ;;
      toy-lanes) batch=64; minutes=${GPU_LANES_MINUTES:-1.5} ;;
      toy-video) batch=64; minutes=${GPU_FREE_MINUTES:-1} ;;
      toy-cool) batch=64; minutes=${GPU_COOL_MINUTES:-0.5}; steps=() ;;
      toy-motion) batch=64; minutes=${GPU_MOTION_MINUTES:-0.5} ;;
      toy-control) batch=64; minutes=${GPU_CONTROL_MINUTES:-0.5} ;;
      toy-sound) batch=64; minutes=${GPU_SOUND_MINUTES:-0.5} ;;
    esac
    run $omni train --config "$stage" --set checkpoint.dir="$runs/$stage-gpu" "${gpu[@]}" "${steps[@]}" \
      "${init[@]}" --set data.batch_size="$batch" --minutes "$minutes"
    init=(--set model.preset=null --set model.init="$runs/$stage-gpu/export")
  done
  run $python scripts/install_toy_model.py "$runs/toy-sound-gpu/export" "$out"
  run $omni eval toyworld --model "$out" --seeds "${GPU_EVAL_SEEDS:-16}" --out "$out/eval.json"
  exit 0
fi

minutes=${1:-60}
if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v m="$minutes" 'BEGIN { exit !(m > 0) }'; then
  echo "usage: scripts/train_toy_model.sh [MINUTES]: MINUTES is a positive number of minutes, got '$minutes'" >&2
  exit 2
fi
deadline=$(awk -v now="$(date +%s)" -v m="$minutes" 'BEGIN { printf "%d", now + 60 * m }')
minutes_left() { awk -v now="$(date +%s)" -v end="$deadline" 'BEGIN { printf "%.2f", (end - now) / 60 }'; }
enough_left() { [ -n "${DRY_RUN:-}" ] || awk -v m="$(minutes_left)" 'BEGIN { exit !(m >= 1) }'; }
video=$runs/toy
start=()
if ! has_checkpoint "$video"; then
  begun=""
  for stage in "${stages[@]}"; do has_checkpoint "$runs/$stage" && begun=1; done
  if [ -e omni/assets/toy/model_index.json ] && [ -z "$begun" ]; then
    init=omni/assets/toy                      # a new machine: go on from the shipped model
  else
    from=()
    for stage in "${stages[@]}"; do
      if ! finished "$stage"; then
        enough_left || exit 0
        run $omni train --config "$stage" --set checkpoint.dir="$runs/$stage" "${from[@]}" --minutes "$(minutes_left)"
        finished "$stage" || [ -n "${DRY_RUN:-}" ] || exit 0   # not finished yet: the next call goes on
      fi
      from=(--set model.preset=null --set model.init="$runs/$stage/export")
    done
    init=$runs/${stages[-1]}/export
  fi
  start=(--set model.preset=null --set model.init="$init")
fi
enough_left || exit 0
run $omni train --config toy --set checkpoint.dir="$video" "${start[@]}" --minutes "$(minutes_left)"
