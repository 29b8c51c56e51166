"""Offline and quiet: what the project's libraries would otherwise write under the user's home.

``raman-baseline correct`` writes its outputs and nothing else (docs/correct.md). Left to
themselves, three of the libraries it runs write under the home folder:

- ONNX Runtime (1.31 measured) opens a telemetry database at import,
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}`` (``$XDG_CACHE_HOME``
  when set), whether or not ``onnxruntime.disable_telemetry_events()`` is called afterwards;
  only the environment variable ``ORT_DISABLE_TELEMETRY`` read at import stops it.
  :func:`no_telemetry` sets it; :mod:`pipeline.inference`, the one module of the project that
  imports ``onnxruntime``, calls it first, and then also switches the events off through the
  library's own call.
- MLflow (3.x) writes a telemetry installation id to ``~/.config/mlflow/telemetry.json``
  (``$XDG_CONFIG_HOME``) when it loads a registered model, unless ``MLFLOW_DISABLE_TELEMETRY``
  is set (or it believes it runs under a test or CI); :func:`no_telemetry` sets that too.
- matplotlib writes its font cache (``~/.cache/matplotlib/fontlist-*.json``) and creates its
  configuration folder (``~/.config/matplotlib``) when it draws text.
  :func:`private_matplotlib_dir` points ``MPLCONFIGDIR`` at a temporary folder of this process,
  removed when it exits, unless the user set ``MPLCONFIGDIR`` (then theirs is used); the
  ``correct`` command calls it before importing anything that imports matplotlib.

The test: ``tests/test_correct_offline.py`` runs the real command with ``HOME`` a new folder
and finds nothing in it afterwards. This module imports nothing from the project.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# read by each library at its import: ONNX Runtime's telemetry database, MLflow's telemetry
# (an installation id written to ~/.config/mlflow/telemetry.json, events sent over the network)
TELEMETRY_VARIABLES = {"ORT_DISABLE_TELEMETRY": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


def no_telemetry() -> None:
    """Switch ONNX Runtime's and MLflow's telemetry off for this process and its children.

    Takes effect for a library imported after the call (each reads its variable at import).
    A value the user set is kept (``ORT_DISABLE_TELEMETRY=0`` turns it back on).
    """
    for name, value in TELEMETRY_VARIABLES.items():
        os.environ.setdefault(name, value)


def private_matplotlib_dir() -> str:
    """Give matplotlib a configuration and cache folder of its own, outside the home folder.

    A temporary folder (:func:`tempfile.mkdtemp`: private, mode 0700) removed when the process
    exits, set as ``MPLCONFIGDIR``; its font cache is rebuilt at each run (0.1 to 1 s, more
    with many fonts installed). Must run before matplotlib is imported. When ``MPLCONFIGDIR``
    is already set (by the user, or an earlier call) it is left alone.

    Returns
    -------
    str
        The folder matplotlib uses.
    """
    if os.environ.get("MPLCONFIGDIR"):
        return os.environ["MPLCONFIGDIR"]
    folder = tempfile.mkdtemp(prefix="raman-baseline-mpl-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = folder
    return folder


def for_a_user_command() -> None:
    """Both of the above, for a command users run (``correct``, ``correct-map``).

    Call it before ONNX Runtime, MLflow or matplotlib is imported: nothing is then written
    under the user's home folder.
    """
    no_telemetry()
    private_matplotlib_dir()
