"""``streamproc worker``: the streaming worker (Faust) on the configured cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

import faust

from streamproc.app import StreamprocApp
from streamproc.settings import load_settings
from streamproc.topics import ensure_topics

log = logging.getLogger("streamproc.worker")


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the streaming worker",
        description="Consume feature and outcome events, run the drift detectors, and publish "
        "alerts and dead letters. Settings: --config FILE and STREAMPROC_* variables.",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    layout = asyncio.run(ensure_topics(settings))
    log.info("topics ready: %s", layout.partitions)
    app = StreamprocApp(settings)
    worker = faust.Worker(app.faust, loglevel=settings.log.level, quiet=True)
    worker.execute_from_commandline()
    return 0
