#!/usr/bin/env bash
# Reproduce the built-in toy model end to end (every stage resumes where it stopped when rerun):
#   1. codecs (video VAE, audio VAE, vocoder) trained on the toy world
#   2. 3000 toy-world clips encoded into latent shards
#   3. the transformer trained on every task (configs/train/toy.yaml)
#   4. the EMA export installed into the package as omni/assets/toy (fp16, with its model card numbers)
# Usage: scripts/train_toy_model.sh   (about 4-6 hours on a 2-core CPU; minutes on a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
omni=.venv/bin/omni

$omni codecs --preset toy --out checkpoints/toy-codecs --video-steps 2500 --audio-steps 2000 --vocoder-steps 4000
$omni prepare --toyworld --count 3000 --seed 0 --model checkpoints/toy-codecs --out data/toy-shards
$omni train --config toy
.venv/bin/python scripts/install_toy_model.py checkpoints/toy-run/export omni/assets/toy
