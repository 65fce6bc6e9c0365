#!/usr/bin/env bash
# Set up the dev tools and run the test suite in a random order, so no test can lean on another having run
# (pytest-randomly prints the seed; `--randomly-seed=N` repeats an order, `-p no:randomly` keeps file order).
# Usage: scripts/test.sh [--quick] [pytest arguments]   (--quick skips the tests marked slow; CI runs all)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
if [ "${1:-}" = "--quick" ]; then
  quick=(-m "not slow")
  shift
fi
scripts/setup.sh --dev
# The benchmark report's browser test renders it in headless Chromium (skipped when it cannot be installed).
command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || true
.venv/bin/python -m pytest "${quick[@]}" "$@"
