#!/usr/bin/env bash
# Set up .venv if needed, then lint and run the test suite.
source "$(dirname "$0")/env.sh"
ruff check .
ruff format --check .
pytest "$@"
