"""A checkpoint's offsets that do not fit the log (issue #12, item 5), on the real broker.

- Beyond the end offset: the source topic was re-created. The checkpoint's
  watermark must not make the worker skip every record of the new log.
- Below the log start: retention (here ``delete_records``) removed records the
  checkpoint did not cover. The worker logs the loss and continues from the log
  start; it must never jump to the log end, skipping records that still exist.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from streamproc.dev.localkafka import LocalKafka
from streamproc.events import EventKind
from streamproc.settings import Settings
from streamproc.topics import ensure_topics
from tests.integration.workers import (
    DRIFT_ONLY,
    QUICK_CHECKPOINTS,
    Cluster,
    Events,
    WorkerProcess,
    commit_offsets,
    end_offsets,
    produce_events,
    replay_ids,
    source_topics,
    spread_events,
    wait_for_alerts,
    wait_until_consumed,
)

pytestmark = pytest.mark.timeout(300)

CHECKPOINTS = QUICK_CHECKPOINTS
DELETED_PER_PARTITION = 50
GONE_SECONDS = 30.0


async def checkpointed_run(kafka: LocalKafka, cluster: Cluster, events: Events) -> Settings:
    """Produce ``events``, process them with a worker and stop it (final checkpoint)."""
    settings = cluster.settings(**CHECKPOINTS)
    await ensure_topics(settings)
    await produce_events(kafka, settings, events)
    worker = cluster.start_worker(**CHECKPOINTS)
    await wait_until_consumed(kafka, settings.kafka.group_id, source_topics(settings), worker)
    assert worker.stop(signal.SIGTERM) == 0, worker.output()[-3000:]
    return settings


async def recreate_sources(kafka: LocalKafka, settings: Settings) -> None:
    """Delete the source topics and create them again (empty, offsets from 0)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(source_topics(settings))
        deadline = time.monotonic() + GONE_SECONDS
        while set(source_topics(settings)) & set(await admin.list_topics()):
            assert time.monotonic() < deadline, "the source topics were not deleted"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await ensure_topics(settings)


async def delete_first_records(
    kafka: LocalKafka, settings: Settings, after: dict[TopicPartition, int]
) -> None:
    """Move each feature partition's log start ``DELETED_PER_PARTITION`` past ``after``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_records(
            {
                tp: RecordsToDelete(before_offset=offset + DELETED_PER_PARTITION)
                for tp, offset in after.items()
                if tp.topic == settings.topics.features
            }
        )
    finally:
        await admin.close()


async def surviving_features(kafka: LocalKafka, settings: Settings) -> Events:
    """Every feature event still in the log, partition by partition (per model in order)."""
    ends = await end_offsets(kafka, [settings.topics.features])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    events: Events = []
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                events += [(EventKind.FEATURE, orjson.loads(r.value)) for r in batch.get(tp, [])]
    finally:
        await consumer.stop()
    return events


async def alerts_of(
    kafka: LocalKafka, settings: Settings, expected: set[str], worker: WorkerProcess
) -> set[str]:
    ids = await wait_for_alerts(kafka, settings.topics.alerts, expected, worker)
    assert ids == expected, worker.output()[-3000:]
    return ids


async def test_a_watermark_beyond_the_end_of_a_recreated_topic_skips_nothing(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    events = spread_events()  # 600 per model, shifted from the 300th on
    before, after = events[: len(events) // 2], events[len(events) // 2 :][: 40 * 100]
    settings = await checkpointed_run(kafka, cluster, before)  # watermark ~3,000/partition
    await recreate_sources(kafka, settings)
    await produce_events(kafka, settings, after)  # ~1,000 per partition, offsets from 0
    expected = set(replay_ids(before + after, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 20

    worker = cluster.start_worker(**CHECKPOINTS)
    await alerts_of(kafka, settings, expected, worker)
    assert "is beyond the end offset" in worker.output()


async def test_a_watermark_below_the_log_start_continues_from_the_log_start(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    events = spread_events()
    half = len(events) // 2
    settings = await checkpointed_run(kafka, cluster, events[:half])
    watermarks = await end_offsets(kafka, source_topics(settings))
    await produce_events(kafka, settings, events[half:])
    # a previous owner processed everything, committed, and died before checkpointing;
    # then retention took the first records after the checkpoint
    await commit_offsets(kafka, settings, await end_offsets(kafka, source_topics(settings)))
    await delete_first_records(kafka, settings, watermarks)
    survivors = await surviving_features(kafka, settings)
    assert len(survivors) == half - 4 * DELETED_PER_PARTITION
    traffic = spread_events(models=40, per_model=2, seed=9)  # new records on every partition
    expected = set(replay_ids(events[:half] + survivors + traffic, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 40

    worker = cluster.start_worker(**CHECKPOINTS)
    await produce_events(kafka, settings, traffic)
    await alerts_of(kafka, settings, expected, worker)
    lost = f"{DELETED_PER_PARTITION} records"
    assert "deleted by retention" in worker.output()
    assert lost in worker.output()
