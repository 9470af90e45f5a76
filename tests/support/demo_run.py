"""The demo scenario (streamproc.demo) replayed through the engine, deterministically.

Used by the golden-id test and by the documentation examples test: the example alerts
and log lines of README.md and docs/alerts.md are this run's output, regenerated with
``make docs-examples`` (tests/support/docs_examples.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson

from streamproc.alerts import Alert
from streamproc.demo import scenario
from streamproc.replay import replay, replay_engine
from streamproc.settings import Settings

START_MS = 1_764_324_000_000
"""Event time of the demo's first event (2025-11-28 10:00 UTC)."""
RATE = 60.0
"""The demo's default rate (``streamproc demo --rate``)."""
SECONDS = 120.0
"""Long enough for every change of the demo's schedule to be reported."""


def event_lines(rate: float = RATE, seconds: float = SECONDS) -> list[bytes]:
    """The demo's events as JSON lines, as ``streamproc replay`` reads them."""
    events = itertools.takewhile(
        lambda e: e.at_seconds < seconds, scenario(rate, seed=7, start_ms=START_MS)
    )
    return [orjson.dumps(e.body, option=orjson.OPT_SORT_KEYS) for e in events]


def run(lines: list[bytes]) -> list[Alert]:
    """Replay ``lines`` with default settings, as ``streamproc replay`` does; the detection
    time is the event time of the line being read, so the output is the same every run."""
    settings = Settings()
    engine = replay_engine(settings)
    now = [START_MS]

    def timed() -> Iterator[bytes]:
        for line in lines:
            ts = orjson.loads(line).get("ts")
            if isinstance(ts, int):
                now[0] = ts
            yield line

    alerts: list[Alert] = []
    tick_ms = round(settings.arrival.tick_seconds * 1000)
    replay(
        timed(),
        engine,
        settings.limits,
        clock=lambda: now[0],
        on_alert=alerts.append,
        on_rejection=lambda number, rejection: None,
        tick_ms=tick_ms,
    )
    return alerts
