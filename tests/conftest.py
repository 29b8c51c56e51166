"""Shared test configuration: the one tiny config and the one workspace factory.

``TINY`` overrides ``params.yaml`` for every test that trains or runs the pipeline: short
spectra, few of them, a narrow network, 512 streamed training spectra (two evaluations).
``make_workspace`` builds a scratch git + DVC workspace holding the pipeline's sources and
the tiny params.
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
RRUFF = REAL.parent / "rruff"  # the RRUFF raw/processed pairs (pipeline/rruff.py)
NOT_SPECTRA = {"README.md", "LICENSE.arcadia-2025-comparison", "LICENSE.ramanalysis"}
# CI always has shared/ beside the clone: there, missing data fails instead of skipping
needs_real = pytest.mark.skipif(
    not REAL.is_dir() and not os.environ.get("CI"), reason=f"no real spectra at {REAL}"
)

# file -> (spectra, points, calibrated, kind)
_HORIBA = (1, 2048, True, "labspec")
_RENISHAW_MAP = (10, 1015, True, "wire")  # a 10-point map on the Qontor
EXPECTED = {
    "Horiba_MacroRAM/CC-124-TAP-2.txt": _HORIBA,
    "Horiba_MacroRAM/acetonitrile.txt": _HORIBA,
    **{
        f"Horiba_MacroRAM/chlamy_spectra/CC-{strain}-{medium}-{k}.txt": _HORIBA
        for strain in ("124", "125", "1373")
        for medium in ("MN", "TAP")
        for k in (1, 2, 3)
    },
    "OpenRAMAN/CC-124_TAP_Pos-2-000_002.csv": (1, 2048, False, "text"),
    "OpenRAMAN/acetonitrile_n_n_n_solid_10000_0_5.csv": (1, 2048, False, "text"),
    "OpenRAMAN/neon_n_n_n_solid_10000_0_5.csv": (1, 2048, False, "text"),
    "Renishaw_Qontor/CC-124_TAP_plate_5x_3_points.txt": (3, 1015, True, "wire"),
    "Renishaw_Qontor/acetonitrile_5x.txt": (1, 3179, True, "wire"),
    "Renishaw_Qontor/glass_slide_background.txt": (1, 1015, True, "wire"),
    "Renishaw_Qontor/chlamy_spectra/2024-11-12_CC-124_MN_slide_10_cells 2.txt": _RENISHAW_MAP,
    **{
        f"Renishaw_Qontor/chlamy_spectra/2024-11-12_CC-{s}_slide_10_cells.txt": _RENISHAW_MAP
        for s in ("124_TAP", "125_MN", "125_TAP", "1373_MN")
    },
    # named "10 cells", but the export holds 9 points
    "Renishaw_Qontor/chlamy_spectra/2024-11-12_CC-1373_TAP_slide_10_cells.txt": (
        9,
        1015,
        True,
        "wire",
    ),
    # headed "Pixel,Intensity" but the first column is Raman shift (-601 to 4765 cm-1)
    "Wasatch_WP532X/CC-124_TAP_Pos-4-002_001.csv": (1, 2048, True, "text"),
    "Wasatch_WP532X/acetonitrile.csv": (1, 2048, True, "text"),
    # 2048 pixels, the first 10 outside the region of interest (NA)
    "Wasatch_WP785X/CC-124_TAP_WP-02071.csv": (1, 2038, True, "enlighten"),
    "Wasatch_WP785X/acetonitrile.csv": (1, 2038, True, "enlighten"),
    "extra/Horiba/LabRAM/CC-124_TAP_532nm.txt": (1, 800, True, "labspec"),
    "extra/Horiba/LabRAM/acetonitrile_473nm.txt": (1, 1600, True, "labspec"),
    "extra/Horiba/MacroRAM/CC-125-TAP.txt": _HORIBA,
    "extra/Horiba/MacroRAM/polystyrene.txt": _HORIBA,
    "extra/Renishaw/CC-125_TAP_singlepoint.txt": (1, 3078, True, "wire"),
}


def real_files() -> list[Path]:
    """Every file under the real-data folder but its README and licences."""
    return sorted(p for p in REAL.rglob("*") if p.is_file() and p.name not in NOT_SPECTRA)


TINY = {
    "simulate": {"length": 128, "n_train": 256, "n_val": 64, "n_test": 64},
    "model": {"channels": [4, 6, 8, 10, 12, 14]},
    "train": {"samples": 512, "eval_every": 256, "batch_size": 32, "threads": 1, "workers": 0},
    "classical": {
        "arpls": {"log10_lam": [3.0, 5.0]},
        "aspls": {"log10_lam": [4.0, 6.0]},
        "n_val_grid": 16,
        "n_jobs": 2,
    },
    "student": {"channels": [4, 4, 6, 6, 8, 8], "samples": 256},
    "finetune": {
        "real_source": str(REAL.resolve()),
        "real_samples": 64,
        "replay_samples": 64,
        "epochs": 1,
        "figures": 2,
    },
    "semireal": {"rruff_source": str(RRUFF.resolve()), "n_val": 16, "n_test": 32},
    "denoise": {"width": 4, "dilations": [1, 2], "samples": 256, "batch_size": 32},
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


def simulate_params(**over):
    """``params.yaml``'s ``simulate`` with ``section__key=value`` overrides, parsed."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in over.items():
        section, name = key.split("__")
        data["simulate"][section][name] = value
    return parse_params(data).simulate


def sim_arrays(s) -> list:
    """The arrays of a :class:`pipeline.simulate.SpectrumSet`, for comparing two sets."""
    return [s.observed, s.baseline, s.peaks, s.read_noise, s.family]


def git(cwd: Path, *args: str) -> None:
    """Run git in ``cwd`` as a test identity."""
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args]
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped where no CUDA device is present."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def log_onnx_run(client, onnx_path: Path, grid: int = 512, run_name: str = "test", **run):
    """An MLflow run whose model is ``onnx_path``; nothing else logged unless ``run`` says.

    Returns ``(run_id, model_uri)`` (:func:`pipeline.registry.log_pipeline_run`).
    """
    from pipeline import registry

    bare = {"params": {}, "history": [], "test_metrics": {}, "figures": None, "digests": {}}
    args = bare | {"checkpoint": onnx_path, "onnx_path": onnx_path, "extra_files": []} | run
    return registry.log_pipeline_run(client, run_name=run_name, grid=grid, **args)


def register_production(client, onnx_path: Path, grid: int = 512, run_name: str = "test") -> str:
    """Register ``onnx_path`` as a new ``resunet1d`` version holding ``production``, no gate."""
    from pipeline import registry

    run_id, uri = log_onnx_run(client, onnx_path, grid, run_name)
    client.create_registered_model(registry.MODEL_NAME)
    version = client.create_model_version(registry.MODEL_NAME, uri, run_id=run_id).version
    client.set_registered_model_alias(registry.MODEL_NAME, registry.PRODUCTION, version)
    return str(version)


@pytest.fixture(autouse=True)
def _tracking_uri_kept_per_test():
    """Keep one test's MLflow store out of the next.

    ``mlflow.set_tracking_uri`` (called by ``registry.connect``) also writes
    ``MLFLOW_TRACKING_URI`` into ``os.environ``, which ``correct`` then reads as the user's
    choice of registry; a ``monkeypatch.delenv`` of a variable that was not set does not undo
    that. Restored after every test.
    """
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


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
