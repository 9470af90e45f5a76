"""Catch-up does not wait for traffic (issue #12, item 6).

A checkpoint behind the group's committed offset means a previous owner processed
records after its last checkpoint and then died. The next owner must re-process
them as soon as it is assigned the partition, not when the next record arrives:
on a quiet partition that may be never, and the tail's alerts would stay unsent.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from streamproc.dev.localkafka import LocalKafka
from streamproc.topics import ensure_topics
from tests.integration.workers import (
    DRIFT_ONLY,
    QUICK_CHECKPOINTS,
    Cluster,
    commit_offsets,
    end_offsets,
    produce_events,
    read_all,
    replay_ids,
    source_topics,
    spread_events,
    wait_for_alerts,
    wait_until_consumed,
)

pytestmark = pytest.mark.timeout(300)

CHECKPOINTS = QUICK_CHECKPOINTS


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
    ends = await end_offsets(kafka, source_topics(settings))
    await commit_offsets(kafka, settings, ends)  # the tail: committed, never checkpointed

    second = cluster.start_worker(**CHECKPOINTS)  # and no record is produced after this
    ids = await wait_for_alerts(kafka, settings.topics.alerts, expected, second)
    assert ids == expected, second.output()[-3000:]
    assert "up to the committed offset" in second.output()
