"""The streaming worker against the real broker: alerts, dead letters, the partition check."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streamproc.dev.localkafka import LocalKafka
from streamproc.events import EventKind
from streamproc.topics import ensure_topics
from tests.integration.conftest import create_topic
from tests.integration.workers import (
    DRIFT_ONLY,
    Cluster,
    demo_events,
    header,
    keyed_json,
    processed_events,
    produce,
    read_topic,
    replay_ids,
    wait_until_consumed,
)

pytestmark = pytest.mark.timeout(240)


async def test_drift_alerts_on_the_topic_equal_replay(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    # A shorter cooldown (so a 400-event stable span) lets the demo's alerts resolve
    # within the run: firing, resolved and model messages are all compared.
    env = {**DRIFT_ONLY, "STREAMPROC_ENGINE_COOLDOWN_EVENTS": "200"}
    settings = cluster.settings(**env)
    topics = settings.topics
    await ensure_topics(settings)
    events = demo_events()
    features = [body for kind, body in events if kind is EventKind.FEATURE]
    outcomes = [body for kind, body in events if kind is EventKind.OUTCOME]
    await produce(kafka, topics.features, keyed_json(features))
    await produce(kafka, topics.outcomes, keyed_json(outcomes))
    expected = replay_ids(events, tmp_path, **env)
    replayed = [
        orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()
    ]
    kinds = {(body["stream"]["kind"], body["status"]) for body in replayed}
    assert {
        ("value", "firing"),
        ("missing_rate", "firing"),
        ("error", "firing"),
        ("category", "firing"),
    } <= kinds, "all injected drifts detected"
    assert {("model", "firing"), ("model", "resolved"), ("value", "resolved")} <= kinds

    worker = cluster.start_worker(**env)
    await wait_until_consumed(
        kafka, settings.kafka.group_id, [topics.features, topics.outcomes], worker
    )
    alerts = await read_topic(kafka, topics.alerts, until=len(expected) + 1, timeout=10)
    published = [orjson.loads(value) for _, value, _ in alerts]

    def messages(bodies: list[dict[str, object]]) -> dict[object, list[tuple[object, ...]]]:
        """Per model, in order (Kafka keeps a key's order): everything but processing times."""
        by_model: dict[object, list[tuple[object, ...]]] = {}
        for body in bodies:
            kept = {k: v for k, v in body.items() if k not in ("detected_at", "resolved_at")}
            by_model.setdefault(body["model"], []).append(tuple(sorted(kept.items(), key=str)))
        return by_model

    assert len(published) == len(expected)
    assert messages(published) == messages(replayed)
    assert all(key == orjson.loads(value)["model"].encode() for key, value, _ in alerts)
    assert worker.proc.poll() is None


def malformed(rng: random.Random, i: int) -> tuple[bytes | None, str]:
    """One bad message of an assorted kind, with the reason the worker must give."""
    kind = i % 8
    if kind == 0:
        return b'{"model": "m", "features": {"a": 1', "invalid_json"
    if kind == 1:
        return b"", "empty"
    if kind == 2:
        return bytes(rng.getrandbits(8) | 0x80 for _ in range(40)), "invalid_json"
    if kind == 3:
        return orjson.dumps({"model": 7, "features": {"a": 1}}), "wrong_type"
    if kind == 4:
        return orjson.dumps({"model": "m", "features": {"a": [1, 2]}}), "wrong_type"
    if kind == 5:
        return orjson.dumps({"model": "m", "features": {"a": "x" * 5000}}), "too_large"
    if kind == 6:
        features = {f"f{j}": j for j in range(60)}
        return orjson.dumps({"model": "m", "features": features}), "too_many_features"
    return orjson.dumps({"features": {"a": 1}}), "missing_field"


async def test_malformed_messages_go_to_dead_letters_and_valid_ones_are_processed(
    kafka: LocalKafka, cluster: Cluster
) -> None:
    overrides = {
        "STREAMPROC_LIMITS_MAX_MESSAGE_BYTES": "4096",
        "STREAMPROC_LIMITS_MAX_FEATURES_PER_EVENT": "50",
    }
    settings = cluster.settings(**overrides)
    await ensure_topics(settings)
    rng = random.Random(3)
    messages: list[tuple[bytes | None, bytes | None]] = []
    reasons: list[str] = []
    valid = 0
    for i in range(3000):
        if i % 3 == 0:
            value, reason = malformed(rng, i // 3)
            messages.append((b"m", value))
            reasons.append(reason)
        else:
            event = {"model": f"m{i % 5}", "id": str(i), "features": {"a": rng.gauss(0, 1)}}
            messages.append((f"m{i % 5}".encode(), orjson.dumps(event)))
            valid += 1
    await produce(kafka, settings.topics.features, messages)

    worker = cluster.start_worker(**overrides)
    await wait_until_consumed(kafka, settings.kafka.group_id, [settings.topics.features], worker)
    dead = await read_topic(kafka, settings.topics.dead_letters, until=len(reasons) + 1, timeout=10)

    assert len(dead) == len(reasons) == 1000
    assert Counter(header(h, "streamproc.reason") for _, _, h in dead) == Counter(reasons)
    assert {header(h, "streamproc.source.topic") for _, _, h in dead} == {settings.topics.features}
    sources = {
        (header(h, "streamproc.source.partition"), header(h, "streamproc.source.offset"))
        for _, _, h in dead
    }
    assert len(sources) == 1000, "each dead letter names its own source message"
    original = {value for _, value in messages}
    changed = [(header(h, "streamproc.reason"), v[:60]) for _, v, h in dead if v not in original]
    assert not changed, "dead letters keep the original bytes"
    assert processed_events(worker.metrics_port) == valid
    assert worker.proc.poll() is None


async def test_worker_refuses_mismatched_partition_counts(
    kafka: LocalKafka, cluster: Cluster, kafka_admin: AIOKafkaAdminClient
) -> None:
    topics = cluster.settings().topics
    await create_topic(kafka_admin, topics.features, 2)
    await create_topic(kafka_admin, topics.outcomes, 3)
    worker = cluster.start_worker()
    code = worker.proc.wait(60)
    output = worker.output()
    assert code == 2
    assert f"topic {topics.features!r} has 2 partitions but {topics.outcomes!r} has 3" in output
    assert "Traceback" not in output
