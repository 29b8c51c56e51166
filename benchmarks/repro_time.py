"""(d) Wall time of the default ``dvc repro`` in a fresh clone (15-30 minutes).

    python benchmarks/repro_time.py [--workspace .] [--json OUT]

The workspace's committed HEAD is cloned into a temporary folder and ``dvc repro`` runs there
with this virtual environment (the Python running this script), the clone's own code
(``PYTHONPATH``) and the environment ``scripts/env.sh`` exports; ``MLFLOW_TRACKING_URI`` is
dropped, so the clone logs to its own store. The clone is removed afterwards. Measured so far:
1,200 s and 3,215 s on 2 CPU cores (docs/speed.md).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's benchmarks package

from benchmarks import common  # noqa: E402


def parse_env_exports(script: str, root: Path) -> dict[str, str]:
    """``export NAME=value`` lines of a shell script, ``$ROOT`` replaced (``scripts/env.sh``).

    ``PATH`` and ``VIRTUAL_ENV`` are left out: the caller decides which environment runs.
    """
    env = {}
    for name, value in re.findall(r"^\s*export\s+(\w+)=(.*?)\s*$", script, re.MULTILINE):
        if name in ("PATH", "VIRTUAL_ENV"):
            continue
        value = value.strip("\"'").replace("${ROOT}", str(root)).replace("$ROOT", str(root))
        env[name] = value
    return env


def repro_env(clone: Path) -> dict[str, str]:
    """This virtual environment first on PATH, the clone's code, and what env.sh exports."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(parse_env_exports((clone / "scripts" / "env.sh").read_text(), clone))
    venv_bin = Path(sys.executable).parent
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv_bin.parent)
    env["PYTHONPATH"] = str(clone)  # the clone's pipeline, before the editable install's
    return env


def repro_row(workspace: Path, say: common.Printout) -> common.Row:
    """``dvc repro`` of the workspace's committed HEAD in a fresh clone, timed."""
    with tempfile.TemporaryDirectory(prefix="speed-repro-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(workspace), str(clone)], check=True)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        say(f"dvc repro of {workspace} at {head} in {clone} (15-30 minutes) ...")
        env = repro_env(clone)
        dvc = shutil.which("dvc", path=env["PATH"]) or "dvc"
        start = time.perf_counter()
        subprocess.run([dvc, "repro"], cwd=clone, env=env, check=True)
        seconds = time.perf_counter() - start
    return common.Row(
        "repro", "dvc repro (default)", cores="all", seconds=seconds, note=f"commit {head}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--workspace", type=Path, default=Path("."), help="a git checkout")
    args = parser.parse_args(argv)
    say = common.Printout()
    row = repro_row(args.workspace.resolve(), say)
    common.finish(say, [row], args.json)


if __name__ == "__main__":
    main()
