"""Checkpoint and recovery against Kafka: the I/O around :mod:`streamproc.checkpoints`.

Writing: between batches (under the app's lock) the changed models of a
partition are snapshotted with the offsets they reflect; the producer is
flushed first, so every alert and dead letter of the covered events is on the
broker before a checkpoint claims them; then the model records and finally the
partition's manifest are written and awaited.

Reading, when a partition's first records arrive after an assignment: the
checkpoint partition is read to its end and folded, and the engine restores
its models. If Faust resumed beyond the checkpoint's watermark (offsets a
previous owner committed after its last checkpoint), the records in between
are read directly and processed again, so the state is exact before the
delivered records are applied. Records below the watermark that Faust
delivers again are skipped by :class:`~streamproc.pipeline.Pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamproc.checkpoints import (
    MANIFEST_KEY,
    Offsets,
    PartitionCheckpoint,
    encode_manifest,
    encode_model,
    model_key,
    read_partition,
)
from streamproc.connection import aiokafka_options
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import Settings

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS = 500
CATCH_UP_BATCH = 1000
Handle = Callable[[Sequence[Record]], Awaitable[Any]]


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


def checkpoint_records(
    pipeline: Pipeline, partition: int, now_ms: int
) -> tuple[list[tuple[bytes, bytes | None]], Offsets, set[str]]:
    """The records of one checkpoint round for a partition, built synchronously.

    Returns (records, watermark, models written); tombstones (None values) of models
    evicted for being idle come first, the manifest last.
    """
    models = pipeline.dirty.pop(partition, set())
    gone = pipeline.evicted.pop(partition, set()) - models
    offsets = pipeline.offsets(partition)
    snapshot = pipeline.snapshot  # a model whose state cannot be encoded is reset, stored empty
    records: list[tuple[bytes, bytes | None]] = [(model_key(m), None) for m in sorted(gone)]
    records += [
        (model_key(m), encode_model(m, pipeline.captured(m, offsets), snapshot(m, partition)))
        for m in models
    ]
    owned = len(pipeline.models_of(partition))
    records.append((MANIFEST_KEY, encode_manifest(offsets, owned, now_ms)))
    return records, offsets, models


class Recovery:
    """Reads checkpoints and source ranges with plain aiokafka clients (no consumer group)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._options = aiokafka_options(settings.kafka)

    async def _consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self._options, group_id=None, enable_auto_commit=False, max_poll_records=5000
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
        return read_partition(records)

    async def catch_up(
        self, partition: int, kind: EventKind, start: int, stop: int, handle: Handle
    ) -> int:
        """Re-process records [start, stop) of one source partition; return how many."""
        topics = self._settings.topics
        topic = topics.features if kind is EventKind.FEATURE else topics.outcomes
        tp = TopicPartition(topic, partition)
        done = 0
        consumer = await self._consumer()
        try:
            batch: list[Record] = []
            async for r in _read_range(consumer, tp, start, stop):
                batch.append(
                    Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, kind)
                )
                if len(batch) >= CATCH_UP_BATCH:
                    await handle(batch)
                    done, batch = done + len(batch), []
            if batch:
                await handle(batch)
                done += len(batch)
        finally:
            await consumer.stop()
        return done


async def _read_range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int | None, stop: int | None
) -> Any:
    """Records of ``tp`` from ``start`` (default: the beginning) up to ``stop`` (default: the
    end offset now)."""
    consumer.assign([tp])
    if start is None:
        await consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, start)
    if stop is None:
        stop = (await consumer.end_offsets([tp]))[tp]
    while await consumer.position(tp) < stop:
        batches = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS)
        for record in batches.get(tp, []):
            if record.offset >= stop:
                return
            yield record
