#!/usr/bin/env bash
# Reproduce the built-in toy model end to end (every stage resumes where it stopped when rerun):
#   1. codecs (video VAE, audio VAE, vocoder) trained on the toy world, as a curriculum of short runs
#   2. 3000 toy-world clips encoded into latent shards
#   3. the transformer trained on every task (configs/train/toy.yaml, resumable)
#   4. the EMA export installed into the package as omni/assets/toy (fp16)
# Usage: scripts/train_toy_model.sh   (rerun it to continue a stopped run: finished codec runs are skipped,
# and the one in progress goes on from its last saved step; times in BENCHMARKS.md)
# DEVICE picks where every stage runs (default auto: a CUDA GPU when present, else the CPU); WORKERS
# processes render the codecs' next clips meanwhile (default 0; on a GPU give it several, e.g. WORKERS=8).
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni
device=${DEVICE:-auto}
workers=${WORKERS:-0}
# DRY_RUN=1 prints every command instead of running it (the tests check the recipe's flags that way).
run() { if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi; }
finished() { [ -e "$1/codecs_report.json" ]; }  # a codec run writes its report last

# 1. Codecs. Each run continues the last one's video VAE; the audio VAE and vocoder are trained in the
#    first run and copied into every later one. Every run's folder stays (its codecs_report.json records
#    its settings and held-out PSNR); the last one is checkpoints/toy-codecs.
#    a. all three codecs; the video VAE's decoder sees sampled latents and the foreground weighs 20x (colours
#       and layout first); three in four vocoder segments contain a loud frame (a beep)
finished checkpoints/toy-codecs-warmup ||
run $omni codecs --preset toy --out checkpoints/toy-codecs-warmup --device "$device" --workers "$workers" \
  --video-steps 450 --video-latents sample --audio-steps 2000 --vocoder-steps 7000 --vocoder-focus 0.75 \
  --vocoder-lr 4e-4
#    The rest: deterministic latents, foreground weight 5.
#    b. 9-frame clips; c. 33-frame clips (the causal decoder drifts past the longest clip it was trained
#       on); d. single-frame steps mixed in, for the first-frame path that images and clip starts go through
#    e. the decoder alone with a 3 px margin around the foreground weighing as foreground, so both sides of
#       an edge weigh the same (the decoder stops growing objects)
#    f-j. encoder and decoder with that margin: the encoder learns latents that keep small squares' corners
#       and triangles' tips (the codec ceiling's shape score 67% -> 83%)
margin="--foreground-margin 3 --image-every 4"
previous=checkpoints/toy-codecs-warmup
for run in "9f --video-steps 1200 --video-frames 9 --video-batch 4 --video-lr 1e-3" \
           "33f --video-steps 800 --video-frames 33 --video-batch 2 --video-lr 5e-4" \
           "single --video-steps 600 --video-frames 33 --video-batch 2 --video-lr 3e-4 --image-every 4" \
           "margin --video-steps 600 --video-frames 9 --video-batch 4 --video-lr 3e-4 --video-train decoder $margin" \
           "m9f --video-steps 1000 --video-frames 9 --video-batch 4 --video-lr 5e-4 $margin" \
           "m33f --video-steps 500 --video-frames 33 --video-batch 2 --video-lr 3e-4 $margin" \
           "m9f2 --video-steps 1000 --video-frames 9 --video-batch 4 --video-lr 5e-4 $margin" \
           "m9f3 --video-steps 1500 --video-frames 9 --video-batch 4 --video-lr 5e-4 $margin" \
           "final --video-steps 500 --video-frames 33 --video-batch 2 --video-lr 3e-4 $margin"; do
  read -r name args <<< "$run"
  out=checkpoints/toy-codecs-$name
  if [ "$name" = final ]; then out=checkpoints/toy-codecs; fi
  if finished "$out"; then previous=$out; continue; fi
  run mkdir -p "$out/stages"
  for stage in audio_vae vocoder; do
    [ -e "$out/stages/$stage" ] || run cp -r "$previous/stages/$stage" "$out/stages/"
  done
  # shellcheck disable=SC2086
  run $omni codecs --preset toy --out "$out" --device "$device" --workers "$workers" $args --video-latents mode \
    --foreground-weight 5 --video-init "$previous/stages/vae"
  previous=$out
done

# 2-4. Shards, the transformer, the installed model.
run $omni prepare --toyworld --count 3000 --seed 0 --model checkpoints/toy-codecs --out data/toy-shards \
  --device "$device"
run $omni train --config toy
run .venv/bin/python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy
