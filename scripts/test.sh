#!/usr/bin/env bash
# Set up the dev tools and run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
# The benchmark report's browser test renders it in headless Chromium (skipped when it cannot be installed).
command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || true
.venv/bin/python -m pytest "$@"
