"""Stage processes that do not outlive what runs them, and one trainer per output at a time.

``dvc repro`` runs a stage's command as its child (``$SHELL -c``, which execs the command).
Killing DVC (``kill -9``, a closed terminal, a cancelled flow) used to leave the child running
as an orphan, and the next ``dvc repro`` started a second trainer writing the same checkpoint
and resume file. Two guards:

- :func:`die_with_parent`: Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``,
  prctl(2)): the kernel sends SIGTERM to this process the moment its parent ends, however it
  ends. :func:`tie_to_dvc` arms it for a process DVC runs (``DVC_STAGE`` is set), and only
  then: a training started by hand under ``nohup`` (DEVELOPERS.md) must outlive the shell
  that started it. SIGTERM then unwinds the stage as Ctrl-C would (``finally`` blocks run:
  simulation workers stopped, temporary files removed, locks released).
- :func:`only_writer`: an exclusive lock (:func:`pipeline.files.file_lock`) on
  ``<output>.lock`` while a process writes that output; a second process gives up with one
  line naming the holder. The kernel frees the lock when its holder dies, even by SIGKILL.

This module imports nothing from the project but :mod:`pipeline.files`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from pipeline.files import LockTimeout, file_lock

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# how long a second writer waits: a trainer killed with its parent exits at once, but its
# simulation workers (which share the lock) notice their parent is gone within 5 s
LOCK_WAIT_S = 15.0


class OutputBusy(RuntimeError):
    """Another process is writing the same output; the message names it and its holder."""


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent ends (Linux only).

    Returns
    -------
    bool
        Whether the signal is armed (False off Linux, or if ``prctl`` refused).

    Notes
    -----
    The signal follows the parent that started this process (a process DVC runs through a
    shell that execs the command has DVC as its parent). A parent that ended before the
    signal was armed is caught by comparing the parent's process id before and after.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent ended in between: nobody will signal now
        os.kill(os.getpid(), sig)
    return True


def tie_to_dvc() -> bool:
    """Under DVC (``DVC_STAGE`` set), die with DVC: SIGTERM unwinds as ``SystemExit(143)``.

    Returns
    -------
    bool
        Whether this process is now tied to its parent.
    """
    if not os.environ.get("DVC_STAGE"):
        return False
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return die_with_parent(signal.SIGTERM)


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def only_writer(output: str | Path, what: str) -> Iterator[None]:
    """Hold ``<output>.lock`` while writing ``output``; refuse if another process holds it.

    Parameters
    ----------
    output
        The output this process writes (``models/resunet.pt``).
    what
        Who this is, recorded in the lock file for the one refused (``raman-baseline train``).

    Raises
    ------
    OutputBusy
        Another process still holds the lock after :data:`LOCK_WAIT_S` seconds.
    """
    lock = Path(f"{output}.lock")
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(file_lock(lock, timeout=LOCK_WAIT_S, holder=what))
        except LockTimeout as exc:
            raise OutputBusy(
                f"another process is writing {output} ({exc.holder or 'holder unknown'}; lock "
                f"file {lock}): wait for it to end or stop it, then run again"
            ) from exc
        yield
