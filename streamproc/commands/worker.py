"""``streamproc worker``: the streaming worker (Faust) on the configured cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from streamproc.logs import setup_logging
from streamproc.settings import load_settings
from streamproc.supervisor import cores, run_supervised
from streamproc.topics import ensure_topics
from streamproc.worker import WorkerRuntime

log = logging.getLogger("streamproc.worker")


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the streaming worker",
        description="Consume feature and outcome events, run the drift detectors, and publish "
        "alerts and dead letters. Settings: --config FILE and STREAMPROC_* variables.",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="override log.format (default text)"
    )
    parser.add_argument(
        "--processes",
        type=_processes,
        metavar="N|auto",
        help="worker processes under one supervisor (auto: one per usable core); "
        "overrides worker.processes (default 1: a single worker, no supervisor)",
    )
    parser.set_defaults(func=_run)


def _processes(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1 or auto, got {text!r}")
    return count


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.log_format:
        settings = settings.model_copy(
            update={"log": settings.log.model_copy(update={"format": args.log_format})}
        )
    setup_logging(settings.log)
    layout = asyncio.run(ensure_topics(settings))
    log.info(
        "topics ready: %s (created: %s); configuration %s",
        layout.partitions,
        ", ".join(layout.created) or "none",
        settings.config_hash(),
    )
    processes = args.processes or settings.worker.processes
    count = cores() if processes == "auto" else int(processes)
    if count > 1:
        return run_supervised(settings, count, _passed_on(args))
    return WorkerRuntime(settings, partitions=layout.partitions[settings.topics.features]).run()


def _passed_on(args: argparse.Namespace) -> list[str]:
    """The options each child of the supervisor gets too."""
    argv = ["--config", str(args.config)] if args.config else []
    return [*argv, "--log-format", args.log_format] if args.log_format else argv
