"""Shared test configuration: the one tiny config and the one workspace factory.

``TINY`` overrides ``params.yaml`` for every test that trains or runs the pipeline: short
spectra, few of them, a narrow network, two quick epochs. ``make_workspace`` builds a scratch
git + DVC workspace holding the pipeline's sources and the tiny params.
"""

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("RAMAN_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
# CI always has shared/ beside the clone: there, missing data fails instead of skipping
needs_real = pytest.mark.skipif(
    not REAL.is_dir() and not os.environ.get("CI"), reason=f"no real spectra at {REAL}"
)

TINY = {
    "simulate": {"length": 128, "n_train": 256, "n_val": 64, "n_test": 64},
    "model": {"channels": [4, 6, 8, 10, 12, 14]},
    "train": {"epochs": 2, "batch_size": 32, "threads": 1},
    "classical": {
        "arpls": {"log10_lam": [3.0, 5.0]},
        "aspls": {"log10_lam": [4.0, 6.0]},
        "n_val_grid": 16,
        "n_jobs": 2,
    },
    "student": {"channels": [4, 4, 6, 6, 8, 8], "epochs": 1},
    "finetune": {
        "real_source": str(REAL.resolve()),
        "real_samples": 64,
        "replay_samples": 64,
        "epochs": 1,
        "figures": 2,
    },
}

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on it, nested dicts merged (a new dict; inputs untouched)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) else copy.deepcopy(v)
    return out


def tiny_params(**over: dict) -> dict:
    """``params.yaml`` with :data:`TINY` (and then ``over``) laid on it, as plain data."""
    return merge(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY), over)


def git(cwd: Path, *args: str) -> None:
    """Run git in ``cwd`` as a test identity."""
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args]
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def params():
    """The committed params.yaml."""
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def tiny():
    """:data:`TINY` as typed params."""
    return parse_params(tiny_params())


@pytest.fixture(scope="session")
def make_workspace():
    """A factory: ``make_workspace(folder, params=None)`` -> a committed git + DVC workspace.

    The workspace holds the pipeline's sources, ``dvc.yaml`` and ``params`` (default: the tiny
    params), with DVC initialised (analytics off, autostage on). Nothing is run in it.
    """

    def make(ws: Path, params: dict | None = None) -> Path:
        ws.mkdir(parents=True, exist_ok=True)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "pipeline", ws / "pipeline", ignore=ignore)
        for name in ("dvc.yaml", ".gitignore"):
            shutil.copy(ROOT / name, ws / name)
        (ws / "params.yaml").write_text(yaml.safe_dump(params or tiny_params(), sort_keys=False))
        env = {**os.environ, "DVC_SITE_CACHE_DIR": str(ws / ".dvc" / "tmp" / "site-cache")}
        git(ws, "init", "-q")
        git(ws, "config", "user.name", "test")
        git(ws, "config", "user.email", "test@example.invalid")
        for args in (["init", "-q"], ["config", "core.analytics", "false"]):
            subprocess.run(["dvc", *args], cwd=ws, env=env, check=True, capture_output=True)
        subprocess.run(["dvc", "config", "core.autostage", "true"], cwd=ws, env=env, check=True)
        git(ws, "add", "-A")
        git(ws, "commit", "-q", "-m", "tiny workspace")
        return ws

    return make
