"""What a user is told when something fails: one line, never a traceback.

The project's own exceptions (defined under ``pipeline`` or ``flows``) carry messages written
for users, naming the file, store or value at fault: they are shown as they are. Any other
exception is shown as ``TypeName: first line of its message``, with absolute paths cut to
their last part, so that a server never hands its own file layout to a client. :func:`run`
runs a command (``raman-baseline``'s, or a stage's ``python -m pipeline.stages.<stage>``) with
these rules. This module imports nothing from the project but :class:`ConfigError`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from pipeline.params_check import ConfigError

PROGRAM = "raman-baseline"
OUR_PACKAGES = ("pipeline", "flows")

# an absolute POSIX path not inside a URL or a longer word: "/srv/models/a.onnx"
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s'\"/:,;()\[\]]+/)*([^\s'\"/:,;()\[\]]+)")


def is_ours(exc: BaseException) -> bool:
    """Whether ``exc`` is one of the project's own exception types."""
    return type(exc).__module__.split(".")[0] in OUR_PACKAGES


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` for a user, on one line.

    Parameters
    ----------
    exc
        Any exception.

    Returns
    -------
    str
        Ours: the message, its lines joined. Others: ``TypeName: message``, the first line
        only, absolute paths cut to their last part (``/srv/a/b.onnx`` -> ``b.onnx``); just
        ``TypeName`` when the message is empty.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    name = type(exc).__name__
    if is_ours(exc):
        return " ".join(lines) or name
    if not lines:
        return name
    return f"{name}: {_ABSOLUTE_PATH.sub(_last_part, lines[0])}"


def _last_part(found: re.Match) -> str:
    return found.group(1)


def fail(command: str, exc: BaseException) -> int:
    """Tell the user that ``command`` failed, on stderr, and return the exit status.

    Prints ``raman-baseline <command>: <one line>`` (:func:`one_line`); for an interrupt,
    ``interrupted (Ctrl-C)`` and what the command said about it (``KeyboardInterrupt(text)``).

    Returns
    -------
    int
        130 for an interrupt (Ctrl-C), else 1.
    """
    if isinstance(exc, KeyboardInterrupt):
        said = " ".join(str(exc).split())
        print(
            f"{PROGRAM} {command}: interrupted (Ctrl-C){': ' + said if said else ''}",
            file=sys.stderr,
        )
        return 130
    print(f"{PROGRAM} {command}: {one_line(exc)}", file=sys.stderr)
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


def run(command: str, call: Callable[[], int], params: str = "params.yaml") -> int:
    """Run ``call``, a command's work, telling the user in one line why it failed.

    Parameters
    ----------
    command
        The command's name, as ``raman-baseline`` spells it (``simulate``, ``train-fast``).
    call
        The work; returns the exit status.
    params
        The params file the command reads, named when it is invalid.

    Returns
    -------
    int
        ``call``'s status; 2 for an invalid params file (``raman-baseline: invalid
        params.yaml: <message>``); :func:`fail`'s for the project's own errors, a missing or
        unreadable file (``OSError``) and Ctrl-C.

    Raises
    ------
    Exception
        Any other exception, unchanged: a bug, whose traceback is what a developer needs.
    """
    try:
        return call()
    except ConfigError as exc:
        print(f"{PROGRAM}: invalid {params}: {exc}", file=sys.stderr)
        return 2
    except (Exception, KeyboardInterrupt) as exc:
        if not (is_ours(exc) or isinstance(exc, OSError | KeyboardInterrupt)):
            raise
        return fail(command, exc)
