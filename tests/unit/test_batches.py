"""Fetched batches handed to the app whole, and the Faust internals that relies on.

The tests named ``test_faust_*`` pin faust-streaming internals that
:mod:`streamproc.batches` uses (pyproject.toml says so next to the pin): when an
upgrade renames or changes one, they fail here rather than in production.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from faust.transport import consumer as faust_consumer
from faust.types import TP
from faust.types.tuples import ack_lock

from streamproc.app import StreamprocApp
from streamproc.batches import BatchConsumer, Fetch, FetchedBatch
from streamproc.checkpoints import PartitionCheckpoint
from streamproc.settings import load_settings

TOPIC = "features"


def consumer_record(offset: int, value: bytes, partition: int = 0) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        TOPIC,
        partition,
        offset,
        1_764_000_000_000 + offset,
        0,
        b"m",
        value,
        None,
        1,
        len(value),
        [],
    )


def body(i: int) -> bytes:
    return orjson.dumps({"model": "m", "id": str(i), "features": {"x": float(i % 5)}})


async def started_app() -> tuple[StreamprocApp, BatchConsumer]:
    app = StreamprocApp(load_settings(environ={"STREAMPROC_TOPICS_FEATURES": TOPIC}))
    consumer = app.faust.consumer
    assert isinstance(consumer, BatchConsumer)
    await app.faust.topics._update_indices()  # what Faust does when it subscribes
    app.alerts_topic, app.dead_letter_topic = Sink(), Sink()
    return app, consumer


class Sink:
    """Stands in for a Faust topic; ``on_send`` runs before each send returns."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.on_send: Any = None

    async def send(self, **message: Any) -> None:
        self.sent.append(message)
        if self.on_send is not None:
            self.on_send()


def fetched(consumer: BatchConsumer, offsets: range, partition: int = 0) -> FetchedBatch:
    records = [consumer_record(o, body(o), partition) for o in offsets]
    return FetchedBatch(TP(TOPIC, partition), records, consumer.epoch, offsets[0])


async def test_faust_computes_its_commit_offset_from_acked_batches() -> None:
    _, consumer = await started_app()
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 10
    assert consumer.ack_batch(fetched(consumer, range(10, 20)))
    assert consumer.ack_batch(fetched(consumer, range(20, 25)))
    assert consumer._n_acked == 15
    assert consumer._filter_committable_offsets([tp]) == {tp: 25}


async def test_faust_commit_stops_below_a_batch_that_was_not_acked() -> None:
    _, consumer = await started_app()
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 10
    consumer.ack_batch(fetched(consumer, range(20, 25)))
    assert consumer._filter_committable_offsets([tp]) == {}


async def test_faust_consumer_internals_the_batches_rely_on() -> None:
    _, consumer = await started_app()
    tp = TP(TOPIC, 0)
    for name in ("_read_offset", "_committed_offset"):
        assert getattr(consumer, name)[tp] is None  # defaultdicts, None when unknown
    assert consumer._acked[tp] == [] and consumer._acked_index[tp] == set()
    assert isinstance(consumer._n_acked, int)
    assert consumer._commit_every == consumer.app.conf.broker_commit_every
    assert isinstance(consumer._buffered_partitions, set)
    assert isinstance(ack_lock, type(threading.RLock()))
    assert inspect.iscoroutinefunction(consumer.perform_seek)
    assert list(inspect.signature(consumer._wait_next_records).parameters) == ["timeout"]
    # Faust's fetcher runs the consumer's drain loop, which BatchConsumer replaces.
    assert "consumer._drain_messages(self)" in inspect.getsource(faust_consumer.Fetcher)
    base = inspect.getsource(faust_consumer.Consumer._drain_messages)
    assert "_wait_next_records" not in base and "getmany(timeout=1.0)" in base
    assert "self._wait_next_records(timeout)" in inspect.getsource(faust_consumer.Consumer.getmany)
    assert "await self.app.producer.flush()" in inspect.getsource(
        faust_consumer.Consumer._commit_offsets
    ), "Faust no longer flushes the producer before it commits"


async def test_a_batch_is_processed_then_acked() -> None:
    app, consumer = await started_app()
    app.ledger.owned.add(0)
    batch = fetched(consumer, range(0, 50))
    batch = FetchedBatch(batch.tp, [*batch.records, consumer_record(50, b"{bad")], batch.epoch, 0)

    assert await app.take(consumer, batch)

    assert "m" in app.engine.models
    assert len(app.dead_letter_topic.sent) == 1
    assert consumer._filter_committable_offsets([batch.tp]) == {batch.tp: 51}


async def test_a_batch_fetched_before_a_rebalance_is_dropped_unprocessed() -> None:
    app, consumer = await started_app()
    app.ledger.owned.add(0)
    batch = fetched(consumer, range(0, 50))
    consumer._new_epoch()

    assert not await app.take(consumer, batch)

    assert "m" not in app.engine.models
    assert consumer._filter_committable_offsets([batch.tp]) == {}


async def test_a_rebalance_during_a_batchs_sends_leaves_it_unacked() -> None:
    app, consumer = await started_app()
    app.ledger.owned.add(0)
    revoked = {TP(TOPIC, 0)}

    revoking: list[asyncio.Future[None]] = []

    def rebalance() -> None:
        consumer._new_epoch()
        revoking.append(asyncio.ensure_future(app._on_revoked(None, revoked)))

    app.dead_letter_topic.on_send = rebalance
    batch = fetched(consumer, range(0, 10))
    batch = FetchedBatch(batch.tp, [*batch.records, consumer_record(10, b"{bad")], batch.epoch, 0)

    assert not await app.take(consumer, batch)
    await asyncio.gather(*revoking)

    assert 0 not in app.owned and "m" not in app.engine.models
    assert consumer._filter_committable_offsets([batch.tp]) == {}


async def test_records_below_the_read_offset_and_of_unassigned_partitions_are_left_out() -> None:
    _, consumer = await started_app()
    tp0, tp1 = TP(TOPIC, 0), TP(TOPIC, 1)
    consumer._read_offset[tp0] = 5
    records = {
        tp0: [consumer_record(o, b"{}") for o in range(3, 8)],
        tp1: [consumer_record(0, b"{}", partition=1)],
    }

    batches = consumer._split(records, {tp0})

    assert [(b.tp, [r.offset for r in b.records], b.ack_from) for b in batches] == [
        (tp0, [5, 6, 7], 5)
    ]


async def test_a_hole_before_a_batch_is_acked_with_it() -> None:
    _, consumer = await started_app()
    tp = TP(TOPIC, 0)
    consumer._read_offset[tp] = 5
    consumer._committed_offset[tp] = 5
    [batch] = consumer._split({tp: [consumer_record(9, b"{}")]}, None)
    assert batch.ack_from == 6
    consumer.ack_batch(batch)
    assert consumer._filter_committable_offsets([tp]) == {tp: 10}


async def test_a_rebalance_clears_the_queue_and_stops_delivery() -> None:
    _, consumer = await started_app()
    first, second = fetched(consumer, range(0, 3)), fetched(consumer, range(3, 6))
    for _ in range(consumer.batches.maxsize):
        consumer.batches.put_nowait(first)
    delivering = asyncio.ensure_future(consumer._deliver([second, second]))
    await asyncio.sleep(0)
    assert not delivering.done()  # the full queue holds the consumer back

    consumer._new_epoch()
    await delivering

    assert consumer.batches.qsize() == 1  # the one put that was waiting; stale, dropped later
    assert not consumer.current(consumer.batches.get_nowait())
    assert consumer._read_offset[second.tp] is None


async def test_faust_worker_consumer_fetches_as_the_settings_say() -> None:
    default, _ = await started_app()
    environ = {
        "STREAMPROC_TOPICS_FEATURES": TOPIC,
        "STREAMPROC_WORKER_FETCH_MAX_WAIT_MS": "7",
        "STREAMPROC_WORKER_FETCH_MIN_BYTES": "1",
    }
    app = StreamprocApp(load_settings(environ=environ))
    fetched = {}
    for name, subject in (("default", default), ("set", app)):
        consumer = subject.faust.consumer
        assert isinstance(consumer, BatchConsumer)
        aiokafka_consumer = consumer._new_consumer_thread()._create_worker_consumer(
            subject.faust.transport
        )
        await aiokafka_consumer.stop()  # never started: only closes it
        fetched[name] = (aiokafka_consumer._fetch_max_wait_ms, aiokafka_consumer._fetch_min_bytes)
    assert fetched == {"default": (Fetch().max_wait_ms, Fetch().min_bytes), "set": (7, 1)}
    start = inspect.getsource(AIOKafkaConsumer.start)
    for handed in (
        "fetch_max_wait_ms=self._fetch_max_wait_ms",
        "fetch_min_bytes=self._fetch_min_bytes",
    ):
        assert handed in start, f"aiokafka no longer hands {handed} to its Fetcher on start()"


class AssignedMidRestore:
    """A checkpoint read during which the app hears of a new assignment (its generation
    moves on before the consumer fetches anything of the new epoch)."""

    def __init__(self, app: StreamprocApp) -> None:
        self.app = app

    async def read_checkpoint(self, partition: int) -> PartitionCheckpoint:
        self.app._generation += 1
        return PartitionCheckpoint()

    async def bounds(self, partition: int) -> tuple[tuple[int, int], tuple[int, int]]:
        return (0, 0), (0, 0)


async def test_a_batch_a_rebalance_overtook_before_it_was_applied_is_not_acked() -> None:
    app, consumer = await started_app()
    app.recovery = AssignedMidRestore(app)  # type: ignore[assignment]
    batch = fetched(consumer, range(0, 10))

    assert not await app.take(consumer, batch)

    assert "m" not in app.engine.models
    assert consumer._filter_committable_offsets([batch.tp]) == {}


async def test_a_fetch_is_delivered_in_batches_merged_by_timestamp() -> None:
    """Labels fetched with the predictions they follow come after them (docs/events.md)."""
    _, consumer = await started_app()
    features, outcomes = TP(TOPIC, 0), TP("outcomes", 0)

    def stamped(offset: int, ms: int) -> ConsumerRecord[Any, Any]:
        return ConsumerRecord(TOPIC, 0, offset, ms, 0, b"m", b"{}", None, 1, 2, [])

    records = {  # outcomes first, as a fetch may return them; stamped 1.2 batches later
        outcomes: [stamped(o, 10 * o + 12_000) for o in range(2500)],
        features: [stamped(o, 10 * o) for o in range(3500)],
    }

    batches = consumer._split(records, None)

    assert [(b.tp.topic, b.records[0].offset, len(b.records), b.ack_from) for b in batches] == [
        (TOPIC, 0, 1000, 0),
        (TOPIC, 1000, 1000, 1000),
        ("outcomes", 0, 1000, 0),
        (TOPIC, 2000, 1000, 2000),
        ("outcomes", 1000, 1000, 1000),
        (TOPIC, 3000, 500, 3000),
        ("outcomes", 2000, 500, 2000),
    ]


class HeldCheckpointTopic:
    """Stands in for the checkpoint topic; each send's delivery waits for ``release``."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.release = asyncio.Event()

    async def send(self, key: bytes, value: bytes | None, partition: int) -> Any:
        self.keys.append(key)
        return asyncio.ensure_future(self.release.wait())


async def test_the_agent_does_not_wait_for_a_checkpoints_writes() -> None:
    environ = {"STREAMPROC_TOPICS_FEATURES": TOPIC, "STREAMPROC_WORKER_CHECKPOINT_EVENTS": "20"}
    app = StreamprocApp(load_settings(environ=environ))
    consumer = app.faust.consumer
    assert isinstance(consumer, BatchConsumer)
    await app.faust.topics._update_indices()
    app.alerts_topic, app.dead_letter_topic = Sink(), Sink()
    topic = HeldCheckpointTopic()
    app.checkpoint_topic = topic
    app.owned.add(0)

    assert await asyncio.wait_for(app.take(consumer, fetched(consumer, range(0, 30))), 5)
    assert await asyncio.wait_for(app.take(consumer, fetched(consumer, range(30, 40))), 5)

    task = app._checkpoint_task
    assert task is not None and not task.done(), "the checkpoint is still writing"
    topic.release.set()
    await asyncio.wait_for(app.stop_processing(), 5)
    assert task.done() and topic.keys, "stopping waited for it, then wrote its own round"


async def test_delivery_goes_on_while_a_commit_is_in_flight() -> None:
    _, consumer = await started_app()
    entered, release = asyncio.Event(), asyncio.Event()
    commits: list[int] = []

    async def held_commit(*args: Any, **kwargs: Any) -> bool:
        commits.append(consumer._n_acked)
        entered.set()
        await release.wait()
        return True

    consumer.commit = held_commit  # type: ignore[method-assign]
    consumer._commit_every = 5
    first, second, third, fourth = (fetched(consumer, range(s, s + 5)) for s in (0, 5, 10, 15))
    consumer.ack_batch(first)

    await asyncio.wait_for(consumer._deliver([first, second]), 5)
    await asyncio.wait_for(entered.wait(), 5)
    consumer.ack_batch(second)
    await asyncio.wait_for(consumer._deliver([third]), 5)

    assert consumer.batches.qsize() == 3, "delivery did not wait for the commit"
    assert commits == [0], "one commit at a time, its count reset when it began"
    assert consumer._n_acked == 5, "acks made meanwhile count toward the next commit"
    release.set()
    committing = consumer._committing
    assert committing is not None
    await asyncio.wait_for(committing, 5)
    entered.clear()
    consumer.ack_batch(third)
    await asyncio.wait_for(consumer._deliver([fourth]), 5)
    await asyncio.wait_for(entered.wait(), 5)
    assert commits == [0, 0], "the next delivery past the count started the next commit"
