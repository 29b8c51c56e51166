# Sourced by the scripts: the project's virtual environment, offline and quiet.
# Creates .venv/ at the repo root and installs the project when missing or out of date.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setting up .venv (once; a few minutes) ..."
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  if ! .venv/bin/python -m pip install -e '.[dev]' >.venv/install.log 2>&1; then
    tail -n 40 .venv/install.log
    echo "pip install failed: see .venv/install.log" >&2
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export VIRTUAL_ENV="$ROOT/.venv"

# offline and quiet
export DVC_NO_ANALYTICS=1
export DVC_SITE_CACHE_DIR="$ROOT/.dvc/tmp/site-cache"
export MLFLOW_DISABLE_TELEMETRY=true
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120
# torch on a busy 2-core machine: idle OpenMP threads must not spin
export OMP_WAIT_POLICY=PASSIVE

# DVC needs a git repository (a tarball of the sources has none)
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git init --quiet
fi
