#!/usr/bin/env bash
# Reproduce the built-in toy model end to end (every stage resumes where it stopped when rerun):
#   1. codecs (video VAE, audio VAE, vocoder) trained on the toy world
#   2. 3000 toy-world clips encoded into latent shards
#   3. the transformer trained on every task (configs/train/toy.yaml)
#   4. the EMA export installed into the package as omni/assets/toy (fp16, with its model card numbers)
# Usage: scripts/train_toy_model.sh   (about 2.5 hours on a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni

# 1a. all three codecs; the video VAE's decoder sees sampled latents (the run the built-in model started from)
$omni codecs --preset toy --out checkpoints/toy-codecs-warmup --video-steps 1500 --video-latents sample \
  --audio-steps 2000 --vocoder-steps 4000
# 1b. the video VAE continued on deterministic latents with a milder foreground weight; audio stages reused
mkdir -p checkpoints/toy-codecs/stages
for stage in audio_vae vocoder; do
  [ -e checkpoints/toy-codecs/stages/$stage ] || cp -r checkpoints/toy-codecs-warmup/stages/$stage checkpoints/toy-codecs/stages/
done
$omni codecs --preset toy --out checkpoints/toy-codecs --video-steps 1200 --video-latents mode --foreground-weight 5 \
  --video-init checkpoints/toy-codecs-warmup/stages/vae
$omni prepare --toyworld --count 3000 --seed 0 --model checkpoints/toy-codecs --out data/toy-shards
$omni train --config toy
.venv/bin/python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy
