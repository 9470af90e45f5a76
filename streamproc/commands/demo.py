"""``streamproc demo``: produce the demo scenario to Kafka in real time, or write it to a file."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streamproc.connection import aiokafka_options
from streamproc.demo import SCHEDULE, DemoEvent, scenario
from streamproc.errors import ConfigError
from streamproc.events import EventKind
from streamproc.kafka_errors import translated
from streamproc.settings import Settings, load_settings
from streamproc.topics import ensure_topics


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="produce demo events with scheduled, announced drifts",
        description="Produce feature and outcome events for a few models, with drifts at "
        "announced times (a mean shift, a missing-rate jump, an error-rate jump) and arrival "
        "changes (a model that falls silent for a while, one whose rate halves).",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument(
        "--rate", type=float, default=60.0, help="feature events per second (default 60)"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds of events")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--out", type=Path, help="write the events as JSON lines here instead of producing them"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.rate <= 0:
        raise ConfigError("--rate must be positive")
    events = scenario(args.rate, args.seed, start_ms=time.time_ns() // 1_000_000)
    if args.duration is not None:
        events = itertools.takewhile(lambda e: e.at_seconds < args.duration, events)
    if args.out is not None:
        if args.duration is None:
            raise ConfigError("--out needs --duration (the scenario is endless)")
        with args.out.open("wb") as out:
            for event in events:
                out.write(orjson.dumps(event.body) + b"\n")
        return 0
    settings = load_settings(args.config)
    _announce()
    asyncio.run(_produce(settings, events))
    return 0


def _announce() -> None:
    for drift in SCHEDULE:
        print(f"demo: at {drift.at_seconds:>4.0f}s {drift.model}: {drift.description}", flush=True)


async def _produce(settings: Settings, events: Iterator[DemoEvent]) -> None:
    await ensure_topics(settings)  # checks the connection first
    producer = AIOKafkaProducer(**aiokafka_options(settings.kafka), linger_ms=5)
    async with translated(settings.kafka):
        await producer.start()
        try:
            await _send(settings, producer, events)
        finally:
            await producer.stop()
            print("demo: stopped", file=sys.stderr)


async def _send(
    settings: Settings, producer: AIOKafkaProducer, events: Iterator[DemoEvent]
) -> None:
    """In real time: each event at its offset from the start, drifts announced as they begin."""
    topic = {
        EventKind.FEATURE: settings.topics.features,
        EventKind.OUTCOME: settings.topics.outcomes,
    }
    pending = list(SCHEDULE)
    started = time.monotonic()
    for event in events:
        delay = event.at_seconds - (time.monotonic() - started)
        if delay > 0:
            await producer.flush()
            await asyncio.sleep(delay)
        while pending and event.at_seconds >= pending[0].at_seconds:
            drift = pending.pop(0)
            print(f"demo: now {drift.model}: {drift.description}", flush=True)
        await producer.send(topic[event.kind], orjson.dumps(event.body), key=event.model.encode())
