#!/usr/bin/env bash
# Set up .venv if needed, then lint and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ruff check .
ruff format --check .
pytest "$@"
