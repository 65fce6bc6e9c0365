#!/usr/bin/env bash
# Set up omni in ./.venv: torch (the CPU build 2.13.0, unless a torch >= 2.4 is already importable), then omni.
# Usage: scripts/setup.sh [--dev]      (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=""
if [ "${1:-}" = "--dev" ]; then extras="[dev]"; fi
has_torch='import sys, torch; sys.exit(tuple(map(int, torch.__version__.split("+")[0].split(".")[:2])) < (2, 4))'

if [ ! -x .venv/bin/python ]; then
  if "$PYTHON" -c "$has_torch" 2>/dev/null; then
    "$PYTHON" -m venv --system-site-packages .venv   # keep the torch this machine already has (e.g. a CUDA build)
  else
    "$PYTHON" -m venv .venv
  fi
fi
# shellcheck disable=SC1091
. .venv/bin/activate
if ! python -c "$has_torch" 2>/dev/null; then
  pip install -q torch==2.13.0
fi
torch_version=$(python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)  # quiet: numpy may not be installed yet
# The constraint keeps pip from replacing the installed torch (an open range would pull a CUDA build).
pip install -q -c <(echo "torch==$torch_version") -e ".$extras"
echo "omni is set up in .venv (torch $torch_version)"
