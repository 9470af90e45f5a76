"""``streamproc check-config FILE``: validate a configuration before deploying it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamproc.settings import load_settings


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a YAML configuration (and STREAMPROC_* variables)",
        description="Validate a configuration file together with the STREAMPROC_* environment; "
        "prints the effective settings (secrets masked) or the key at fault.",
    )
    parser.add_argument("file", type=Path, nargs="?", help="YAML file (default: none)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    print(f"configuration OK (hash {settings.config_hash()})")
    return 0
