#!/usr/bin/env bash
# The GPU check: one command on one H100/H200 that fills every GPU table of BENCHMARKS.md, in about 9 minutes,
# and writes them into OUTDIR/gpu-check.md (each step's full output beside it in OUTDIR/*.log).
#   1. the GPU-marked tests
#   2. attention: omni's Triton kernel against sdpa's flash, cuDNN and memory-efficient kernels (and flash-attn
#      when installed); bf16, head dims 64 and 128, 1k to 32k tokens, without and with key padding, forward
#      and forward+backward TFLOP/s, and each backend's ratio to the best other one
#   3. training: `omni bench train --preset omni-1.3b` tokens/s and MFU of the card's dense bf16 peak
#   4. generation: seconds per denoising step of a Wan-1.3B-shaped omni at 81 frames 832x480 against diffusers'
#      WanTransformer3DModel, and with 5 s of audio against LTX2VideoTransformer3DModel; then the cost of an
#      audio token against a video token at the same length
#
# Usage: scripts/gpu_check.sh OUTDIR [--dry-run]
#   --dry-run runs every step on tiny shapes on the CPU: it checks the script and its tables, measures nothing.
#
# Steps 3 and 4 need diffusers. A GPU machine without it gets it from wheels carried in .whl/ (or the folder
# OMNI_WHEELS names), installed with --no-index into a scratch folder; with none, those rows read
# "diffusers not available". How to carry them: docs/benchmarking.md, "The GPU check".
set -uo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/gpu_check.sh OUTDIR [--dry-run]"
out=${1:?$usage}
dry=0
case "${2:-}" in
  "") ;;
  --dry-run) dry=1 ;;
  *) echo "unknown option '${2}'; $usage" >&2; exit 2 ;;
esac
mkdir -p "$out"
report="$out/gpu-check.md"
budget=${OMNI_GPU_CHECK_SECONDS:-530}  # every step ends by then: the whole run stays under 9 minutes

PY=${PYTHON:-python3}  # the GPU machines' python3 holds torch; here, the venv scripts/setup.sh made
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
wheels=${OMNI_WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  site=$(mktemp -d)
  if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" "$wheels"/*.whl; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "the wheels in $wheels did not install; going on without them" >&2
  fi
fi
export PYTHONPATH="$PWD:$PWD/kernels${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# `omni bench` imports diffusers (and the media packages av and soundfile, through the benchmark harness).
missing=$("$PY" -c "from omni.cli import build_parser; build_parser('bench')" 2>&1 | grep -o "No module named '[^']*'" | head -n 1)
omni=("$PY" -c "import sys; from omni.cli import main; sys.exit(main(sys.argv[1:]))")

# step TITLE SECONDS LOG COMMAND...: run COMMAND for at most SECONDS (less when the budget is nearly spent);
# its markdown table lines go into the report, its whole output into OUTDIR/LOG.
step() {
  local title=$1 limit=$2 log=$3
  shift 3
  local left=$((budget - SECONDS - 5))
  if [ "$limit" -gt "$left" ]; then limit=$left; fi
  {
    echo
    echo "## $title"
    echo
    local shown="$*"
    echo "\`${shown/"${omni[*]}"/omni}\`"
    echo
  } >>"$report"
  if [ "$limit" -le 0 ]; then
    echo "skipped: the run's ${budget} s were spent" >>"$report"
    return
  fi
  local start=$SECONDS rc
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$out/$log" 2>&1
  rc=$?
  grep '^|' "$out/$log" >>"$report"
  {
    echo
    case $rc in
      0) echo "done in $((SECONDS - start)) s (full output: $log)" ;;
      124 | 130 | 137) echo "stopped at its ${limit} s limit (what it printed: $log)" ;;
      *) echo "failed with exit code $rc after $((SECONDS - start)) s; last lines:" && echo '```text' &&
        tail -n 15 "$out/$log" && echo '```' ;;
    esac
  } >>"$report"
}

# unavailable TITLE: a step that cannot run without diffusers.
unavailable() {
  printf '\n## %s\n\n| result |\n| --- |\n| diffusers not available (%s; carry wheels: docs/benchmarking.md) |\n' \
    "$1" "$missing" >>"$report"
}

device=cpu
gpu="none (dry run on the CPU)"
if [ "$dry" = 0 ]; then
  device=cuda
  gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
fi
versions=$("$PY" -c "
import importlib.metadata as m
names = ('torch', 'triton', 'diffusers', 'flash-attn')
found = []
for n in names:
    try:
        found.append(n + ' ' + m.version(n))
    except m.PackageNotFoundError:
        found.append(n + ' absent')
print(', '.join(found))")
{
  echo "# GPU check$([ "$dry" = 1 ] && echo ' (dry run: tiny shapes on the CPU, no figures)')"
  echo
  echo "| date (UTC) | commit | GPU, driver | packages |"
  echo "| --- | --- | --- | --- |"
  echo "| $(date -u '+%Y-%m-%d %H:%M') | $(git rev-parse --short HEAD 2>/dev/null || echo unknown) | $gpu | $versions |"
} >"$report"

# 1. GPU-marked tests (on the CPU they collect and skip)
mapfile -t gpu_tests < <(grep -rl "pytest.mark.gpu" tests kernels/tests)
step "GPU tests" 60 tests.log "$PY" -m pytest -q -m gpu -p no:randomly -p no:cacheprovider "${gpu_tests[@]}"
summary=$(grep -E "passed|failed|skipped|error" "$out/tests.log" | tail -n 1)
printf '\n| tests |\n| --- |\n| %s |\n' "${summary:-no summary line}" >>"$report"

# 2. Attention kernels (python -m omni_kernels.bench needs no diffusers)
if [ "$dry" = 1 ]; then
  attention=(env TRITON_INTERPRET=1 "$PY" -m omni_kernels.bench --smoke --no-norms --markdown)
else
  attention=("$PY" -m omni_kernels.bench --seqlens 1024 4096 16384 32768 --head-dims 64 128 --no-norms --markdown)
fi
step "Attention, non-causal (bf16)" 120 attention.log "${attention[@]}" --key-padding none
step "Attention with key padding (bf16)" 90 attention-padded.log "${attention[@]}" --key-padding padded

# 3. Training throughput and MFU
if [ "$dry" = 1 ]; then
  train=(--preset tiny --batch-size 1 --frames 5 --size 32 --audio-seconds 0.5 --steps 1 --device cpu --no-bf16)
else
  train=(--preset omni-1.3b --batch-size 1 --frames 81 --size 832x480 --audio-seconds 5 --steps 5 --bf16
    --compile --activation-checkpointing)
fi
if [ -z "$missing" ]; then
  step "Training: tokens/s and MFU" 160 train.log "${omni[@]}" bench train "${train[@]}"
else
  unavailable "Training: tokens/s and MFU"
fi

# 4. Generation: seconds per denoising step (one transformer forward) against Wan and LTX-2
if [ "$dry" = 1 ]; then
  clip=(--preset tiny --frames 5 --size 32 --audio-seconds 0.5 --repeats 2 --device cpu)
  share=(--preset tiny --tokens 64 --audio-share 0.2 --repeats 2 --device cpu)
else
  clip=(--preset omni-1.3b --frames 81 --size 832x480 --audio-seconds 5.0625 --repeats 5 --device "$device")
  share=(--preset omni-1.3b --tokens 8192 32760 --audio-share 0.2 --repeats 5 --device "$device")
fi
if [ -z "$missing" ]; then
  step "Generation: a denoising step against Wan and LTX-2" 80 step.log \
    "${omni[@]}" bench transformer "${clip[@]}" --ltx2
  step "Generation: an audio token against a video token" 60 audio-share.log \
    "${omni[@]}" bench transformer "${share[@]}"
else
  unavailable "Generation: a denoising step against Wan and LTX-2"
  unavailable "Generation: an audio token against a video token"
fi

printf '\nTotal %d s.\n' "$SECONDS" >>"$report"
echo "wrote $report in $SECONDS s"
