"""A revoked partition is handed over: checkpointed where this process stopped, then
forgotten, so its next owner repeats no alert after a rebalance (a worker joining or
leaving). A handover that fails still lets the rebalance go on."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from streamproc.checkpoints import read_partition
from tests.unit.test_batches import TOPIC, fetched, started_app


class Delivered:
    """A checkpoint topic whose sends land at once (Faust returns a future per send)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    async def send(self, **message: Any) -> asyncio.Future[None]:
        if self.fail:
            raise ConnectionError("broker gone")
        self.sent.append(message)
        landed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        landed.set_result(None)
        return landed


class Producer:
    async def flush(self) -> None:
        return None


async def test_a_revoked_partition_is_checkpointed_up_to_its_last_applied_record() -> None:
    app, consumer = await started_app()
    app.checkpoint_topic, app.faust.producer = Delivered(), Producer()
    app.ledger.owned.add(0)
    assert await app.take(consumer, fetched(consumer, range(0, 40)))

    await app.faust.on_partitions_revoked.send({TP(TOPIC, 0)})

    checkpoint = read_partition((m["key"], m["value"]) for m in app.checkpoint_topic.sent)
    assert checkpoint.resume_offsets() == (40, 0)
    assert set(checkpoint.models) == {"m"}
    assert 0 not in app.owned and "m" not in app.engine.models


async def test_a_failed_handover_still_forgets_the_partition() -> None:
    app, consumer = await started_app()
    app.checkpoint_topic, app.faust.producer = Delivered(fail=True), Producer()
    app.ledger.owned.add(0)
    assert await app.take(consumer, fetched(consumer, range(0, 40)))

    await app.faust.on_partitions_revoked.send({TP(TOPIC, 0)})

    assert 0 not in app.owned and "m" not in app.engine.models


async def test_a_stopped_worker_hands_nothing_over_twice() -> None:
    app, consumer = await started_app()
    app.checkpoint_topic, app.faust.producer = Delivered(), Producer()
    app.ledger.owned.add(0)
    assert await app.take(consumer, fetched(consumer, range(0, 40)))
    await app.stop_processing()
    written = len(app.checkpoint_topic.sent)

    await app.faust.on_partitions_revoked.send({TP(TOPIC, 0)})

    assert len(app.checkpoint_topic.sent) == written
    assert 0 not in app.owned
