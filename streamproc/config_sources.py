"""Where settings come from: the environment and the YAML file, as pydantic-settings sources.

:class:`~streamproc.settings.Settings` is a pydantic-settings ``BaseSettings``; these two
sources replace its stock ones to keep what ours adds: a variable that names no setting is
refused, a file that cannot be parsed still gets an error naming the key, and every
validation error names the variable or the file it came from (:func:`describe`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from streamproc.config_file import read_yaml
from streamproc.errors import ConfigError

ENV_PREFIX = "STREAMPROC_"
_log = logging.getLogger(__name__)


DEPRECATED_ENV: dict[str, tuple[str, ...]] = {
    f"{ENV_PREFIX}ARRIVAL_{section.upper()}": ("arrival", section, "enabled")
    for section in ("silence", "rate", "freshness")
}
"""Names that still work, with a deprecation line in the log: the arrival switches before
their sections were nested (now ``STREAMPROC_ARRIVAL_<SECTION>_ENABLED``)."""


class EnvironmentSource(PydanticBaseSettingsSource):
    """``STREAMPROC_*`` variables. The nested delimiter is ``_``, as in the names before
    pydantic-settings; since field names hold ``_`` too, a name is looked up in ``names``
    (:func:`~streamproc.settings.env_names`) rather than split, which also refuses names
    that are not settings."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        environ: Mapping[str, str],
        names: Mapping[str, tuple[str, ...]],
    ) -> None:
        super().__init__(settings_cls)
        self.environ, self.names = environ, names
        self.origins: dict[tuple[str, ...], str] = {}
        """The variable behind each key set here, for error messages."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every variable at once

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for var, value in self.environ.items():
            if not var.startswith(ENV_PREFIX) or var == f"{ENV_PREFIX}CONFIG":
                continue
            path = self.names.get(var) or DEPRECATED_ENV.get(var)
            if path is None:
                raise ConfigError(f"unknown environment variable {var} (see docs/configuration.md)")
            if var in DEPRECATED_ENV:
                name = f"{ENV_PREFIX}{'_'.join(path)}".upper()
                _log.warning("environment variable %s is deprecated: use %s", var, name)
            node: dict[str, Any] = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
            self.origins[path] = var
        return out


class YamlFileSource(PydanticBaseSettingsSource):
    """The YAML file (``--config FILE`` or ``STREAMPROC_CONFIG``), read by
    :func:`~streamproc.config_file.read_yaml`, whose errors name the key even when the
    file cannot be parsed into values."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads the whole file

    def __call__(self) -> dict[str, Any]:
        return read_yaml(self.path) if self.path is not None else {}


def config_path(path: Path | str | None, environ: Mapping[str, str]) -> Path | None:
    if path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        path = environ[f"{ENV_PREFIX}CONFIG"]
    return None if path is None else Path(path)


def merge(base: dict[str, Any], top: Mapping[str, Any], where: str, key: str = "") -> None:
    """Deep-merge ``top`` (the environment) into ``base`` (the file); ``top`` wins."""
    for name, value in top.items():
        dotted = f"{key}.{name}" if key else name
        current = base.get(name)
        if not isinstance(value, dict) or current is None:
            base[name] = value
        elif isinstance(current, dict):
            merge(current, value, where, dotted)
        else:
            raise ConfigError(f"{where}: {dotted} must be a mapping")


def describe(exc: ValidationError, origin: str, origins: Mapping[tuple[str, ...], str]) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        where = origin
        for i in range(len(loc), 0, -1):
            if loc[:i] in origins:
                where = f"environment variable {origins[loc[:i]]}"
                break
        dotted = ".".join(loc)
        lines.append(f"{where}: {dotted}: {err['msg']}" if dotted else f"{where}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
