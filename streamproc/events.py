"""Feature and outcome events: the input contract, decoded and validated.

Producers send JSON (one event, or an array of events) as documented in
docs/events.md and the JSON Schemas in ``streamproc/schemas/``. :func:`decode`
turns any bytes into events and :class:`Rejection` values; it never raises on
bad input, so the worker can route every bad message to the dead-letter topic
with a reason instead of crashing or dropping it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from streamproc.settings import Limits


class EventKind(StrEnum):
    """Which contract an event follows; the worker knows it from the topic."""

    FEATURE = "feature"
    OUTCOME = "outcome"


class Reason(StrEnum):
    """Machine-readable reason codes of a rejection (stable: consumers match on them)."""

    INVALID_JSON = "invalid_json"
    """Not UTF-8 JSON."""
    EMPTY = "empty"
    """Zero bytes, or an empty array."""
    NOT_AN_OBJECT = "not_an_object"
    """The event (or an array element) is not a JSON object."""
    MISSING_FIELD = "missing_field"
    """A required field is absent (``model``, ``features``, an outcome's measure)."""
    WRONG_TYPE = "wrong_type"
    """A field has a JSON type the contract does not allow."""
    INVALID_VALUE = "invalid_value"
    """The type is right, the value is not (an unparseable timestamp, an empty name)."""
    TOO_LARGE = "too_large"
    """The message exceeds ``limits.max_message_bytes``."""
    TOO_MANY_EVENTS = "too_many_events"
    """An array message holds more than ``limits.max_batch_events`` events."""
    TOO_MANY_FEATURES = "too_many_features"
    """An event has more than ``limits.max_features_per_event`` features."""
    NAME_TOO_LONG = "name_too_long"
    """A model id, feature name or event id exceeds ``limits.max_name_length``."""
    TOO_MANY_STREAMS = "too_many_streams"
    """Accepting the event would track more than ``limits.max_streams_per_model`` streams."""
    WRONG_KIND = "wrong_kind"
    """The event's ``type`` contradicts the topic it arrived on."""


Feature = float | str | None
"""A decoded feature value: a finite float (numbers, booleans as 0/1), a category, or missing."""


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """The inputs a model saw for one prediction."""

    kind: ClassVar[EventKind] = EventKind.FEATURE
    model: str
    """Model id; also the Kafka message key."""
    features: dict[str, Feature]
    """Feature name to value; NaN, +/-inf and null arrive here as None (missing)."""
    ts: int
    """Event time in epoch milliseconds (the receive time when the producer sent none)."""
    id: str | None = None
    """Prediction / request id, echoed in alerts."""
    prediction: Feature = None
    """The model's output: a number (a stream of its own) or a label."""
    ts_given: bool = True
    """False when ``ts`` is the receive time because the event carried none."""


@dataclass(frozen=True, slots=True)
class OutcomeEvent:
    """Ground truth for a prediction, reduced to the quality measures streamproc watches."""

    kind: ClassVar[EventKind] = EventKind.OUTCOME
    model: str
    """Model id; also the Kafka message key."""
    ts: int
    """Event time in epoch milliseconds (the receive time when the producer sent none)."""
    error: float
    """0/1 misclassification (labels), absolute error (numbers), or the given error/loss."""
    error_name: str = "error"
    """Name of the error stream: ``loss`` when the producer sent a loss, else ``error``."""
    correct: bool | None = None
    """Whether a classification was right; None for regression outcomes."""
    id: str | None = None
    """Prediction / request id, echoed in alerts."""
    ts_given: bool = True
    """False when ``ts`` is the receive time because the event carried none."""


Event = FeatureEvent | OutcomeEvent


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message, or one event of an array message, was not accepted."""

    reason: Reason
    """Machine-readable code."""
    message: str
    """For humans: names the field at fault."""
    index: int | None = None
    """Position of the event in an array message; None when the whole message is rejected."""
    model: str | None = None
    """The event's model, when it could be read (for per-model metrics)."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one message decoded into: accepted events, in order, and rejections."""

    events: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def decode(payload: bytes, *, kind: EventKind | None, received_ms: int, limits: Limits) -> Decoded:
    """Decode one message (a JSON object, or an array of them) into events.

    ``kind`` is the contract the topic implies; None (a replayed file) means
    "an event carrying ``features`` is a feature event, else an outcome event",
    unless the event names its ``type``. ``received_ms`` stands in for ``ts``
    when an event has none. Never raises on bad input.
    """
    raise NotImplementedError
