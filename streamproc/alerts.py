"""Drift alerts: the output contract (docs/alerts.md, ``schemas/alert.schema.json``).

An alert's ``alert_id`` is derived from the stream's identity, the detector
and the triggering event's position in the stream, never from wall-clock time
or process state. Replaying the same events (after a crash, in a backtest)
therefore yields the same ids, so consumers can de-duplicate on ``alert_id``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import orjson

from streamproc.domain import StreamKind

SCHEMA_VERSION = 2
"""Version 2: ids encode their parts unambiguously, so version 1 ids differ for every alert."""

_NAMESPACE = uuid.UUID("5b0f6f0e-3a52-4d0c-9a47-6c3d2f1e8a90")
"""UUIDv5 namespace of alert ids; changing it would change every id."""


class Severity(StrEnum):
    """How urgently a human should look."""

    INFO = "info"
    """A change for the better (fewer missing values, fewer errors)."""
    WARNING = "warning"
    """A change worth a look: under two standard deviations, or of unknown size."""
    CRITICAL = "critical"
    """A large change: two standard deviations or more, or a rate that at least doubled."""


class Status(StrEnum):
    """Where an alert is in its lifecycle (docs/alerts.md, "Lifecycle")."""

    FIRING = "firing"
    """The change is current; also what a message without ``status`` means."""
    RESOLVED = "resolved"
    """The stream has been stable for the configured span: the alert of the same id is over."""


@dataclass(frozen=True, slots=True)
class StreamId:
    """Which stream an alert is about."""

    model: str
    """Model id."""
    kind: StreamKind
    """What the stream measures."""
    name: str
    """Feature name, ``prediction``, ``error`` or ``loss``, ``correctness``."""


@dataclass(frozen=True, slots=True)
class CategoryShare:
    """How one category's share of a category stream moved."""

    category: str
    """The category (``__other__``: all categories not tracked)."""
    share_before: float
    """Its share of the reference (the events since the stream's previous alert or start)."""
    share_after: float
    """Its share of the most recent events (exponentially weighted, span ~200)."""
    change: str
    """``up``, ``down``, ``new`` (absent from the reference) or ``vanished`` (recent share
    under a tenth of the reference share)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What changed, in the stream's own units."""

    mean_before: float | None
    """Mean of the stream since its previous alert (or since it started)."""
    mean_after: float | None
    """Exponentially weighted mean of the stream's most recent events (span ~50)."""
    scale: float | None
    """The stream's standard deviation from its warm-up; None before warm-up ends."""
    magnitude: float | None
    """(mean_after - mean_before) / scale: the shift in standard deviations."""
    direction: str
    """``up``, ``down`` or ``none``."""
    window: int | None
    """The detector's window width after the change, when it has one (ADWIN)."""
    categories: tuple[CategoryShare, ...] | None = None
    """Category streams only: the categories that moved, largest first (docs/alerts.md)."""


@dataclass(frozen=True, slots=True)
class Member:
    """A stream alert that a ``model`` rollup alert stands for."""

    stream: StreamId
    alert_id: str
    """The stream's alert (its latest one when the rollup fired)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """A detector on a stream signalled a change."""

    alert_id: str
    """Deterministic id (UUIDv5 of stream, detector and event position): de-duplicate on it."""
    stream: StreamId
    """The stream that changed."""
    detector: dict[str, Any]
    """Detector type and its full parameters."""
    event_id: str | None
    """``id`` of the event that triggered the detection, if it had one."""
    event_ts: int
    """Event time (epoch ms) of the triggering event."""
    detected_at: int
    """Processing time (epoch ms) at which the worker or replay detected it."""
    events_seen: int
    """Events the stream had seen, the triggering one included (its position)."""
    change: Change
    """Summary of the change."""
    severity: Severity
    """How urgently to look."""
    schema_version: int = SCHEMA_VERSION
    """Version of this contract; bumped only on incompatible changes."""
    status: Status = Status.FIRING
    """``firing``, or ``resolved``: then every other field repeats the firing alert's."""
    resolved_at: int | None = None
    """Processing time (epoch ms) of the resolution; set only when ``resolved``."""
    members: tuple[Member, ...] | None = None
    """The stream alerts a ``model`` rollup alert stands for; None on other alerts."""

    @property
    def model(self) -> str:
        return self.stream.model

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["model"] = self.stream.model
        if self.change.categories is None:
            del body["change"]["categories"]  # present on category streams only
        for optional in _OMITTED_WHEN_NONE:  # absent, as in messages from before the lifecycle
            if body[optional] is None:
                del body[optional]
        return body

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS)


def alert_id(stream: StreamId, detector_index: int, detector_type: str, position: int) -> str:
    """The deterministic id of the alert a detector raised at a stream position.

    The parts are hashed as a JSON array, not joined with a separator: model ids and
    feature names may contain any character, and two streams whose names only differ in
    where a separator falls must not share ids (consumers de-duplicate on them).

    >>> from streamproc.domain import StreamKind
    >>> age = StreamId("churn", StreamKind.VALUE, "age")
    >>> alert_id(age, 0, "adwin", 1200)
    '33a4ca5e-05b1-5335-920a-5d9aae47913d'
    >>> alert_id(age, 0, "adwin", 1200) == alert_id(age, 0, "adwin", 1201)
    False
    """
    parts = (stream.model, stream.kind.value, stream.name, detector_index, detector_type, position)
    return str(uuid.uuid5(_NAMESPACE, orjson.dumps(parts).decode()))


_OMITTED_WHEN_NONE = ("resolved_at", "members")


def from_json(payload: bytes) -> Alert:
    """Parse an alert produced by :meth:`Alert.to_json` (used by ``streamproc alerts``)."""
    return from_dict(orjson.loads(payload))


def from_dict(body: dict[str, Any]) -> Alert:
    """An alert from :meth:`Alert.to_dict` output; raises KeyError, TypeError or ValueError
    on a body that is not one."""
    stream = body["stream"]
    members = body.get("members")
    return Alert(
        alert_id=body["alert_id"],
        stream=StreamId(stream["model"], StreamKind(stream["kind"]), stream["name"]),
        detector=body["detector"],
        event_id=body.get("event_id"),
        event_ts=body["event_ts"],
        detected_at=body["detected_at"],
        events_seen=body["events_seen"],
        change=_change(body["change"]),
        severity=Severity(body["severity"]),
        schema_version=body.get("schema_version", SCHEMA_VERSION),
        status=Status(body.get("status", Status.FIRING)),
        resolved_at=body.get("resolved_at"),
        members=None if members is None else tuple(_member(m) for m in members),
    )


def _member(body: dict[str, Any]) -> Member:
    stream = body["stream"]
    return Member(
        StreamId(stream["model"], StreamKind(stream["kind"]), stream["name"]), body["alert_id"]
    )


def _change(body: dict[str, Any]) -> Change:
    categories = body.pop("categories", None)
    if categories is not None:
        categories = tuple(CategoryShare(**c) for c in categories)
    return Change(**body, categories=categories)
