# Sourced by the scripts and by users (`source scripts/env.sh`): the project's virtual
# environment, offline and quiet. Creates .venv/ at the repo root and installs the project when
# missing or out of date. It sets no shell options and does not change directory, so sourcing
# it leaves an interactive shell as it was (the scripts set -euo pipefail themselves).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp="$ROOT/.venv/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setting up .venv (once; a few minutes) ..."
  [ -x "$ROOT/.venv/bin/python" ] || "$PYTHON" -m venv "$ROOT/.venv" || return 1
  if ! (cd "$ROOT" && .venv/bin/python -m pip install -e '.[dev]' >.venv/install.log 2>&1); then
    tail -n 40 "$ROOT/.venv/install.log"
    echo "pip install failed: see .venv/install.log" >&2
    return 1
  fi
  rm -f "$ROOT"/.venv/.installed-*
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
if ! git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$ROOT" init --quiet
fi
