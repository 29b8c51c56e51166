"""``raman-baseline correct`` stays offline and quiet: nothing written under the user's home."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT, register_production
from .test_correct import untrained_onnx

# what writes under a home folder if let: matplotlib's font cache and config folder, ONNX
# Runtime's telemetry (~/.cache/Microsoft/DeveloperTools/.onnxruntime/), mlflow's telemetry
# installation id (~/.config/mlflow), torch, tqdm; the command runs with only these variables
USER_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SHELL", "TERM")


def _cli() -> list[str]:
    """The installed ``raman-baseline`` script, else the same entry point through Python."""
    script = Path(sys.executable).with_name("raman-baseline")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())"]


@pytest.mark.parametrize("model", ["shipped", "registry"])
def test_correct_writes_nothing_under_home(tmp_path, monkeypatch, model):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"  # a user's folder: no params.yaml; a mlflow.db for "registry"
    work.mkdir()
    x = np.linspace(200.0, 3200.0, 400)
    y = 5000 * np.exp(-x / 1500) + 800 + 700 * np.exp(-(((x - 1000) / 9) ** 2))
    np.savetxt(work / "scan.csv", np.column_stack([x, y]), delimiter=",")
    if model == "registry":
        from pipeline import registry

        monkeypatch.chdir(work)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
        onnx = untrained_onnx(tmp_path / "tiny.onnx", (4, 6, 8, 10, 12, 14), 0)
        register_production(registry.connect(create=True), onnx)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # a user's shell without scripts/env.sh: none of the variables that keep libraries quiet,
    # none that tell them they run under a test or CI (mlflow switches telemetry off then)
    env = {name: os.environ[name] for name in USER_VARIABLES if name in os.environ}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), TMPDIR=str(tmp))
    done = subprocess.run(
        [*_cli(), "correct", "scan.csv", "-o", "out", "--no-progress"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (model == "registry") == ("resunet1d@production" in done.stdout), done.stdout
    assert sorted(p.name for p in (work / "out").iterdir()) == ["scan.csv", "scan.png"]
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert written == [], f"correct wrote under HOME: {written}"
    assert list(tmp.iterdir()) == []  # its temporary folders removed on the way out
