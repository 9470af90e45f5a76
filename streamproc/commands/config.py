"""``streamproc check-config [FILE]``: validate a configuration before deploying it.

``--reference`` prints the Markdown reference of every setting (docs/configuration.md
embeds it; a test keeps the two equal).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from streamproc.settings import Settings, env_names, load_settings


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a YAML configuration (and STREAMPROC_* variables)",
        description="Validate a configuration file together with the STREAMPROC_* environment; "
        "print the effective settings (secrets masked) or the key at fault.",
    )
    parser.add_argument("file", type=Path, nargs="?", help="YAML file (default: none)")
    parser.add_argument(
        "--reference", action="store_true", help="print the reference of every setting"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.reference:
        sys.stdout.write(reference())
        return 0
    settings = load_settings(args.file)
    sys.stdout.write(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False))
    print(f"# configuration OK (hash {settings.config_hash()})")
    return 0


def _default(field: Any) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return "(see below)"
    if isinstance(value, tuple):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    if value is None:
        return "none"
    return f"`{value}`"


def _type(annotation: Any) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    for prefix in (
        "typing.",
        "pathlib.",
        "pydantic.types.",
        "streamproc.settings.arrival.",
        "streamproc.settings.",
    ):
        text = text.replace(prefix, "")
    return text.replace("SecretStr", "secret").replace("|", "\\|")


def reference() -> str:
    """Markdown tables: every section, key, environment variable, type, default, meaning.

    A nested section (``arrival.rate``) gets its own table after its parent's."""
    variables = {key: var for var, key in env_names().items()}
    out: list[str] = []
    for section, section_field in Settings.model_fields.items():
        _table(out, (section,), section_field.annotation, variables)
    return "\n".join(out)


def _table(
    out: list[str], path: tuple[str, ...], model: Any, variables: dict[tuple[str, ...], str]
) -> None:
    assert isinstance(model, type) and issubclass(model, BaseModel)
    dotted = ".".join(path)
    out.append(f"### `{dotted}`\n\n{(model.__doc__ or '').strip()}\n")
    out.append("| key | environment variable | type | default | meaning |")
    out.append("|---|---|---|---|---|")
    nested: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        var = variables.get((*path, name))
        env = f"`{var}`" if var else "(file only)"
        if _is_section(field.annotation):
            env, nested = "(see below)", [*nested, (name, field.annotation)]
        meaning = (field.description or "").replace("|", "\\|")
        out.append(
            f"| `{dotted}.{name}` | {env} | {_type(field.annotation)} | "
            f"{_default(field)} | {meaning} |"
        )
    out.append("")
    for name, annotation in nested:
        _table(out, (*path, name), annotation, variables)


def _is_section(annotation: Any) -> bool:
    """A nested model whose keys have variables of their own (not a file-only list)."""
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return False
    return any("tuple" not in str(f.annotation) for f in annotation.model_fields.values())
