"""A poison model on a real worker: its records are dead-lettered, everything else goes on.

The worker is the real runtime (tests/integration/poison_worker.py) whose detector factory
raises for one model's streams. That model's every event must become an ``internal_error``
dead letter; the other models' alerts must equal ``streamproc replay``'s, across a restart
that restores their state from the checkpoint; and the worker must neither stop nor fail to
start again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.scrape import scrape, total
from streamproc.topics import ensure_topics
from tests.integration.workers import (
    DRIFT_ONLY,
    Cluster,
    end_offsets,
    header,
    produce_events,
    read_all,
    read_topic,
    replay_ids,
    spread_events,
    wait_until_consumed,
)

pytestmark = pytest.mark.timeout(300)

POISON = "model-3"
LAUNCHER = [sys.executable, str(Path(__file__).with_name("poison_worker.py")), POISON]


def internal_errors(port: int) -> float:
    return total(scrape(port), "streamproc_internal_errors_total", stage="event")


async def test_a_model_whose_detectors_raise_is_dead_lettered_and_the_rest_equals_replay(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = cluster.settings(**DRIFT_ONLY)
    topics = settings.topics
    await ensure_topics(settings)
    events = spread_events(models=8, per_model=600)
    half = len(events) // 2  # every model's shift lies in the second half
    poisoned = sum(1 for _, body in events if body["model"] == POISON)
    replay_ids(events, tmp_path, **DRIFT_ONLY)
    expected = {
        alert["alert_id"]
        for alert in map(orjson.loads, (tmp_path / "alerts.jsonl").read_bytes().splitlines())
        if alert["model"] != POISON
    }
    assert len(expected) >= 7, "every healthy model alerts"

    await produce_events(kafka, settings, events[:half])
    first = cluster.start_worker(command=LAUNCHER, **DRIFT_ONLY)
    await wait_until_consumed(kafka, settings.kafka.group_id, [topics.features], first)
    assert first.proc.poll() is None, "the worker keeps running"
    assert internal_errors(first.metrics_port) >= poisoned // 2  # more if a rebalance repeats
    assert first.stop() == 0

    second = cluster.start_worker(command=LAUNCHER, **DRIFT_ONLY)
    await produce_events(kafka, settings, events[half:])
    await wait_until_consumed(kafka, settings.kafka.group_id, [topics.features], second)
    assert second.proc.poll() is None, "a restart does not crash"

    alerts = [orjson.loads(value) for value in await read_all(kafka, topics.alerts)]
    assert {a["alert_id"] for a in alerts} == expected
    assert all(a["model"] != POISON for a in alerts)
    ends = await end_offsets(kafka, [topics.dead_letters])  # flushed before the commits
    dead = await read_topic(kafka, topics.dead_letters, until=sum(ends.values()), timeout=30)
    assert {header(h, "streamproc.reason") for _, _, h in dead} == {"internal_error"}
    assert {key for key, _, _ in dead} == {POISON.encode()}
    sources = {
        (header(h, "streamproc.source.partition"), header(h, "streamproc.source.offset"))
        for _, _, h in dead
    }
    assert len(sources) == poisoned, "every record of the poisoned model"
    assert all(orjson.loads(value)["model"] == POISON for _, value, _ in dead)
    log = first.output() + second.output()
    assert "internal_error" in log and "RuntimeError: poisoned detector factory" in log
    assert "Traceback" in log, "the rejection line carries the traceback"
    assert f"model {POISON!r}: state reset" in log
