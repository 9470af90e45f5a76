"""Catch-up does not wait for traffic (issue #12, item 6).

A checkpoint behind the group's committed offset means a previous owner processed
records after its last checkpoint and then died. The next owner must re-process
them as soon as it is assigned the partition, not when the next record arrives:
on a quiet partition that may be never, and the tail's alerts would stay unsent.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata

from streamproc.localkafka import LocalKafka
from streamproc.settings import Settings
from streamproc.topics import ensure_topics
from tests.integration.workers import (
    DRIFT_ONLY,
    Cluster,
    WorkerProcess,
    end_offsets,
    produce_events,
    read_all,
    replay_ids,
    spread_events,
    wait_until_consumed,
)

pytestmark = pytest.mark.timeout(300)

CHECKPOINTS = {
    "STREAMPROC_WORKER_CHECKPOINT_INTERVAL_SECONDS": "1",
    "STREAMPROC_WORKER_SESSION_TIMEOUT_SECONDS": "6",
    **DRIFT_ONLY,
}
ALERTS_SECONDS = 120.0


def source_topics(settings: Settings) -> list[str]:
    return [settings.topics.features, settings.topics.outcomes]


async def commit_to_the_end(kafka: LocalKafka, settings: Settings) -> None:
    """Commit the group's offsets at the topics' ends, as a previous owner that processed
    everything but died before checkpointing would have (the group has no member now)."""
    ends = await end_offsets(kafka, source_topics(settings))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=settings.kafka.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
    finally:
        await consumer.stop()


async def wait_for_alerts(
    kafka: LocalKafka, topic: str, expected: set[str], worker: WorkerProcess
) -> set[str]:
    """The alert ids on ``topic`` once they include ``expected`` (or the timeout passed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ALERTS_SECONDS
    while True:
        ids = {orjson.loads(value)["alert_id"] for value in await read_all(kafka, topic)}
        if ids >= expected or loop.time() > deadline:
            return ids
        if worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited:\n{worker.output()[-3000:]}")
        await asyncio.sleep(0.5)


async def test_a_quiet_partitions_tail_is_processed_without_new_records(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = cluster.settings(**CHECKPOINTS)
    await ensure_topics(settings)
    events = spread_events()  # every model shifts half-way: its alert lies in the tail
    half = len(events) // 2
    expected = set(replay_ids(events, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 40
    await produce_events(kafka, settings, events[:half])
    first = cluster.start_worker(**CHECKPOINTS)
    await wait_until_consumed(kafka, settings.kafka.group_id, source_topics(settings), first)
    assert first.stop(signal.SIGTERM) == 0, first.output()[-3000:]  # final checkpoint
    assert not await read_all(kafka, settings.topics.alerts), "no alert before the shift"
    await produce_events(kafka, settings, events[half:])
    await commit_to_the_end(kafka, settings)  # the tail: committed, never checkpointed

    second = cluster.start_worker(**CHECKPOINTS)  # and no record is produced after this
    ids = await wait_for_alerts(kafka, settings.topics.alerts, expected, second)
    assert ids == expected, second.output()[-3000:]
    assert "up to the committed offset" in second.output()
