"""``streamproc replay EVENTS``: backtest the detectors on a JSON-lines file."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from streamproc.alerts import Alert
from streamproc.errors import ConfigError
from streamproc.events import Rejection
from streamproc.logs import one_line
from streamproc.replay import replay, replay_engine
from streamproc.settings import load_settings


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run the detectors over a JSON-lines file of events",
        description="Read events as JSON lines (one event or an array per line), run them "
        "through the same engine as the worker, and write alerts as JSON lines.",
    )
    parser.add_argument("events", help="events file, or - for standard input")
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--out", type=Path, help="write alerts here (default: standard output)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on standard error (default: when it is a terminal)",
    )
    parser.add_argument(
        "--max-reports",
        type=int,
        default=100,
        help="report at most this many bad lines individually (default 100; all are counted)",
    )
    parser.set_defaults(func=_run)


def _open_events(stack: ExitStack, name: str) -> tuple[IO[bytes], int | None]:
    if name == "-":
        return sys.stdin.buffer, None
    try:
        handle = stack.enter_context(open(name, "rb"))  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"events file {name}: {exc.strerror or exc}") from exc
    return handle, os.fstat(handle.fileno()).st_size


def _lines(handle: IO[bytes], bar: tqdm[Any]) -> Iterator[bytes]:
    for line in handle:
        bar.update(len(line))
        yield line


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    engine = replay_engine(settings)
    tick_ms = (
        max(1, round(settings.arrival.tick_seconds * 1000)) if settings.arrival.enabled else None
    )
    reported = 0

    def on_rejection(line: int, rejection: Rejection) -> None:
        nonlocal reported
        reported += 1
        if reported <= args.max_reports:
            where = f"line {line}" + (f"[{rejection.index}]" if rejection.index is not None else "")
            report = f"{where}: {rejection.reason.value}: {rejection.message}"
            print(one_line(report), file=sys.stderr)

    with ExitStack() as stack:
        handle, size = _open_events(stack, args.events)
        out = stack.enter_context(open(args.out, "wb")) if args.out else sys.stdout.buffer
        bar = stack.enter_context(
            tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc="replay",
                disable=(not sys.stderr.isatty()) if args.progress is None else not args.progress,
                file=sys.stderr,
            )
        )

        def on_alert(alert: Alert) -> None:
            out.write(alert.to_json() + b"\n")

        summary = replay(
            _lines(handle, bar),
            engine,
            settings.limits,
            clock=lambda: time.time_ns() // 1_000_000,
            on_alert=on_alert,
            on_rejection=on_rejection,
            tick_ms=tick_ms,
        )
        out.flush()
    if reported > args.max_reports:
        print(f"... {reported - args.max_reports} more bad lines not shown", file=sys.stderr)
    print(summary.render(), file=sys.stderr)
    return 0
