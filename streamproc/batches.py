"""What Faust's consumer fetched, handed to the app a partition's records at a time.

Faust's own consumer delivers message by message: per message it runs a
``wait_first`` of four tasks, a lock and a queue put in the conductor, a loop turn in
the stream iterator and an ack (docs/performance.md), about 50 us of CPU per event,
more than the engine itself. :class:`BatchConsumer` keeps everything else Faust's
consumer does (the consumer group, rebalancing, flow control, commits and the
producer flush before each commit) and replaces only that per-message path: each
fetched per-partition batch becomes one :class:`FetchedBatch` on a bounded queue, and
the app acks a batch with :meth:`BatchConsumer.ack_batch` once its alerts and dead
letters are handed to the producer, so Faust's commit (which flushes the producer
first) never passes an event whose outputs are not on the broker.

Every rebalance (revoke or assign) starts a new *epoch* and clears the queue: a batch
fetched before it is neither processed nor acked, so its next owner re-processes it
from the checkpoint.

This reaches into Faust's consumer internals (faust-streaming 0.15):
``_wait_next_records``, ``_read_offset``, ``_committed_offset``, ``_acked``,
``_acked_index``, ``_n_acked``, ``_commit_every``, ``_buffered_partitions``,
``perform_seek``, ``faust.types.tuples.ack_lock``, and the consumer thread's
``_create_worker_consumer`` (whose aiokafka consumer gets our :class:`Fetch`).
tests/unit/test_batches.py pins each of them, so an upgrade that changes one fails
there first.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ack_lock

log = logging.getLogger(__name__)

QUEUE_BATCHES = 8
"""Fetched batches waiting for the app: enough to keep it busy while the next fetch
runs, few enough that a rebalance has little to throw away. A full queue makes the
consumer wait, which is the back-pressure."""
FETCH_TIMEOUT_SECONDS = 1.0
BATCH_RECORDS = 1_000
"""Most records per batch: enough to make the hand-off's cost per record negligible, few
enough that the partitions of one fetch interleave in time."""


@dataclass(frozen=True, slots=True)
class Fetch:
    """How long the broker may hold a fetch (``fetch.max.wait.ms``) waiting for at least
    ``min_bytes`` (``fetch.min.bytes``): ``worker.fetch_max_wait_ms`` and
    ``worker.fetch_min_bytes``.

    Faust hard-codes 1,500 ms and aiokafka's minimum is 1 byte. aiokafka has one fetch in
    flight per broker, covering the partitions with nothing buffered, so with 1,500 ms a
    fetch of idle partitions (the outcomes topic, say) held back the busy ones for 1.5 s
    at a time, the live worker's multi-second p99. With 1 byte, a live worker fetched
    whatever had arrived, a few records a partition, and woke for each: at 12,000 events/s
    it spent a tenth more CPU than when the broker gathers ~30 ms of events a fetch, and the
    events waited longer in the queue (docs/performance.md, Latency). A backlog fills
    ``min_bytes`` at once, so catching up is not slowed."""

    max_wait_ms: int = 30
    min_bytes: int = 1_048_576


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """Up to :data:`BATCH_RECORDS` of one partition's records from one fetch, in offset order."""

    tp: TP
    records: Sequence[Any]
    """aiokafka ``ConsumerRecord`` values."""
    epoch: int
    """The consumer's rebalance epoch when it was fetched: stale once another began."""
    ack_from: int
    """The first offset :meth:`BatchConsumer.ack_batch` marks done: below the first
    record's when offsets in between do not exist (compaction, transaction markers), so
    Faust's commit does not stop at the hole."""


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, fetching as its transport's :class:`Fetch` says."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        fetch = getattr(transport, "fetch", Fetch())
        consumer._fetch_max_wait_ms = fetch.max_wait_ms  # read by its Fetcher on start()
        consumer._fetch_min_bytes = fetch.min_bytes
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering per-partition batches to :attr:`batches`."""

    epoch: int = 0
    _batches: asyncio.Queue[FetchedBatch] | None = None
    _committing: asyncio.Future[None] | None = None

    @property
    def batches(self) -> asyncio.Queue[FetchedBatch]:
        """Created on first use, inside the running loop."""
        if self._batches is None:
            self._batches = asyncio.Queue(QUEUE_BATCHES)
        return self._batches

    def _new_consumer_thread(self) -> BatchConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def current(self, batch: FetchedBatch) -> bool:
        """Whether no rebalance began since ``batch`` was fetched."""
        return batch.epoch == self.epoch

    def _new_epoch(self) -> None:
        self.epoch += 1
        queue = self.batches
        while not queue.empty():
            queue.get_nowait()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._new_epoch()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._new_epoch()
        await super().on_partitions_assigned(assigned, generation_id)

    def ack_batch(self, batch: FetchedBatch) -> bool:
        """Mark the batch's offsets done for Faust's next commit, as ``Consumer.ack`` does
        per message. A stale batch (a rebalance since its fetch) is not acked: its
        partition may have moved, and whoever owns it re-processes it."""
        if not batch.records or not self.current(batch):
            return False
        tp = batch.tp
        if not self.app.topics.acks_enabled_for(tp.topic):
            return False
        with ack_lock:
            committed = self._committed_offset[tp]
            start = batch.ack_from if committed is None else max(batch.ack_from, committed)
            index = self._acked_index[tp]
            offsets = [o for o in range(start, batch.records[-1].offset + 1) if o not in index]
            index.update(offsets)
            self._acked[tp].extend(offsets)
            self._n_acked += len(offsets)
        return True

    def _split(self, records: Mapping[TP, list[Any]], active: set[TP] | None) -> list[FetchedBatch]:
        """Batches of at most :data:`BATCH_RECORDS` of each partition still assigned,
        without records below where reading resumes (Faust drops those too), merged across
        partitions by their first record's timestamp: a label is then not applied before a
        prediction fetched with it and stamped earlier (docs/events.md, Labels), as when
        Faust took messages from the partitions in turn."""
        merged: list[tuple[int, int, list[FetchedBatch]]] = []
        for tp, fetched in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            read = self._read_offset[tp]
            kept = fetched if read is None else [r for r in fetched if r.offset >= read]
            if not kept:
                continue
            first = kept[0].offset
            ack_from = read + 1 if read and first - read > 1 else first
            own = []
            for start in range(0, len(kept), BATCH_RECORDS):
                part = kept[start : start + BATCH_RECORDS]
                own.append(FetchedBatch(tp, part, self.epoch, ack_from))
                ack_from = part[-1].offset + 1
            own.reverse()
            heapq.heappush(merged, (_stamp(own[-1]), len(merged), own))
        batches = []
        while merged:
            _, order, own = heapq.heappop(merged)
            batches.append(own.pop())
            if own:
                heapq.heappush(merged, (_stamp(own[-1]), order, own))
        return batches

    async def _deliver(self, batches: list[FetchedBatch]) -> None:
        for batch in batches:
            await self.batches.put(batch)
            if not self.current(batch):
                return  # the rebalance cleared the queue; the rest is as stale
            self._read_offset[batch.tp] = batch.records[-1].offset
            self._maybe_commit()

    def _maybe_commit(self) -> None:
        """Commit every ``broker_commit_every`` acked records, as Faust does, but beside
        the fetching rather than in its way. A commit first flushes the producer (every alert,
        dead letter and checkpoint record it holds, acks=-1); on a loaded worker that took
        100-400 ms, longer while a checkpoint round was being written, and with the commit
        awaited here the queue ran dry meanwhile (docs/performance.md, Checkpoints). One at
        a time; Faust's commit is already safe beside its own timer's, and the acks it reads
        are taken when it runs."""
        if self._commit_every is None or self._n_acked < self._commit_every:
            return
        if self._committing is not None and not self._committing.done():
            return
        self._n_acked = 0
        self._committing = self.add_future(self.commit())

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - the broker's
        """Replaces Faust's loop (transport/consumer.py ``_drain_messages``): the same
        fetch, stop and flow checks, with a queue put per partition batch."""
        try:
            while not (self.should_stop or fetcher.should_stop):
                records, active = await self._wait_next_records(FETCH_TIMEOUT_SECONDS)
                await asyncio.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # Fetched across a rebalance: re-read from the committed offsets, as
                    # Faust's getmany does (a seek the rebalance fails is Faust's to redo).
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        log.warning("exception performing seek when flow not active: %r", exc)
                    continue
                await self._deliver(self._split(records, active))
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            log.exception("Drain messages raised: %r", exc)
            raise


def _stamp(batch: FetchedBatch) -> int:
    timestamp = batch.records[0].timestamp
    return timestamp if isinstance(timestamp, int) else 0


class BatchTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`BatchConsumer` as its consumer."""

    Consumer = BatchConsumer
    fetch: Fetch = Fetch()


def install(app: faust.App, fetch: Fetch | None = None) -> None:
    """Make ``app`` consume through :class:`BatchConsumer`; before anything touches
    ``app.transport`` or ``app.consumer`` (declaring a topic does)."""
    transport = BatchTransport(app.conf.broker_consumer, app)
    transport.fetch = fetch or Fetch()
    app.transport = transport
