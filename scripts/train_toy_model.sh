#!/usr/bin/env bash
# Reproduce the built-in toy model end to end (every stage resumes where it stopped when rerun):
#   1. codecs (video VAE, audio VAE, vocoder) trained on the toy world, as a curriculum of short runs
#   2. 3000 toy-world clips encoded into latent shards
#   3. the transformer trained on every task (configs/train/toy.yaml, resumable)
#   4. the EMA export installed into the package as omni/assets/toy (fp16)
# Usage: scripts/train_toy_model.sh   (rerun it to continue a stopped run; times in the model card)
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni

# 1. Codecs. Each run continues the last one's video VAE; the audio VAE and vocoder are trained in the
#    first run and copied into every later one.
#    a. all three codecs; the video VAE's decoder sees sampled latents and the foreground weighs 20x (colours
#       and layout first); three in four vocoder segments contain a loud frame (a beep)
$omni codecs --preset toy --out checkpoints/toy-codecs-warmup --video-steps 450 --video-latents sample \
  --audio-steps 2000 --vocoder-steps 7000 --vocoder-focus 0.75 --vocoder-lr 4e-4
#    b. deterministic latents, milder foreground weight, 9-frame clips
#    c. full 33-frame clips (the causal decoder drifts past the longest clip it was trained on)
#    d. single-frame steps mixed in, for the first-frame path that images and clip starts go through
previous=checkpoints/toy-codecs-warmup
for run in "9f --video-steps 1200 --video-frames 9 --video-batch 4 --video-lr 1e-3" \
           "33f --video-steps 800 --video-frames 33 --video-batch 2 --video-lr 5e-4" \
           "final --video-steps 600 --video-frames 33 --video-batch 2 --video-lr 3e-4 --image-every 4"; do
  read -r name args <<< "$run"
  out=checkpoints/toy-codecs-$name
  if [ "$name" = final ]; then out=checkpoints/toy-codecs; fi
  mkdir -p "$out/stages"
  for stage in audio_vae vocoder; do
    [ -e "$out/stages/$stage" ] || cp -r "$previous/stages/$stage" "$out/stages/"
  done
  # shellcheck disable=SC2086
  $omni codecs --preset toy --out "$out" $args --video-latents mode --foreground-weight 5 \
    --video-init "$previous/stages/vae"
  previous=$out
done

# 2-4. Shards, the transformer, the installed model.
$omni prepare --toyworld --count 3000 --seed 0 --model checkpoints/toy-codecs --out data/toy-shards
$omni train --config toy
.venv/bin/python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy
