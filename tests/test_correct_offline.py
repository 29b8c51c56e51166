"""``raman-baseline correct`` stays offline and quiet: nothing written under the user's home."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from .conftest import ROOT

# what writes under a home folder if let: matplotlib's font cache and config folder, ONNX
# Runtime's telemetry (~/.cache/Microsoft/DeveloperTools/.onnxruntime/), mlflow, torch, tqdm
HOME_VARIABLES = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")


def _cli() -> list[str]:
    """The installed ``raman-baseline`` script, else the same entry point through Python."""
    script = Path(sys.executable).with_name("raman-baseline")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())"]


def test_correct_writes_nothing_under_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"  # a user's folder: no params.yaml, no mlflow.db
    work.mkdir()
    x = np.linspace(200.0, 3200.0, 400)
    y = 5000 * np.exp(-x / 1500) + 800 + 700 * np.exp(-(((x - 1000) / 9) ** 2))
    np.savetxt(work / "scan.csv", np.column_stack([x, y]), delimiter=",")
    env = {k: v for k, v in os.environ.items() if k not in HOME_VARIABLES}
    for name in ("MPLCONFIGDIR", "ORT_DISABLE_TELEMETRY", "MLFLOW_TRACKING_URI", "TORCH_HOME"):
        env.pop(name, None)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
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
    assert sorted(p.name for p in (work / "out").iterdir()) == ["scan.csv", "scan.png"]
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert written == [], f"correct wrote under HOME: {written}"
    assert list(tmp.iterdir()) == []  # its temporary folders removed on the way out
