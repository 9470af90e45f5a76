"""Durable detector state: crashes, failover, broker outages and graceful stops lose nothing.

Every test compares the alert ids on the alerts topic with ``streamproc replay``
over the same events: the uninterrupted answer. Duplicates are allowed after a
crash (at-least-once, same ids); after a graceful stop they are not.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import free_ports
from streamproc.events import EventKind
from streamproc.settings import Settings
from streamproc.topics import ensure_topics
from tests.integration.workers import (
    DRIFT_ONLY,
    QUICK_CHECKPOINTS,
    Cluster,
    WorkerProcess,
    demo_events,
    produce_events,
    read_all,
    replay_ids,
    spread_events,
    wait_for_processed,
    wait_until_consumed,
)
from tests.support.outage import HaltableKafka

pytestmark = pytest.mark.timeout(420)

FAST_CHECKPOINTS = {
    **QUICK_CHECKPOINTS,
    "STREAMPROC_WORKER_CHECKPOINT_EVENTS": "1500",
    "STREAMPROC_WORKER_SHUTDOWN_TIMEOUT_SECONDS": "20",
}


async def alert_ids(kafka: LocalKafka, topic: str) -> list[str]:
    return [orjson.loads(value)["alert_id"] for value in await read_all(kafka, topic)]


Events = list[tuple[EventKind, dict[str, object]]]


async def prepared(
    cluster: Cluster, tmp_path: Path, seconds: float
) -> tuple[Settings, Events, set[str]]:
    settings = cluster.settings(**FAST_CHECKPOINTS)
    await ensure_topics(settings)
    events = demo_events(seconds)
    expected = set(replay_ids(events, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 3
    return settings, events, expected


async def finish(kafka: LocalKafka, settings: Settings, worker: WorkerProcess) -> list[str]:
    """Wait until everything was processed, then return the alert ids on the topic."""
    topics = [settings.topics.features, settings.topics.outcomes]
    await wait_until_consumed(kafka, settings.kafka.group_id, topics, worker)
    return await alert_ids(kafka, settings.topics.alerts)


async def test_sigkill_at_random_points_loses_no_alert(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings, events, expected = await prepared(cluster, tmp_path, seconds=90)
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=1500))
    rng = random.Random(20261128)
    worker = cluster.start_worker(**FAST_CHECKPOINTS)
    done = 0
    for _ in range(3):
        done += rng.randrange(1000, 3000)
        await wait_for_processed(worker, done)
        worker.stop(signal.SIGKILL)
        worker = cluster.start_worker(**FAST_CHECKPOINTS)
        done = 0  # a new process counts from zero
    await producing
    ids = await finish(kafka, settings, worker)
    assert set(ids) == expected
    assert "recovery: partition" in worker.output()


async def test_survivor_takes_over_a_killed_workers_partitions(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = cluster.settings(**FAST_CHECKPOINTS)
    await ensure_topics(settings)
    events = spread_events()  # 40 models: both workers own partitions with data
    expected = set(replay_ids(events, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 40
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=2000))
    first = cluster.start_worker(**FAST_CHECKPOINTS)
    second = cluster.start_worker(**FAST_CHECKPOINTS)
    await wait_for_processed(first, 500)
    await wait_for_processed(second, 500)
    second.stop(signal.SIGKILL)
    await producing
    ids = await finish(kafka, settings, first)
    assert set(ids) == expected
    assert first.proc.poll() is None


async def test_sigterm_exits_cleanly_and_restart_neither_repeats_nor_loses(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings, events, expected = await prepared(cluster, tmp_path, seconds=90)
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=1500))
    worker = cluster.start_worker(**FAST_CHECKPOINTS)
    await wait_for_processed(worker, 4000)
    started = time.monotonic()
    code = worker.stop(signal.SIGTERM)
    elapsed = time.monotonic() - started
    assert code == 0, worker.output()[-3000:]
    assert elapsed < float(FAST_CHECKPOINTS["STREAMPROC_WORKER_SHUTDOWN_TIMEOUT_SECONDS"])
    assert "final checkpoint" in worker.output()
    worker = cluster.start_worker(**FAST_CHECKPOINTS)
    await producing
    await finish(kafka, settings, worker)
    # A resolved message shares its alert's id: count (id, status) pairs.
    published = [message_key(v) for v in await read_all(kafka, settings.topics.alerts)]
    replayed = [message_key(v) for v in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert {i for i, _ in published} == expected
    assert Counter(published) == Counter(replayed), "every message exactly once"


async def test_a_worker_that_joins_and_later_leaves_changes_no_alert(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    """Two rebalances mid-stream: partitions move to the newcomer (the first worker drops
    what it had fetched for them) and back when it leaves. Each side hands its revoked
    partitions over with a checkpoint, so no alert is published twice."""
    settings = cluster.settings(**FAST_CHECKPOINTS)
    await ensure_topics(settings)
    events = spread_events()  # 40 models: every partition has data
    replayed = replay_ids(events, tmp_path, **DRIFT_ONLY)
    expected = set(replayed)
    assert len(expected) >= 40
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=800))
    first = cluster.start_worker(**FAST_CHECKPOINTS)
    await wait_for_processed(first, 2000)
    second = cluster.start_worker(**FAST_CHECKPOINTS)
    await wait_for_processed(second, 1000)
    assert "partitions revoked" in first.output()
    assert second.stop(signal.SIGTERM) == 0, second.output()[-3000:]
    assert not producing.done(), "the second worker left after production ended"
    await producing
    ids = await finish(kafka, settings, first)
    assert set(ids) == expected
    assert Counter(ids) == Counter(replayed), "a rebalance repeated alerts"
    assert first.output().count("partitions assigned") >= 3
    assert "handover: partitions" in first.output() + second.output()


def message_key(value: bytes) -> tuple[str, str]:
    body = orjson.loads(value)
    return (body["alert_id"], body.get("status", "firing"))


@pytest.fixture
def own_broker() -> Iterator[HaltableKafka]:
    """A broker of this test's own, since the test stops it."""
    port, controller = free_ports(2)
    broker = HaltableKafka(port, controller)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_broker_outage_of_20_seconds_loses_nothing(
    own_broker: HaltableKafka, tmp_path: Path
) -> None:
    cluster = Cluster(own_broker, tmp_path)
    try:
        settings, events, expected = await prepared(cluster, tmp_path, seconds=60)
        half = len(events) // 2
        await produce_events(own_broker, settings, events[:half])
        worker = cluster.start_worker(**FAST_CHECKPOINTS)
        await wait_for_processed(worker, 1000)
        await asyncio.to_thread(own_broker.halt)
        await asyncio.sleep(20)  # the outage itself: nothing to await but time
        assert worker.proc.poll() is None, "the worker must ride out the outage"
        await asyncio.to_thread(own_broker.resume)
        await produce_events(own_broker, settings, events[half:])
        ids = await finish(own_broker, settings, worker)
        assert set(ids) == expected
    finally:
        for w in cluster.workers:
            w.stop(signal.SIGKILL)
