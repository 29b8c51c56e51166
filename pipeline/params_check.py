"""Reading ``params.yaml`` strictly, and the checks on ordered lists of values.

:mod:`pipeline.config` builds the typed parameters; this module holds what it needs below
them, so that ``config.py`` stays one page of dataclasses: the :class:`ConfigError` every
check raises, a YAML reader that refuses a key given twice in one mapping (plain YAML keeps
the last one silently, so a second ``enc_kernel:`` lower in a section would win unseen), and
the check of a list that must be strictly increasing (bin edges such as
``evaluate.noise_bins``). This module imports nothing from the project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A params.yaml value that cannot be used; the message names the key."""


def read_yaml(path: str | Path) -> Any:
    """The content of the YAML file ``path``, refusing a key given twice in one mapping.

    PyYAML's safe loader (YAML 1.1, as every stage has read ``params.yaml``); the file is
    first composed into nodes, which keep their line numbers, and every mapping is checked
    for repeated keys before the values are built.

    Parameters
    ----------
    path
        The YAML file (``params.yaml``).

    Returns
    -------
    Any
        What :func:`yaml.safe_load` returns for the file (None for an empty file).

    Raises
    ------
    ConfigError
        The file is missing or unreadable, is not valid YAML, or repeats a key in a mapping:
        ``params.yaml: line 73: model.enc_kernel given twice (first on line 72); keep one``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _refuse_repeated_keys(node, "", path)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())  # PyYAML's message spans lines
        raise ConfigError(f"{path}: not valid YAML: {message}") from exc


def _refuse_repeated_keys(node: yaml.Node, prefix: str, path: Path) -> None:
    """Raise :class:`ConfigError` at the first key given twice in a mapping under ``node``."""
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_repeated_keys(item, f"{prefix}[{i}].", path)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    first_line: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        line = key_node.start_mark.line + 1
        name = f"{prefix}{key}"
        if key is not None and key in first_line:
            raise ConfigError(
                f"{path}: line {line}: {name} given twice (first on line {first_line[key]}); "
                "YAML would keep the last silently: keep one"
            )
        if key is not None:
            first_line[key] = line
        _refuse_repeated_keys(value_node, f"{name}.", path)


def check_increasing(key: str, items: Sequence[float], minimum: int = 2) -> None:
    """Refuse a list that is not strictly increasing or has fewer than ``minimum`` items.

    For bin edges (``evaluate.noise_bins``): ``[0.03, 0.02, 0.01]`` or ``[0.0, 0.01, 0.01]``
    would give empty or inverted bins, and one edge no bin at all.

    Raises
    ------
    ConfigError
        Naming ``key`` and the first pair out of order.
    """
    if len(items) < minimum:
        raise ConfigError(f"{key}: expected at least {minimum} values, got {list(items)}")
    for i, (low, high) in enumerate(zip(items[:-1], items[1:], strict=True)):
        if not low < high:
            raise ConfigError(
                f"{key}: expected strictly increasing values, got {list(items)} "
                f"({key}[{i}] = {low!r} is not below {key}[{i + 1}] = {high!r})"
            )


def sequence_checks(key: str, items: Sequence[Any], checks: Mapping[str, Any]) -> None:
    """The checks of a whole list declared on a config field (``increasing``), by name."""
    if checks.get("increasing"):
        check_increasing(key, items)
