"""Real ``streamproc worker`` processes for integration tests, and helpers to read topics.

Workers run as subprocesses exactly as operators run them (the CLI, settings from
``STREAMPROC_*`` variables), so tests can stop them with SIGTERM or SIGKILL. Each
test gets its own topics and consumer group, named from a random prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from streamproc.demo import scenario
from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import (
    Timeout,
    child_env,
    exited,
    free_ports,
    spawn,
    streamproc_command,
    terminate,
    wait_until_async,
)
from streamproc.dev.scrape import scraped_total
from streamproc.events import EventKind
from streamproc.settings import Settings, load_settings

STOP_SECONDS = 30.0
Events = list[tuple[EventKind, dict[str, object]]]
DRIFT_ONLY = {"STREAMPROC_ARRIVAL_ENABLED": "false"}
"""For tests that compare the worker's alerts with ``replay``'s: arrival alerts are driven
by the worker's wall clock (silence) and processing time (freshness), which a replay of the
same events cannot reproduce, so those tests watch drift alone (docs/arrival.md)."""
QUICK_CHECKPOINTS = {
    "STREAMPROC_WORKER_CHECKPOINT_INTERVAL_SECONDS": "1",
    "STREAMPROC_WORKER_SESSION_TIMEOUT_SECONDS": "6",
    **DRIFT_ONLY,
}
"""Checkpoints every second and a short session: recovery tests need no long waits."""


@dataclass
class WorkerProcess:
    """One running worker; its output goes to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_SECONDS) -> int:
        return terminate(self.proc, timeout, sig)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Cluster:
    """Per-test names and settings on the session's broker."""

    kafka: LocalKafka
    tmp: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "STREAMPROC_KAFKA_GROUP_ID": f"{self.prefix}-group",
            "STREAMPROC_TOPICS_FEATURES": f"{self.prefix}-features",
            "STREAMPROC_TOPICS_OUTCOMES": f"{self.prefix}-outcomes",
            "STREAMPROC_TOPICS_ALERTS": f"{self.prefix}-alerts",
            "STREAMPROC_TOPICS_DEAD_LETTERS": f"{self.prefix}-dead-letters",
            "STREAMPROC_TOPICS_PARTITIONS": "4",
            "STREAMPROC_WORKER_DATA_DIR": str(self.tmp / "worker-data"),
        }
        env.update(overrides)
        return env

    def settings(self, **overrides: str) -> Settings:
        return load_settings(environ=self.env(**overrides))

    def start_worker(
        self, *args: str, command: list[str] | None = None, **overrides: str
    ) -> WorkerProcess:
        """``streamproc worker ARGS``, or ``command`` (a launcher of the same runtime)."""
        metrics_port = free_ports(1)[0]
        env = child_env(self.env(STREAMPROC_METRICS_PORT=str(metrics_port), **overrides))
        log = self.tmp / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            proc = spawn(command or streamproc_command("worker", *args), env, out)
        worker = WorkerProcess(proc, log, metrics_port)
        self.workers.append(worker)
        return worker


async def produce(
    kafka: LocalKafka, topic: str, messages: list[tuple[bytes | None, bytes | None]]
) -> None:
    """Send (key, value) pairs in order and wait until all are acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def keyed_json(events: list[dict[str, object]]) -> list[tuple[bytes | None, bytes | None]]:
    return [(str(e["model"]).encode(), orjson.dumps(e)) for e in events]


async def read_topic(
    kafka: LocalKafka, topic: str, *, until: int, timeout: float = 120.0
) -> list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]]:
    """Read a topic from the start until ``until`` records arrived (or the timeout passed)."""
    records: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
    async with contextlib.aclosing(_records(kafka, topic, timeout)) as stream:
        async for record in stream:
            records.append((record.key, record.value, list(record.headers)))
            if len(records) >= until:
                break
    return records


async def _records(kafka: LocalKafka, topic: str, timeout: float) -> AsyncIterator[Any]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        await _assign_all(consumer, kafka, topic)
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    yield record
    finally:
        await consumer.stop()


async def _assign_all(consumer: AIOKafkaConsumer, kafka: LocalKafka, topic: str) -> None:
    while topic not in await consumer.topics():
        await asyncio.sleep(0.1)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        [meta] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    consumer.assign([TopicPartition(topic, p["partition"]) for p in meta["partitions"]])


async def end_offsets(kafka: LocalKafka, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        try:
            metas = await admin.describe_topics(topics)
        finally:
            await admin.close()
        tps = [TopicPartition(m["topic"], p["partition"]) for m in metas for p in m["partitions"]]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def wait_until_consumed(
    kafka: LocalKafka, group: str, topics: list[str], worker: WorkerProcess, timeout: float = 120.0
) -> None:
    """Wait until the group's committed offsets reach the topics' ends (all processed)."""
    ends = await end_offsets(kafka, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                committed = {}  # the group coordinator is still being set up
            done = all(
                end == 0 or (tp in committed and committed[tp].offset >= end)
                for tp, end in ends.items()
            )
            if done:
                return
            if worker.proc.poll() is not None:
                raise AssertionError(f"the worker exited:\n{worker.output()[-3000:]}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"not all consumed: committed={committed} ends={ends}\n"
                    f"{worker.output()[-3000:]}"
                )
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


def header(headers: list[tuple[str, bytes]], name: str) -> str:
    return dict(headers)[name].decode()


def demo_events(seconds: float = 60.0) -> list[tuple[EventKind, dict[str, object]]]:
    # Without the labelled model: recovery tests skew the topics beyond its label delay
    # (labels have their own, tests/integration/test_labels_recovery.py).
    events = scenario(rate=100, seed=11, start_ms=1_764_000_000_000, labelled=False)
    return [(e.kind, e.body) for e in itertools.takewhile(lambda e: e.at_seconds < seconds, events)]


def spread_events(models: int = 40, per_model: int = 600, seed: int = 5) -> Events:
    """Feature events of many models, so that every partition has some, each model's one
    feature shifting by 3 sigma half-way: one value alert per model."""
    rng = random.Random(seed)
    events: Events = []
    for i in range(per_model):
        shift = 3.0 if i >= per_model // 2 else 0.0
        for m in range(models):
            body = {"model": f"model-{m}", "id": f"{m}-{i}", "features": {"x": rng.gauss(shift, 1)}}
            events.append((EventKind.FEATURE, body))
    return events


def replay_ids(
    events: list[tuple[EventKind, dict[str, object]]], tmp: Path, **overrides: str
) -> list[str]:
    """Alert ids from the ``streamproc replay`` command on the same events, with ``overrides``
    as ``STREAMPROC_*`` variables."""
    source, out = tmp / "events.jsonl", tmp / "alerts.jsonl"
    source.write_bytes(b"".join(orjson.dumps(body) + b"\n" for _, body in events))
    subprocess.run(
        streamproc_command("replay", str(source), "--out", str(out)),
        check=True,
        capture_output=True,
        env=child_env(overrides),
    )
    return [orjson.loads(line)["alert_id"] for line in out.read_bytes().splitlines()]


async def produce_events(
    kafka: LocalKafka,
    settings: Settings,
    events: list[tuple[EventKind, dict[str, object]]],
    per_second: float | None = None,
) -> None:
    """Produce events to their topics in order, keyed by model; paced when ``per_second``."""
    topic = {
        EventKind.FEATURE: settings.topics.features,
        EventKind.OUTCOME: settings.topics.outcomes,
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        futures = []
        for i, (kind, body) in enumerate(events):
            if per_second is not None and i % 100 == 0:
                await asyncio.sleep(max(0.0, started + i / per_second - loop.time()))
            key = str(body["model"]).encode()
            futures.append(await producer.send(topic[kind], orjson.dumps(body), key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(kafka: LocalKafka, topic: str) -> list[bytes]:
    """Every value on a topic now (up to its end offsets)."""
    ends = await end_offsets(kafka, [topic])
    total = sum(ends.values())
    if total == 0:
        return []
    return [value for _, value, _ in await read_topic(kafka, topic, until=total, timeout=60)]


def processed_events(port: int) -> int:
    """The worker's own count of accepted events, read from its /metrics (0 until it answers)."""
    return round(scraped_total(port, "streamproc_events_total"))


async def wait_for_processed(worker: WorkerProcess, count: int, timeout: float = 120.0) -> None:
    """Wait until the worker reports at least ``count`` processed events."""
    try:
        await wait_until_async(
            lambda: processed_events(worker.metrics_port) >= count,
            timeout,
            f"the worker to process {count} events",
            interval=0.1,
            alive=exited(worker.proc, "the worker"),
        )
    except Timeout as exc:
        raise AssertionError(f"{exc}:\n{worker.output()[-3000:]}") from None


def source_topics(settings: Settings) -> list[str]:
    return [settings.topics.features, settings.topics.outcomes]


async def commit_offsets(
    kafka: LocalKafka, settings: Settings, offsets: dict[TopicPartition, int]
) -> None:
    """Commit ``offsets`` for the worker's group, as a previous owner that processed up to
    there but died before checkpointing would have (the group must have no member now)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=settings.kafka.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def wait_for_alerts(
    kafka: LocalKafka, topic: str, expected: set[str], worker: WorkerProcess, timeout: float = 120
) -> set[str]:
    """The alert ids on ``topic`` once they include ``expected`` (or the timeout passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        ids = {orjson.loads(value)["alert_id"] for value in await read_all(kafka, topic)}
        if ids >= expected or loop.time() > deadline:
            return ids
        if worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.output()[-3000:]}")
        await asyncio.sleep(0.5)
