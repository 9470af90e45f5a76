"""Reading the YAML configuration file, with errors that say where the file is wrong.

A file saved in another encoding, or holding a value YAML cannot build (an
integer of thousands of digits, the 30th of February), fails inside the
decoder or the YAML loader, before any key is known. The errors here still
name the key at fault, found by parsing the file's structure without building
its values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from streamproc.errors import ConfigError


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        text = raw.decode("utf-8", errors="replace")
        key = _key_where(text, _holds(len(raw[: exc.start].decode("utf-8"))))
        raise ConfigError(
            f"config file {path}: {key + ': ' if key else ''}not UTF-8 (byte "
            f"0x{raw[exc.start]:02x} at line {line}, column {column}); save the file as UTF-8"
        ) from exc


def _key_where(text: str, found: Callable[[yaml.Node], bool]) -> str | None:
    """The dotted key of the first scalar (key or value) of a YAML text that is ``found``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    todo: deque[tuple[list[str], yaml.Node | None]] = deque([([], root)])
    seen: set[int] = set()  # aliases share nodes; each is looked at once (no billion laughs)
    while todo:
        path, node = todo.popleft()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and found(node):
            return ".".join(path) or None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                todo += [([*path, str(key.value)], key), ([*path, str(key.value)], value)]
        elif isinstance(node, yaml.SequenceNode):
            todo += [([*path, str(i)], item) for i, item in enumerate(node.value)]
    return None


def _holds(index: int) -> Callable[[yaml.Node], bool]:
    return lambda node: node.start_mark.index <= index < node.end_mark.index


def _unreadable(node: yaml.Node) -> bool:
    loader = yaml.SafeLoader("")
    try:
        loader.construct_object(node, deep=True)
    except (ValueError, yaml.YAMLError):
        return True
    finally:
        loader.dispose()
    return False


def read_yaml(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; :class:`ConfigError` naming the line or key otherwise."""
    text = _read_text(path)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"config file {path}: nested too deeply") from exc
    except ValueError as exc:  # an integer of more digits than Python converts, 2026-02-30, ...
        key = _key_where(text, _unreadable)
        raise ConfigError(
            f"config file {path}: {key + ': ' if key else ''}cannot read the value: {exc}"
        ) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return loaded
