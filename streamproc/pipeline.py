"""One batch of Kafka records through decode and the engine, as plain values.

The Faust app only converts its events to :class:`Record` values, calls
:meth:`Pipeline.handle`, and sends what comes back. Keeping this step free of
Faust makes it testable without a broker and keeps the logic out of framework
callbacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from streamproc.alerts import Alert
from streamproc.checkpoints import InvalidRecord, Offsets, PartitionCheckpoint
from streamproc.engine import Engine
from streamproc.errors import StateError
from streamproc.events import Event, EventKind, Rejection, decode
from streamproc.settings import Limits

HEADER_PREFIX = "streamproc."


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed Kafka message, reduced to what the core needs."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    """The record's timestamp: stands in for ``ts`` when an event has none."""
    key: bytes | None
    value: bytes | None
    kind: EventKind
    """The contract the record's topic implies."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message (or array element), ready for the dead-letter topic."""

    record: Record
    rejection: Rejection

    @property
    def value(self) -> bytes:
        """The original bytes; for one bad element of an array, that element alone."""
        index = self.rejection.index
        if index is None or self.record.value is None:
            return self.record.value or b""
        elements = orjson.loads(self.record.value)
        return orjson.dumps(elements[index])

    def headers(self) -> list[tuple[str, bytes]]:
        """Why and where from, as Kafka headers (documented in docs/dead-letters.md)."""
        record, rejection = self.record, self.rejection
        headers = [
            (f"{HEADER_PREFIX}reason", rejection.reason.value.encode()),
            (f"{HEADER_PREFIX}message", rejection.message.encode()),
            (f"{HEADER_PREFIX}source.topic", record.topic.encode()),
            (f"{HEADER_PREFIX}source.partition", str(record.partition).encode()),
            (f"{HEADER_PREFIX}source.offset", str(record.offset).encode()),
        ]
        if rejection.index is not None:
            headers.append((f"{HEADER_PREFIX}source.index", str(rejection.index).encode()))
        return headers


@dataclass(slots=True)
class Output:
    """What a batch produced."""

    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    """Accepted events by model."""
    updates: int = 0
    """Detector updates performed."""
    latencies_ms: list[int] = field(default_factory=list)
    """Processing time minus event time, for events that carried a ``ts``."""
    messages: int = 0
    """Records handled."""
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    """Highest offset handled per (topic, partition)."""


KIND_INDEX = {EventKind.FEATURE: 0, EventKind.OUTCOME: 1}
"""Position of a topic's offset in :data:`streamproc.checkpoints.Offsets`."""


class Pipeline:
    """Decode records and run their events through one engine, tracking what state covers.

    Besides the engine, it records per partition the next offset to process on
    each topic, which models live on which partition, and which models changed
    since the last checkpoint: everything a checkpoint needs, updated in the
    same synchronous step as the state itself, so a snapshot taken between two
    batches is always consistent with its offsets.
    """

    def __init__(self, engine: Engine, limits: Limits) -> None:
        self.engine = engine
        self._limits = limits
        self.next_offsets: dict[tuple[int, int], int] = {}
        """(partition, kind index) -> next offset to process."""
        self.partition_of: dict[str, int] = {}
        self.dirty: dict[int, set[str]] = {}
        """partition -> models changed since their last checkpoint."""
        self._skip_below: dict[tuple[int, int], int] = {}
        self._skip_model: dict[str, Offsets] = {}

    def restore(self, partition: int, checkpoint: PartitionCheckpoint) -> Offsets:
        """Load a partition's checkpoint; returns the watermark processing must resume from.

        A model record that does not restore (its snapshot carries another model, or fails
        the engine's checks) is added to ``checkpoint.invalid`` and restores nothing: that
        model starts afresh, the partition's other models are unaffected."""
        models: dict[str, Offsets] = {}
        for record in checkpoint.models.values():
            try:
                self.engine.restore(record.snapshot, only=(record.model,))
            except StateError as exc:
                key = f"m/{record.model}"
                checkpoint.invalid.append(InvalidRecord(key, record.model, str(exc)))
                continue
            models[record.model] = record.offsets
        watermark = checkpoint.resume_offsets()
        self.resume(partition, watermark, models)
        return watermark

    def covered(self, partition: int, kind: EventKind, offset: int) -> None:
        """Records below ``offset`` are in the state now (re-processed by recovery): skip them
        if Faust delivers them again."""
        key = (partition, KIND_INDEX[kind])
        self._skip_below[key] = max(self._skip_below.get(key, 0), offset)

    def resume(self, partition: int, watermark: Offsets, models: dict[str, Offsets]) -> None:
        """After a restore: records below ``watermark`` and, per model, below its own
        offsets are already in the state and must not be applied again."""
        for index, offset in enumerate(watermark):
            self._skip_below[(partition, index)] = offset
            self.next_offsets.setdefault((partition, index), offset)
        for model, offsets in models.items():
            self.partition_of[model] = partition
            if offsets[0] > watermark[0] or offsets[1] > watermark[1]:
                self._skip_model[model] = offsets

    def captured(self, model: str, offsets: Offsets) -> Offsets:
        """Up to where ``model``'s state reflects its partition: the partition's offsets, or
        further when its restored record was newer than the watermark and processing has
        not yet caught up with it."""
        own = self._skip_model.get(model)
        if own is None:
            return offsets
        return (max(own[0], offsets[0]), max(own[1], offsets[1]))

    def offsets(self, partition: int) -> Offsets:
        return (self.next_offsets.get((partition, 0), 0), self.next_offsets.get((partition, 1), 0))

    def models_of(self, partition: int) -> list[str]:
        return [m for m, p in self.partition_of.items() if p == partition]

    def forget(self, partition: int) -> list[str]:
        """Drop everything about a partition this process no longer owns."""
        models = self.models_of(partition)
        self.engine.forget(models)
        for model in models:
            del self.partition_of[model]
            self._skip_model.pop(model, None)
        self.dirty.pop(partition, None)
        for index in (0, 1):
            self.next_offsets.pop((partition, index), None)
            self._skip_below.pop((partition, index), None)
        return models

    def tick(self, now_ms: int) -> Output:
        """Time passed without records: the engine's silence alerts, their models marked
        changed so that the next checkpoint records that their silence was reported."""
        out = Output()
        out.alerts = self.engine.tick(now_ms)
        for alert in out.alerts:
            partition = self.partition_of.get(alert.model)
            if partition is not None:
                self.dirty.setdefault(partition, set()).add(alert.model)
        return out

    def handle(self, records: Sequence[Record], now_ms: int) -> Output:
        out = Output()
        out.messages = len(records)
        for record in records:
            key = (record.partition, KIND_INDEX[record.kind])
            if record.offset < self._skip_below.get(key, 0):
                continue
            self.next_offsets[key] = record.offset + 1
            out.positions[(record.topic, record.partition)] = record.offset
            decoded = decode(
                record.value or b"",
                kind=record.kind,
                received_ms=record.timestamp_ms,
                limits=self._limits,
            )
            for rejection in decoded.rejections:
                out.dead_letters.append(DeadLetter(record, rejection))
            for event in decoded.events:
                self._apply(record, key[1], event, now_ms, out)
        return out

    def _apply(self, record: Record, index: int, event: Event, now_ms: int, out: Output) -> None:
        model = event.model
        if self._skip_model:
            captured = self._skip_model.get(model)
            if captured is not None and record.offset < captured[index]:
                return
        result = self.engine.process(event, now_ms, record.timestamp_ms)
        if result.rejection is not None:
            out.dead_letters.append(DeadLetter(record, result.rejection))
            return
        if self.partition_of.get(model) != record.partition:
            self.partition_of[model] = record.partition
        dirty = self.dirty.get(record.partition)
        if dirty is None:
            dirty = self.dirty[record.partition] = set()
        dirty.add(model)
        out.events[model] += 1
        out.updates += result.updates
        out.alerts += result.alerts
        if event.ts_given:
            out.latencies_ms.append(now_ms - event.ts)
