"""``streamproc route`` against a real Alertmanager: labels, an outage, resolution."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from datetime import datetime
from typing import Any

from streamproc.alerts import Status
from streamproc.dev.localkafka import LocalKafka
from streamproc.domain import StreamKind
from streamproc.route.alertmanager import rfc3339
from streamproc.settings.alerts import RollupSettings
from tests.integration.alertmanager_fixtures import (  # noqa: F401 (a fixture)
    AlertmanagerFactory,
    AlertmanagerServer,
    alertmanager_factory,
)
from tests.integration.conftest import ProducerFactory, TopicFactory
from tests.integration.route_harness import (
    alert,
    encode,
    notifications,
    running_router,
    until,
)
from tests.unit.test_lifecycle import engine, feed, rows

OUTAGE_SECONDS = 20.0


def by_id(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["annotations"]["alert_id"]: a for a in alerts}


def same_millisecond(shown: str, epoch_ms: int) -> bool:
    """Whether Alertmanager's time is the one we sent: it prints RFC 3339 as Go does,
    without trailing zeros (``13.68Z`` for 13.680), so compare instants, not text."""
    return datetime.fromisoformat(shown) == datetime.fromisoformat(rfc3339(epoch_ms))


def holds(am: AlertmanagerServer, ids: set[str]) -> bool:
    return ids <= set(by_id(am.alerts()))


async def test_alerts_reach_alertmanager_through_an_outage_and_resolve(
    kafka: LocalKafka,
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    alertmanager_factory: AlertmanagerFactory,  # noqa: F811
) -> None:
    alerts_topic, dead = await topic_factory(2), await topic_factory()
    producer = await producer_factory()
    before = [alert(f"before-{n}", model=f"m{n}", name="amount") for n in range(3)]
    during = [alert(f"during-{n}", model=f"m{n}", name="age") for n in range(4)]
    async with contextlib.AsyncExitStack() as stack:
        notified = await stack.enter_async_context(notifications())
        am = alertmanager_factory(notified.url)
        router = await stack.enter_async_context(
            running_router(
                kafka, alerts_topic, dead, alertmanager_urls=am.url, group_delay_seconds="0"
            )
        )
        for body in before:
            await producer.send_and_wait(alerts_topic, encode(body), key=body["model"].encode())
        await until(lambda: holds(am, {b["alert_id"] for b in before}), what="first alerts")
        first = by_id(am.alerts())["before-0"]
        assert first["labels"] == {
            "alertname": "StreamprocDrift",
            "model": "m0",
            "stream_kind": "value",
            "stream": "amount",
            "detector": "adwin",
            "severity": "critical",
        }
        assert first["annotations"]["summary"].startswith("[CRITICAL] model=m0 value:amount")
        assert same_millisecond(first["startsAt"], before[0]["detected_at"])

        # Alertmanager down for 20 s while alerts arrive: the router retries.
        am.stop()
        down_since = time.monotonic()
        for body in during:
            await producer.send_and_wait(alerts_topic, encode(body), key=body["model"].encode())
        await until(lambda: router.count("failed", "alertmanager") >= 1, what="a failed attempt")
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))
        assert router.count("delivered", "alertmanager") == len(before)
        assert am.start(), f"Alertmanager did not restart; see {am.log}"

        during_ids = {b["alert_id"] for b in during}
        await until(lambda: holds(am, during_ids), what="alerts sent during the outage")
        await until(lambda: router.count("delivered", "alertmanager") == 7, what="all delivered")
        # The restarted Alertmanager received each alert of the outage exactly once.
        received = am.metric("alertmanager_alerts_received_total", status="firing")
        assert received == len(during)
        assert router.count("dead_lettered", "alertmanager") == 0

        # A resolved message (same alert_id, status resolved) sets endsAt: Alertmanager ends
        # the alert and notifies its resolution with that time.
        resolved_at = int(time.time() * 1000) - 1000
        resolution = {**during[0], "status": "resolved", "resolved_at": resolved_at}
        await producer.send_and_wait(alerts_topic, encode(resolution), key=b"m0")

        def resolved() -> list[dict[str, Any]]:
            return [
                a
                for a in notified.alerts
                if a["annotations"]["alert_id"] == "during-0" and a["status"] == "resolved"
            ]

        await until(lambda: bool(resolved()), what="the resolution notified")
        assert same_millisecond(resolved()[0]["endsAt"], resolved_at)
        assert "during-0" not in by_id(am.alerts())
        assert by_id(am.alerts())["during-1"]["status"]["state"] == "active"
        assert router.count("delivered", "alertmanager") == 8


async def test_a_flood_of_20_stream_alerts_reaches_alertmanager_as_one_model_alert(
    kafka: LocalKafka,
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    alertmanager_factory: AlertmanagerFactory,  # noqa: F811
) -> None:
    """The engine's own messages for 20 streams of one model drifting one after another
    (the stream alerts, and the model alert published again as each stream joins it), read
    by the router: Alertmanager holds the one model alert, listing all 20, and nothing else."""
    rollup = RollupSettings(min_streams=3, min_share=None, window_events=500)
    spikes = {10 + i: (f"f{i}",) for i in range(20)}
    now_ms = int(time.time() * 1000)  # the engine helper's clock is in the past: Alertmanager
    messages = [  # would take its alerts as long over
        dataclasses.replace(a, detected_at=now_ms)
        for _, a in feed(engine(rollup=rollup), rows(30, spikes, features=20))
    ]
    assert len([a for a in messages if a.stream.kind is StreamKind.VALUE]) == 20
    assert all(a.status is Status.FIRING for a in messages)
    alerts_topic, dead = await topic_factory(), await topic_factory()
    producer = await producer_factory()
    for message in messages:
        await producer.send_and_wait(alerts_topic, message.to_json(), key=b"m")
    am = alertmanager_factory()
    async with running_router(
        kafka, alerts_topic, dead, alertmanager_urls=am.url, group_delay_seconds="3"
    ) as router:
        await until(
            lambda: any("20 streams drifted together" in _summary(a) for a in am.alerts()),
            what="the model alert listing all 20 streams",
        )
        assert router.registry.get_sample_value("streamproc_route_suppressed_total") == 20
        held = am.alerts()
    (model_alert,) = held
    assert model_alert["labels"]["alertname"] == "StreamprocModel"
    assert model_alert["labels"]["model"] == "m"
    assert model_alert["annotations"]["alert_id"] == messages[-1].alert_id


def _summary(alert: dict[str, Any]) -> str:
    return str(alert["annotations"]["summary"])
