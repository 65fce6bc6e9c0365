#!/usr/bin/env bash
# Set up the dev tools and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/python -m pytest "$@"
