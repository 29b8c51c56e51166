"""One pipeline run at a time per workspace: an exclusive file lock in it.

The lock file is ``.dvc/tmp/prefect-pipeline.lock`` (git-ignored by DVC), held through
:func:`pipeline.files.file_lock`, the project's one file lock: its holder writes who it is
into the file, so a run that gives up can say who is in the way, and the lock goes with the
process: a run that dies, even by SIGKILL, frees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.files import LockTimeout, file_lock


class WorkspaceBusy(RuntimeError):
    """Another run held the workspace for longer than this one was willing to wait."""


def lock_path(workspace: Path) -> Path:
    """The lock file of ``workspace``."""
    return Path(workspace) / ".dvc" / "tmp" / "prefect-pipeline.lock"


@contextlib.contextmanager
def workspace_lock(
    workspace: Path,
    timeout: float,
    holder: str,
    on_wait: Callable[[str], None] | None = None,
    poll: float = 0.5,
) -> Iterator[None]:
    """Hold the workspace's pipeline lock, waiting up to ``timeout`` seconds for it.

    Parameters
    ----------
    workspace
        The DVC workspace (the directory with ``dvc.yaml``).
    timeout
        Seconds to wait for a run that holds the lock; 0 refuses at once.
    holder
        Who this is (a flow run's name), written into the lock file for others to read.
    on_wait
        Told once, with the current holder, when the lock is busy and waiting begins.
    poll
        Seconds between attempts while waiting.

    Raises
    ------
    WorkspaceBusy
        If the lock is still held when ``timeout`` runs out; the message names the holder.
    """
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(lock_path(workspace), timeout, holder, on_wait, poll))
        except LockTimeout as exc:
            raise WorkspaceBusy(
                f"another pipeline run is using {Path(workspace)} "
                f"({exc.holder or 'holder unknown'}); gave up after waiting {timeout:g} s. Try "
                "again when it has finished, or give this run a longer lock_timeout_s."
            ) from None
        yield
