"""Checkpoint and recovery against Kafka: the I/O around :mod:`streamproc.checkpoints`.

Writing: between batches (under the app's lock) the changed models of a
partition are snapshotted with the offsets they reflect (a round of
:class:`~streamproc.ledger.Ledger`); the producer is
flushed first, so every alert and dead letter of the covered events is on the
broker before a checkpoint claims them; then the model records and finally the
partition's manifest are written and awaited.

Reading, right after an assignment (or when a partition's first records
arrive, whichever comes first): the checkpoint partition is read to its end,
folded and validated, and the engine restores its models. If the consumer
group's committed offset lies beyond the checkpoint's watermark (offsets a
previous owner committed after its last checkpoint), the records in between
are read directly and processed again at once, so the state is exact before
the delivered records are applied and a quiet partition's tail is not left
waiting for traffic. Records below what is already in the state that Faust
delivers again are skipped by :class:`~streamproc.pipeline.Pipeline` (its ledger's skip
marks).

The recovery consumer never resets to ``latest`` (aiokafka's default, which on
an offset below the log start would silently skip to the end): a range that
starts below the log start continues from the log start, and the log says how
many records retention took.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamproc.checkpoints import Offsets, PartitionCheckpoint, fold_partition
from streamproc.connection import aiokafka_options
from streamproc.events import EventKind
from streamproc.ledger import KIND_INDEX
from streamproc.pipeline import Record
from streamproc.settings import Settings
from streamproc.topics import admin_client

log = logging.getLogger(__name__)

KINDS = (EventKind.FEATURE, EventKind.OUTCOME)
FETCH_TIMEOUT_MS = 500
CATCH_UP_BATCH = 1000


@dataclass(frozen=True, slots=True)
class RestoreReport:
    partition: int
    models: int
    streams: int
    state_bytes: int
    seconds: float

    def line(self) -> str:
        per_stream = self.state_bytes / self.streams if self.streams else 0.0
        return (
            f"partition {self.partition}: restored {self.models} models, {self.streams} streams, "
            f"{self.state_bytes} bytes ({per_stream:.0f} B/stream) in {self.seconds:.2f} s"
        )


class Recovery:
    """Reads checkpoints and source ranges with plain aiokafka clients (no consumer group)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._options = aiokafka_options(settings.kafka)

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self._options,
            group_id=None,
            enable_auto_commit=False,
            max_poll_records=5000,
            auto_offset_reset="earliest",  # never "latest": it would skip a range silently
        )
        await consumer.start()
        return consumer

    async def read_checkpoint(self, partition: int) -> PartitionCheckpoint:
        tp = TopicPartition(self._settings.checkpoint_topic, partition)
        consumer = await self._consumer()
        try:
            records = [(r.key, r.value) async for r in _read_range(consumer, tp, None, None)]
        finally:
            await consumer.stop()
        return fold_partition(records)

    def _source(self, partition: int, kind: EventKind) -> TopicPartition:
        topics = self._settings.topics
        topic = topics.features if kind is EventKind.FEATURE else topics.outcomes
        return TopicPartition(topic, partition)

    async def bounds(self, partition: int) -> tuple[Offsets, Offsets]:
        """(log start offsets, end offsets) of the partition's (features, outcomes)."""
        tps = [self._source(partition, kind) for kind in KINDS]
        consumer = await self._consumer()
        try:
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
        finally:
            await consumer.stop()
        return (starts[tps[0]], starts[tps[1]]), (ends[tps[0]], ends[tps[1]])

    async def committed(self, partition: int) -> dict[EventKind, int]:
        """The consumer group's committed offsets for the partition, where there are any:
        where Faust resumes (without one it starts at the log start)."""
        tps = {self._source(partition, kind): kind for kind in KINDS}
        async with admin_client(self._settings) as admin:
            offsets = await admin.list_consumer_group_offsets(
                self._settings.kafka.group_id, partitions=list(tps)
            )
        return {
            tps[tp]: meta.offset for tp, meta in offsets.items() if tp in tps and meta.offset >= 0
        }

    async def catch_up(
        self, partition: int, kind: EventKind, start: int, stop: int
    ) -> AsyncGenerator[list[Record], None]:
        """Records [start, stop) of one source partition, in batches, for the caller to
        process again (use it with ``contextlib.aclosing``: it holds a consumer).

        A ``start`` below the log start continues from the log start: retention deleted
        the records in between, and the log says how many."""
        tp = self._source(partition, kind)
        log_start = (await self.bounds(partition))[0][KIND_INDEX[kind]]
        if start < log_start:
            log.warning(
                "recovery: partition %d %s: %d records [%d, %d) were deleted by retention "
                "before they were re-processed; continuing from the log start",
                partition,
                kind.value,
                min(log_start, stop) - start,
                start,
                min(log_start, stop),
            )
            start = log_start
        if start >= stop:
            return
        consumer = await self._consumer()
        try:
            batch: list[Record] = []
            async for r in _read_range(consumer, tp, start, stop):
                batch.append(
                    Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, kind)
                )
                if len(batch) >= CATCH_UP_BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            await consumer.stop()


async def _read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int | None, stop: int | None
) -> Any:
    """Records of ``tp`` from ``start`` (default: the beginning) up to ``stop``, and never
    beyond the end offset now (a larger ``stop`` would wait forever)."""
    consumer.assign([tp])
    if start is None:
        await consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, start)
    end = (await consumer.end_offsets([tp]))[tp]
    stop = end if stop is None else min(stop, end)
    while await consumer.position(tp) < stop:
        batches = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS)
        for record in batches.get(tp, []):
            if record.offset >= stop:
                return
            yield record
