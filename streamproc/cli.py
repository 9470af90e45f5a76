"""The ``streamproc`` command line: one subcommand per job, each in the module it drives.

Each module in :data:`COMMANDS` exposes ``add_command(subparsers)``, which adds
its parser and sets ``func(args) -> int``. Errors of ours
(:class:`~streamproc.errors.StreamprocError`) end the program with their message
and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from streamproc import __version__
from streamproc.errors import StreamprocError

COMMANDS: tuple[str, ...] = (
    "streamproc.commands.config",
    "streamproc.commands.kafka",
    "streamproc.commands.replay",
    "streamproc.commands.worker",
    "streamproc.commands.demo",
    "streamproc.commands.alerts",
    "streamproc.commands.run_local",
    "streamproc.commands.route",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamproc", description="Streaming drift detection for ML models."
    )
    parser.add_argument("--version", action="version", version=f"streamproc {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except StreamprocError as exc:
        print(f"streamproc {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
