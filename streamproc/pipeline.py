"""One batch of Kafka records through decode and the engine, as plain values.

The Faust app only converts its events to :class:`Record` values, calls
:meth:`Pipeline.handle`, and sends what comes back. Keeping this step free of
Faust makes it testable without a broker and keeps the logic out of framework
callbacks.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from streamproc.alerts import Alert
from streamproc.checkpoints import InvalidRecord, Offsets, PartitionCheckpoint
from streamproc.engine import Engine
from streamproc.errors import StateError
from streamproc.events import (
    Decoded,
    Event,
    EventKind,
    Rejection,
    decode_message,
    internal_rejection,
)
from streamproc.labels import DeadLabel
from streamproc.ledger import KIND_INDEX, Ledger, Round
from streamproc.partitioning import PartitionRule
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
    value: bytes
    """The original bytes; for one element of an array message, that element's bytes alone."""
    key: bytes | None
    """The source key (dropped from an element's letter when it is too long to be a model id)."""
    error: Exception | None = None
    """For ``internal_error``: the exception, whose traceback the worker logs."""

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


@dataclass(frozen=True, slots=True)
class Failure:
    """An exception caught while processing, and the model whose state it cost."""

    stage: str
    """Where: ``decode``, ``event`` (the engine), ``tick``, ``restore``, ``snapshot`` or
    ``send``."""
    error: Exception
    model: str | None = None
    """The model whose state was reset (dropped, to start afresh), or None."""


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
    evicted: list[str] = field(default_factory=list)
    """Models forgotten for being idle (a tick's output)."""
    failures: list[Failure] = field(default_factory=list)
    """Exceptions caught while producing this output (their records are dead letters too)."""


class Pipeline:
    """Decode records and run their events through one engine, tracking what state covers.

    What a checkpoint needs (per partition the next offset to process on each
    topic, which models live where, which changed since the last checkpoint) is
    kept in its :class:`~streamproc.ledger.Ledger`, updated in the same
    synchronous step as the state itself, so a snapshot taken between two
    batches is always consistent with its offsets.
    """

    def __init__(
        self,
        engine: Engine,
        limits: Limits,
        partitions: int | None = None,
        outcome_topic: str | None = None,
    ) -> None:
        """``partitions``, the source topics' partition count, turns on the partitioning
        rule (:mod:`streamproc.partitioning`); without it every partition is accepted.
        ``outcome_topic`` names the source of an expired label's dead letter (default: the
        topic of the record whose event expired it)."""
        self._outcome_topic = outcome_topic
        self.engine = engine
        self._limits = limits
        self.rule = None if partitions is None else PartitionRule(partitions)
        self.ledger = Ledger()
        self._max_key = 4 * limits.max_name_length
        """Longest key (in UTF-8 bytes) a model id can be: longer ones are not repeated on
        every rejected element's dead letter."""
        self._unreported: list[Failure] = []
        """Failures outside a batch (restores, checkpoint snapshots), reported with the next
        output."""

    def restore(
        self, partition: int, checkpoint: PartitionCheckpoint, starts: Offsets = (0, 0)
    ) -> Offsets:
        """Load a partition's checkpoint; returns the watermark processing must resume from
        (the ledger takes the partition over: :meth:`~streamproc.ledger.Ledger.restore`,
        where ``starts``, the log start offsets, are explained).

        A model record that does not restore (its snapshot carries another model, or fails
        the engine's checks) is added to ``checkpoint.invalid`` and restores nothing; one
        whose restore raises unexpectedly is reported as a failure. Either way that model
        starts afresh (see :meth:`reset`: the next checkpoint replaces the bad record) and
        the partition's other models are unaffected."""
        models: dict[str, Offsets] = {}
        for record in checkpoint.models.values():
            model = record.model
            try:
                restored = self.engine.restore(record.snapshot, only=(model,))
            except StateError as exc:
                checkpoint.invalid.append(InvalidRecord(f"m/{model}", model, str(exc)))
            except Exception as exc:  # a bug must not stop the partition
                self._unreported.append(Failure("restore", exc, model))
            else:
                for rejected in restored.rejected:  # valid framing, invalid fields
                    checkpoint.invalid.append(
                        InvalidRecord(f"m/{model}", rejected.model, rejected.reason)
                    )
                if model in restored.models:
                    models[model] = record.offsets
                    continue
            self.reset(model, partition)
        return self.ledger.restore(partition, checkpoint, models, starts)

    def forget(self, partition: int) -> list[str]:
        """Drop everything about a partition this process no longer owns: its models' state
        and its bookkeeping."""
        models = self.ledger.forget(partition)
        self.engine.forget(models)
        return models

    def rounds(self, partitions: list[int], now_ms: int) -> list[Round]:
        """A checkpoint of ``partitions``, built synchronously between batches."""
        return self.ledger.rounds(partitions, now_ms, self.snapshot)

    def round(self, partition: int, now_ms: int) -> Round:
        """One partition's checkpoint round (see :meth:`rounds`)."""
        return self.ledger.round(partition, now_ms, self.snapshot)

    def tick(self, now_ms: int) -> Output:
        """Time passed without records: the engine's silence alerts, their models marked
        changed so that the next checkpoint records that their silence was reported."""
        out = self._output()
        failed: list[tuple[str, Exception]] = []
        try:
            out.alerts = self.engine.tick(now_ms, failed)
        except Exception as exc:  # a bug outside any one model's state: retried next tick
            out.failures.append(Failure("tick", exc))
        for model, error in failed:
            self.reset(model, self.ledger.partition(model))
            out.failures.append(Failure("tick", error, model))
        for alert in out.alerts:
            self.ledger.alerted(alert.model)
        evicted = self.engine.evict_idle(now_ms)
        out.alerts += evicted.alerts
        out.evicted = evicted.models
        for model in evicted.models:
            self.ledger.evict(model)
        return out

    def reset(self, model: str, partition: int | None) -> None:
        """Quarantine a model whose processing raised: drop its state so that its next event
        starts afresh, and mark it changed so that the next checkpoint replaces what was
        stored for it (a restart then does not load the state that failed again)."""
        self.engine.forget([model])
        if partition is not None:
            self.ledger.changed(model, partition)

    def snapshot(self, model: str, partition: int) -> bytes | None:
        """``model``'s state for a checkpoint, or None for one whose state cannot be encoded:
        that model is reset (and reported) rather than failing every checkpoint of every
        partition, and the caller writes it as absent."""
        try:
            return self.engine.snapshot([model])
        except Exception as exc:
            self.reset(model, partition)
            self._unreported.append(Failure("snapshot", exc, model))
            return None

    def _output(self) -> Output:
        out = Output()
        if self._unreported:
            out.failures, self._unreported = self._unreported, []
        return out

    def handle(self, records: Sequence[Record], now_ms: int) -> Output:
        """Run a batch. An exception while handling one record or event never escapes: that
        record (or array element) becomes an ``internal_error`` dead letter, the event's model
        is reset, and the rest of the batch goes on."""
        out = self._output()
        out.messages = len(records)
        for record in records:
            key = (record.partition, KIND_INDEX[record.kind])
            if record.offset < self.ledger.skip_below.get(key, 0):
                continue
            self.ledger.next_offsets[key] = record.offset + 1
            out.positions[(record.topic, record.partition)] = record.offset
            mark = len(out.dead_letters)
            try:
                self._record(record, key[1], now_ms, out)
            except Exception as exc:  # not in an event: decoding or dead-letter building
                del out.dead_letters[mark:]  # the whole message replaces its elements' letters
                out.failures.append(Failure("decode", exc))
                rejection = internal_rejection(exc, None)
                out.dead_letters.append(
                    DeadLetter(record, rejection, _value(record), record.key, exc)
                )
        return out

    def _record(self, record: Record, kind: int, now_ms: int, out: Output) -> None:
        decoded = decode_message(
            record.value or b"",
            kind=record.kind,
            received_ms=record.timestamp_ms,
            limits=self._limits,
        )
        if isinstance(decoded, Decoded):
            self._decoded(record, kind, decoded, now_ms, out)
            return
        error = None
        try:  # the usual message: one valid event
            rejection = self._apply(record, kind, decoded, now_ms, out)
        except Exception as exc:  # a bug, a detector that throws, state that is bad
            rejection, error = self._failed(record, decoded, exc, out), exc
        if rejection is not None:
            elements = _Elements(record.value or b"")
            out.dead_letters.append(self._letter(record, rejection, elements, error))

    def _decoded(
        self, record: Record, kind: int, decoded: Decoded, now_ms: int, out: Output
    ) -> None:
        """An array message, or one with rejections: each element's letter carries its index."""
        elements: _Elements | None = None
        if decoded.rejections:
            elements = _Elements(record.value or b"")
            for refused in decoded.rejections:
                out.dead_letters.append(self._letter(record, refused, elements))
        for position, event in enumerate(decoded.events):
            error = None
            try:
                rejection = self._apply(record, kind, event, now_ms, out)
            except Exception as exc:  # a bug, a detector that throws, state that is bad
                rejection, error = self._failed(record, event, exc, out), exc
            if rejection is not None:
                if elements is None:
                    elements = _Elements(record.value or b"")
                rejection = _at(rejection, decoded, position)
                out.dead_letters.append(self._letter(record, rejection, elements, error))

    def _failed(self, record: Record, event: Event, exc: Exception, out: Output) -> Rejection:
        """An event whose processing raised: its model starts afresh, the failure is reported
        and the event becomes an ``internal_error`` dead letter."""
        self.reset(event.model, record.partition)
        out.failures.append(Failure("event", exc, event.model))
        return internal_rejection(exc, event.model)

    def _letter(
        self,
        record: Record,
        rejection: Rejection,
        elements: _Elements,
        error: Exception | None = None,
    ) -> DeadLetter:
        """The dead letter of one rejection: the whole message, or the rejected element's own
        bytes, so that the letters of one message together are at most its size."""
        index = rejection.index
        if index is None:
            return DeadLetter(record, rejection, record.value or b"", record.key, error)
        key = record.key
        if key is not None and len(key) > self._max_key:
            key = None
        return DeadLetter(record, rejection, elements.get(index), key, error)

    def _apply(
        self, record: Record, index: int, event: Event, now_ms: int, out: Output
    ) -> Rejection | None:
        model = event.model
        rule = self.rule
        if rule is not None:
            misplaced = rule.check(model, record.partition)
            if misplaced is not None:
                return misplaced
        if self.ledger.skip_model:
            captured = self.ledger.skip_model.get(model)
            if captured is not None and record.offset < captured[index]:
                return None
        result = self.engine.process(event, now_ms, record.timestamp_ms, record.offset)
        if result.dead_labels:
            out.dead_letters += [self._dead_label(record, d) for d in result.dead_labels]
        if result.rejection is not None:
            return result.rejection
        self.ledger.changed(model, record.partition)
        out.events[model] += 1
        out.updates += result.updates
        out.alerts += result.alerts
        if event.ts_given:
            out.latencies_ms.append(now_ms - event.ts)
        return None

    def _dead_label(self, record: Record, dead: DeadLabel) -> DeadLetter:
        """A label that left the join unjoined, found after its own record was handled: its
        letter carries the label re-encoded (model, id, y_true, ts) and its record's offset
        (docs/dead-letters.md)."""
        source = Record(
            self._outcome_topic or record.topic,
            record.partition,
            dead.source,
            dead.ts,
            record.key,
            None,
            EventKind.OUTCOME,
        )
        rejection = Rejection(dead.reason, dead.message, model=dead.model)
        return DeadLetter(source, rejection, orjson.dumps(dead.payload()), dead.model.encode())


def _value(record: Record) -> bytes:
    return b"" if record.value is None else record.value


def _at(rejection: Rejection, decoded: Decoded, position: int) -> Rejection:
    """An engine-level rejection of ``decoded.events[position]``, with the event's array
    position (the engine does not know it; decoding does)."""
    index = decoded.index_of(position)
    if index is None:
        return rejection
    return Rejection(rejection.reason, rejection.message, index, rejection.model)


_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')
"""A JSON string (skipped whole, so brackets and commas inside it do not count), or a
bracket or comma."""
_QUOTE, _COMMA, _OPENERS = ord('"'), ord(","), frozenset(b"[{")


class _Elements:
    """The elements of one array message as its original bytes, found at most once per message
    however many of them are rejected (never re-parsed per element, never re-encoded)."""

    __slots__ = ("_bounds", "_payload")

    def __init__(self, payload: bytes) -> None:
        self._payload = payload
        self._bounds: list[int] | None = None

    def get(self, index: int) -> bytes:
        bounds = self._bounds
        if bounds is None:
            bounds = self._bounds = _element_bounds(self._payload)
        return self._payload[bounds[index] + 1 : bounds[index + 1]].strip()


def _element_bounds(payload: bytes) -> list[int]:
    """Offsets of the top-level ``[``, of the commas between its elements and of its ``]``, in
    a message that decoded as a JSON array (so it is valid JSON)."""
    bounds = []
    depth = 0
    for match in _TOKENS.finditer(payload):
        start = match.start()
        char = payload[start]
        if char == _QUOTE:
            continue
        if char == _COMMA:
            if depth == 1:
                bounds.append(start)
        elif char in _OPENERS:
            depth += 1
            if depth == 1:
                bounds.append(start)
        else:
            depth -= 1
            if depth == 0:
                bounds.append(start)
                break
    return bounds
