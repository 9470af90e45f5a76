"""``streamproc route`` delivers to a real webhook receiver that checks every signature."""

from __future__ import annotations

import orjson
from aiokafka import TopicPartition

from streamproc.dev.localkafka import LocalKafka
from tests.integration.conftest import ConsumerFactory, ProducerFactory, TopicFactory
from tests.integration.route_harness import SECRET, alert, encode, receiver, running_router, until


async def test_a_failing_receiver_gets_the_alert_once_it_answers(
    kafka: LocalKafka, topic_factory: TopicFactory, producer_factory: ProducerFactory
) -> None:
    alerts, dead = await topic_factory(2), await topic_factory()
    producer = await producer_factory()
    first, duplicate = encode(alert("a-1")), encode(alert("a-1", detected_at=1))
    await producer.send_and_wait(alerts, first, key=b"m")
    await producer.send_and_wait(alerts, duplicate, key=b"m")  # the worker's at-least-once
    async with (
        receiver(500, 500) as hook,
        running_router(
            kafka,
            alerts,
            dead,
            webhook_url=hook.url,
            webhook_secret=SECRET,
            group_delay_seconds="0",
        ) as router,
    ):
        await until(lambda: router.count("delivered", "webhook") == 1, what="delivered")
        await until(lambda: router.count("duplicates", "webhook") == 1, what="duplicate seen")
    assert [body for _, body in hook.received] == [first]
    assert hook.attempts == 3 and hook.bad_signatures == 0
    assert router.count("failed", "webhook") == 2 and router.count("retried", "webhook") == 2


async def test_a_refused_alert_is_dead_lettered_with_the_response(
    kafka: LocalKafka,
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    consumer_factory: ConsumerFactory,
) -> None:
    alerts, dead = await topic_factory(), await topic_factory()
    producer = await producer_factory()
    refused, accepted = encode(alert("a-1")), encode(alert("a-2", name="age"))
    await producer.send_and_wait(alerts, refused, key=b"m")
    await producer.send_and_wait(alerts, accepted, key=b"m")
    await producer.send_and_wait(alerts, b"not json", key=b"m")
    async with (
        receiver(400) as hook,
        running_router(
            kafka,
            alerts,
            dead,
            webhook_url=hook.url,
            webhook_secret=SECRET,
            group_delay_seconds="0",
        ) as router,
    ):
        await until(lambda: router.count("dead_lettered", "webhook") == 1, what="dead letter")
        await until(lambda: router.count("delivered", "webhook") == 1, what="next delivered")
        await until(lambda: router.count("dead_lettered", "") == 1, what="unroutable")
    assert hook.attempts == 2 and [body for _, body in hook.received] == [accepted]
    consumer = await consumer_factory(dead)
    batches = await consumer.getmany(timeout_ms=10_000)
    records = [r for rs in batches.values() for r in rs]
    assert len(records) == 2
    # an unroutable message is dead-lettered at once, a refused one after its attempt
    unroutable, letter = sorted(records, key=lambda r: r.value != b"not json")
    headers = {k: v.decode() for k, v in letter.headers}
    assert letter.value == refused and letter.key == b"m"
    assert headers["streamproc.reason"] == "sink_rejected"
    assert headers["streamproc.message"] == "webhook answered 400: receiver says 400"
    assert headers["streamproc.sink"] == "webhook"
    assert headers["streamproc.source.topic"] == alerts
    assert (headers["streamproc.source.partition"], headers["streamproc.source.offset"]) == (
        "0",
        "0",
    )
    assert dict(unroutable.headers)["streamproc.reason"] == b"unroutable_alert"
    assert unroutable.value == b"not json"


async def test_a_model_alert_replaces_the_stream_alerts_it_covers(
    kafka: LocalKafka, topic_factory: TopicFactory, producer_factory: ProducerFactory
) -> None:
    alerts, dead = await topic_factory(), await topic_factory()
    producer = await producer_factory()
    # The rollup contract (docs/alerts.md#model-rollup): members name stream and alert id.
    members = [
        {"stream": {"model": "m", "kind": "value", "name": name}, "alert_id": alert_id}
        for name, alert_id in (("amount", "a-1"), ("age", "a-2"))
    ]
    model = alert("r-1", name="model", members=members)
    model["stream"]["kind"] = "model"
    model["detector"] = {"type": "rollup", "params": {}}
    for body in (alert("a-1"), alert("a-2", name="age"), alert("a-3", name="zip"), model):
        await producer.send_and_wait(alerts, encode(body), key=b"m")
    async with (
        receiver() as hook,
        running_router(
            kafka,
            alerts,
            dead,
            webhook_url=hook.url,
            webhook_secret=SECRET,
            group_delay_seconds="2",
        ) as router,
    ):
        await until(lambda: router.count("delivered", "webhook") == 2, what="delivered")
        assert router.registry.get_sample_value("streamproc_route_suppressed_total") == 2
    ids = [orjson.loads(body)["alert_id"] for _, body in hook.received]
    assert ids == ["a-3", "r-1"]


async def test_delivered_offsets_are_committed(
    kafka: LocalKafka,
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    consumer_factory: ConsumerFactory,
) -> None:
    alerts, dead = await topic_factory(), await topic_factory()
    producer = await producer_factory()
    for n in range(3):
        await producer.send_and_wait(alerts, encode(alert(f"a-{n}", name=f"s{n}")), key=b"m")
    async with (
        receiver() as hook,
        running_router(
            kafka,
            alerts,
            dead,
            webhook_url=hook.url,
            webhook_secret=SECRET,
            group_delay_seconds="0",
            group_id=f"{alerts}-router",
        ) as router,
    ):
        await until(lambda: router.count("delivered", "webhook") == 3, what="delivered")
    consumer = await consumer_factory(group_id=f"{alerts}-router")
    assert await consumer.committed(TopicPartition(alerts, 0)) == 3
    assert len({delivery for delivery, _ in hook.received}) == 3


async def test_a_sink_that_is_down_holds_back_only_itself(
    kafka: LocalKafka,
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    consumer_factory: ConsumerFactory,
) -> None:
    alerts, dead = await topic_factory(), await topic_factory()
    producer = await producer_factory()
    body = encode(alert("a-1"))
    await producer.send_and_wait(alerts, body, key=b"m")
    group = f"{alerts}-router"
    async with (
        receiver(*[503] * 100_000) as hook,
        receiver() as am,  # stands in for Alertmanager: it only needs the POST answered
        running_router(
            kafka,
            alerts,
            dead,
            webhook_url=hook.url,
            webhook_secret=SECRET,
            alertmanager_urls=am.url.removesuffix("/hook"),
            group_delay_seconds="0",
            group_id=group,
        ) as router,
    ):
        await until(lambda: router.count("delivered", "alertmanager") == 1, what="alertmanager")
        await until(lambda: router.count("failed", "webhook") >= 2, what="webhook failing")
        observer = await consumer_factory(group_id=group)
        assert await observer.committed(TopicPartition(alerts, 0)) in (None, 0)  # not done
        hook.statuses.clear()  # the webhook is back
        await until(lambda: router.count("delivered", "webhook") == 1, what="webhook delivered")
    assert await observer.committed(TopicPartition(alerts, 0)) == 1
    assert [b for _, b in hook.received] == [body]
