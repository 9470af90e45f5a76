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
from streamproc.engine import Engine
from streamproc.events import EventKind, Rejection, decode
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


class Pipeline:
    """Decode records and run their events through one engine."""

    def __init__(self, engine: Engine, limits: Limits) -> None:
        self.engine = engine
        self._limits = limits

    def handle(self, records: Sequence[Record], now_ms: int) -> Output:
        out = Output()
        process = self.engine.process
        out.messages = len(records)
        for record in records:
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
                result = process(event, now_ms)
                if result.rejection is not None:
                    out.dead_letters.append(DeadLetter(record, result.rejection))
                    continue
                out.events[event.model] += 1
                out.updates += result.updates
                out.alerts += result.alerts
                if event.ts_given:
                    out.latencies_ms.append(now_ms - event.ts)
        return out
