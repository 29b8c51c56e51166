#!/usr/bin/env bash
# Set up .venv if needed, then run the whole pipeline on the default params.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
start=$(date +%s)
dvc repro "$@"
dvc metrics show
echo "pipeline finished in $(( $(date +%s) - start )) s"
