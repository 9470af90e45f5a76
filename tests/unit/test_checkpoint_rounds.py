"""A checkpoint builds one partition's round at a time under the app's lock, so a batch
waiting for the lock is applied between two rounds instead of after all of them: the
agent waits for one partition's snapshots, not a whole checkpoint's (the live p99,
docs/performance.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from faust.types import TP

from streamproc.app import StreamprocApp
from streamproc.batches import BatchConsumer, FetchedBatch
from streamproc.checkpoints import MANIFEST_KEY, read_partition
from tests.unit.test_batches import TOPIC, consumer_record, started_app
from tests.unit.test_handover import Delivered, Producer


def batch_of(model: str, partition: int, offsets: range, epoch: int) -> FetchedBatch:
    records = []
    for o in offsets:
        body = orjson.dumps({"model": model, "id": f"{model}-{o}", "features": {"x": o % 5}})
        record = consumer_record(o, body, partition)
        record.key = model.encode()
        records.append(record)
    return FetchedBatch(TP(TOPIC, partition), records, epoch, offsets[0])


async def two_partitions_applied() -> tuple[StreamprocApp, BatchConsumer]:
    """An app owning partitions 0 (model a) and 1 (model b), ten records of each applied."""
    app, consumer = await started_app()
    app.checkpoint_topic, app.faust.producer = Delivered(), Producer()
    app.ledger.owned.update({0, 1})
    assert await app.take(consumer, batch_of("a", 0, range(0, 10), consumer.epoch))
    assert await app.take(consumer, batch_of("b", 1, range(0, 10), consumer.epoch))
    return app, consumer


async def test_a_waiting_batch_is_applied_between_two_partitions_rounds() -> None:
    app, consumer = await two_partitions_applied()

    async with app._lock:  # the agent busy: the checkpoint queues first, then a batch
        checkpoint = asyncio.create_task(app.checkpoint([0, 1]))
        await asyncio.sleep(0)
        take = asyncio.create_task(
            app.take(consumer, batch_of("b", 1, range(10, 25), consumer.epoch))
        )
        await asyncio.sleep(0)
    assert await asyncio.wait_for(take, 5)
    await asyncio.wait_for(checkpoint, 5)

    sent = app.checkpoint_topic.sent
    first = read_partition((m["key"], m["value"]) for m in sent if m["partition"] == 0)
    second = read_partition((m["key"], m["value"]) for m in sent if m["partition"] == 1)
    assert first.resume_offsets() == (10, 0)
    assert second.resume_offsets() == (25, 0), "partition 1's round came after the batch"


async def test_a_partition_revoked_during_a_checkpoint_is_left_to_its_handover() -> None:
    app, _ = await two_partitions_applied()

    async with app._lock:
        checkpoint = asyncio.create_task(app.checkpoint([0, 1]))
        await asyncio.sleep(0)
        app.pipeline.forget(1)  # as a revocation whose handover gave up does
    await asyncio.wait_for(checkpoint, 5)

    assert {m["partition"] for m in app.checkpoint_topic.sent} == {0}


class Acked:
    """A checkpoint topic whose sends land only when the test acks them, as a broker's
    round trips do: it records the order of sends and acks."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.waiting: list[asyncio.Future[None]] = []
        self.some = asyncio.Event()

    async def send(self, **message: Any) -> asyncio.Future[None]:
        self.sent.append(message)
        landed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(landed)
        self.some.set()
        return landed

    async def ack_all(self) -> int:
        """Land everything sent so far, once some was; how many."""
        await asyncio.wait_for(self.some.wait(), 5)
        self.some.clear()
        waiting, self.waiting = self.waiting, []
        for landed in waiting:
            landed.set_result(None)
        return len(waiting)


async def test_partitions_rounds_are_written_side_by_side_each_manifest_last() -> None:
    app, _ = await two_partitions_applied()
    topic = app.checkpoint_topic = Acked()

    checkpoint = asyncio.create_task(app.checkpoint([0, 1]))
    assert await topic.ack_all() == 2, "both partitions' models sent before either landed"
    assert {m["partition"] for m in topic.sent} == {0, 1}
    assert MANIFEST_KEY not in {m["key"] for m in topic.sent}
    assert await topic.ack_all() == 2, "then both manifests, once their models landed"
    assert await asyncio.wait_for(checkpoint, 5) == 4

    for partition in (0, 1):
        mine = [m for m in topic.sent if m["partition"] == partition]
        assert read_partition((m["key"], m["value"]) for m in mine).resume_offsets() == (10, 0)
        assert [m["key"] for m in mine][1:] == [MANIFEST_KEY]
