"""``streamproc alerts``: read the alerts topic, readably or as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamproc.alerts import from_json
from streamproc.connection import aiokafka_options
from streamproc.errors import KafkaSetupError
from streamproc.kafka_errors import translated
from streamproc.logs import one_line
from streamproc.settings import Settings, load_settings
from streamproc.summaries import summarize
from streamproc.topics import partition_counts


def add_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="print drift alerts from the alerts topic",
        description="Read the alerts topic from the beginning and print each alert: one "
        "readable line (model, stream, detector, change), or the alert's JSON with --json.",
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
    parser.add_argument("--json", action="store_true", help="print alerts as JSON lines")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_read(settings, follow=args.follow, as_json=args.json))
    return 0


async def _read(settings: Settings, *, follow: bool, as_json: bool) -> None:
    topic = settings.topics.alerts
    partitions = await _wait_for_partitions(settings, topic, follow)  # checks the connection
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings.kafka), group_id=None, enable_auto_commit=False
    )
    async with translated(settings.kafka):
        await consumer.start()
        try:
            await _print_records(consumer, topic, partitions, follow=follow, as_json=as_json)
        finally:
            await consumer.stop()


async def _print_records(
    consumer: AIOKafkaConsumer, topic: str, partitions: int, *, follow: bool, as_json: bool
) -> None:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    end = await consumer.end_offsets(tps)
    while True:
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                _print(record.value, as_json)
        positions = [await consumer.position(tp) for tp in tps]
        if not follow and all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
            return


async def _wait_for_partitions(settings: Settings, topic: str, follow: bool) -> int:
    """The alerts topic's partition count; with --follow, wait for the worker to create it."""
    while True:
        count = (await partition_counts(settings, [topic])).get(topic)
        if count:
            return count
        if not follow:
            raise KafkaSetupError(
                f"topics.alerts: there is no topic {topic!r} on the cluster yet (the worker "
                "creates it; --follow waits for it)"
            )
        await asyncio.sleep(1.0)


def _print(value: bytes | None, as_json: bool) -> None:
    if value is None:
        return
    if as_json:
        sys.stdout.write(value.decode() + "\n")
    else:
        try:
            line = summarize(from_json(value))
        except (ValueError, KeyError, TypeError) as exc:
            line = one_line(f"(unreadable alert: {exc})")
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
