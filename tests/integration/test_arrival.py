"""Silence against the real broker: a model that stops sending gets exactly one silence
alert within its window, and one ``recovered`` alert when it sends again.

The worker runs with a three-second silence window (floor = ceiling) and checks every
0.2 s, so the test takes seconds. Producers send paced events with a ``ts`` of now; a
second model keeps sending throughout and must never alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamproc.dev.localkafka import LocalKafka
from streamproc.settings import Settings
from streamproc.topics import ensure_topics
from tests.integration.workers import Cluster, WorkerProcess, wait_for_processed

pytestmark = pytest.mark.timeout(180)

WINDOW_S = 3.0
MARGIN_S = 2.0
"""Tick interval, batching and delivery to the alerts topic, with room to spare."""
FAST_SILENCE = {
    "STREAMPROC_ARRIVAL_SILENCE_FLOOR_SECONDS": str(WINDOW_S),
    "STREAMPROC_ARRIVAL_SILENCE_CEILING_SECONDS": str(WINDOW_S),
    "STREAMPROC_ARRIVAL_TICK_SECONDS": "0.2",
}
PER_SECOND = 20


@dataclass
class Sender:
    """Sends one event per model in ``sending`` every 1/PER_SECOND s; notes when each model's
    last event was acknowledged by the broker."""

    producer: AIOKafkaProducer
    topic: str
    sending: set[str] = field(default_factory=set)
    acked: dict[str, float] = field(default_factory=dict)
    count: int = 0

    async def run(self) -> None:
        while True:
            for model in sorted(self.sending):
                now_ms = time.time_ns() // 1_000_000
                body = {"model": model, "id": f"{model}-{self.count}", "ts": now_ms}
                body["features"] = {"x": self.count % 7}
                await self.producer.send_and_wait(self.topic, orjson.dumps(body), model.encode())
                self.acked[model] = time.time()
                self.count += 1
            await asyncio.sleep(1 / PER_SECOND)


@contextlib.asynccontextmanager
async def sending(kafka: LocalKafka, settings: Settings) -> AsyncIterator[Sender]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=0)
    await producer.start()
    sender = Sender(producer, settings.topics.features)
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()


@contextlib.asynccontextmanager
async def alerts_of(kafka: LocalKafka, settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(
        settings.topics.alerts,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def next_arrival_alert(
    consumer: AIOKafkaConsumer, worker: WorkerProcess, timeout: float
) -> dict[str, object] | None:
    """The next alert of kind ``arrival`` (drift alerts are skipped), or None at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, worker.output()[-3000:]
        batches = await consumer.getmany(timeout_ms=100, max_records=1)
        for records in batches.values():
            for record in records:
                alert: dict[str, object] = orjson.loads(record.value)
                if alert["stream"]["kind"] == "arrival":  # type: ignore[index]
                    return alert
    return None


async def test_a_model_that_stops_gets_one_silence_alert_and_one_recovered(
    kafka: LocalKafka, cluster: Cluster
) -> None:
    settings = cluster.settings(**FAST_SILENCE)
    await ensure_topics(settings)
    worker = cluster.start_worker(**FAST_SILENCE)
    async with sending(kafka, settings) as sender, alerts_of(kafka, settings) as alerts:
        sender.sending |= {"quiet", "steady"}
        await wait_for_processed(worker, 2 * PER_SECOND)  # the worker is consuming
        await asyncio.sleep(2.0)  # both models send for a while with the worker watching
        sender.sending.discard("quiet")
        await asyncio.sleep(0.2)  # let an in-flight send of "quiet" finish
        stopped = sender.acked["quiet"]

        silence = await next_arrival_alert(alerts, worker, WINDOW_S + MARGIN_S + 10)
        assert silence is not None, worker.output()[-3000:]
        assert silence["model"] == "quiet"
        assert silence["change"]["direction"] == "down"  # type: ignore[index]
        assert silence["severity"] == "critical"
        after = silence["detected_at"] / 1000 - stopped  # type: ignore[operator]
        assert WINDOW_S - 0.5 <= after <= WINDOW_S + MARGIN_S, after
        assert await next_arrival_alert(alerts, worker, 2.0) is None, "one alert per silence"

        sender.sending.add("quiet")
        recovered = await next_arrival_alert(alerts, worker, 10.0)
        assert recovered is not None, worker.output()[-3000:]
        assert recovered["model"] == "quiet"
        assert recovered["change"]["direction"] == "up"  # type: ignore[index]
        assert recovered["severity"] == "info"
        assert recovered["alert_id"] != silence["alert_id"]
        resolved = await next_arrival_alert(alerts, worker, 10.0)
        assert resolved is not None, "the silence alert's resolution follows its recovered"
        assert (resolved["status"], resolved["alert_id"]) == ("resolved", silence["alert_id"])
        assert resolved["resolved_at"] == recovered["detected_at"]
        assert await next_arrival_alert(alerts, worker, WINDOW_S + MARGIN_S) is None
    assert worker.proc.poll() is None


async def arrival_kinds(consumer: AIOKafkaConsumer, worker: WorkerProcess, seconds: float) -> list:
    """Every arrival, rate or freshness alert seen within ``seconds`` (drift alerts skipped)."""
    found = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert worker.proc.poll() is None, worker.output()[-3000:]
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                alert = orjson.loads(record.value)
                if alert["stream"]["kind"] in ("arrival", "rate", "freshness"):
                    found.append(alert)
    return found


@pytest.mark.timeout(420)
async def test_a_restart_after_two_minutes_down_gives_no_silence_alerts(
    kafka: LocalKafka, cluster: Cluster
) -> None:
    settings = cluster.settings(**FAST_SILENCE)
    await ensure_topics(settings)
    worker = cluster.start_worker(**FAST_SILENCE)
    async with sending(kafka, settings) as sender, alerts_of(kafka, settings) as alerts:
        sender.sending |= {"alpha", "beta", "gamma"}
        await wait_for_processed(worker, 3 * PER_SECOND)
        assert worker.stop() == 0
        await asyncio.sleep(120)  # the downtime itself, while every model keeps sending
        worker = cluster.start_worker(**FAST_SILENCE)
        await wait_for_processed(worker, 3 * 120 * PER_SECOND // 2)  # the backlog, at least
        found = await arrival_kinds(alerts, worker, 4 * WINDOW_S)
    assert found == [], "models that kept sending are not silent after a restart"


async def test_events_arriving_ten_minutes_late_give_one_freshness_alert(
    kafka: LocalKafka, cluster: Cluster
) -> None:
    settings = cluster.settings()
    await ensure_topics(settings)
    worker = cluster.start_worker()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=0)
    await producer.start()
    try:
        for i in range(300):  # a history of 1 s lag...
            ts = time.time_ns() // 1_000_000 - 1_000
            body = {"model": "batchjob", "id": f"on-time-{i}", "ts": ts, "features": {"x": i % 5}}
            await producer.send_and_wait(settings.topics.features, orjson.dumps(body), b"batchjob")
            await asyncio.sleep(0.01)
        await wait_for_processed(worker, 300)
        for i in range(50):  # ...then the upstream job gets stuck: 10 minutes late
            ts = time.time_ns() // 1_000_000 - 600_000
            body = {"model": "batchjob", "id": f"late-{i}", "ts": ts, "features": {"x": i % 5}}
            await producer.send_and_wait(settings.topics.features, orjson.dumps(body), b"batchjob")
    finally:
        await producer.stop()
    await wait_for_processed(worker, 350)
    async with alerts_of(kafka, settings) as alerts:
        found = await arrival_kinds(alerts, worker, 10.0)
    freshness = [a for a in found if a["stream"]["kind"] == "freshness"]
    assert len(freshness) == 1, found
    assert freshness[0]["change"]["direction"] == "up"
    assert str(freshness[0]["event_id"]).startswith("late-")


async def test_a_halving_rate_gives_one_rate_alert(kafka: LocalKafka, cluster: Cluster) -> None:
    """Rate buckets are in event time, so hours of traffic are produced in seconds."""
    quiet = {"STREAMPROC_ARRIVAL_SILENCE": "false", "STREAMPROC_ARRIVAL_FRESHNESS": "false"}
    settings = cluster.settings(**quiet)
    await ensure_topics(settings)
    start = time.time_ns() // 1_000_000 - 3 * 3_600_000
    events = []
    minute = 60_000
    for bucket in range(150):
        per_minute = 200 if bucket < 120 else 100
        for j in range(per_minute):
            ts = start + bucket * minute + j * minute // per_minute
            events.append({"model": "shop", "id": f"{bucket}-{j}", "ts": ts, "features": {"x": j}})
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for body in events:
            await producer.send(settings.topics.features, orjson.dumps(body), key=b"shop")
        await producer.flush()
    finally:
        await producer.stop()
    worker = cluster.start_worker(**quiet)
    await wait_for_processed(worker, len(events))
    async with alerts_of(kafka, settings) as alerts:
        found = await arrival_kinds(alerts, worker, 5.0)
    # The halved rate is the new normal after 2,000 events: the alert also resolves.
    assert [(a["stream"]["kind"], a["status"]) for a in found] == [
        ("rate", "firing"),
        ("rate", "resolved"),
    ], found
    assert found[0]["alert_id"] == found[1]["alert_id"]
    assert found[0]["change"]["direction"] == "down"
    bucket = int(str(found[0]["event_id"]).split("-")[0])
    assert 120 <= bucket <= 125, "within a few buckets of the halving"
