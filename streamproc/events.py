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
from typing import Any, ClassVar, Final, NoReturn

import orjson

from streamproc.settings import Limits
from streamproc.timestamps import MAX_EPOCH_MS, rfc3339_to_ms

MAX_ABS_NUMBER: Final = 1e100
"""Largest magnitude of a feature value, prediction, error or loss (``out_of_range`` beyond).

Detectors and warm-up statistics square their inputs and sum them over the stream's life:
with |x| <= 1e100 a sum of squares stays below 1e212 even after 10**12 events, far from a
double's 1.8e308, so every state stays finite and restorable. 1e160 followed by 0 would
make the warm-up variance infinite, and a snapshot of it unrestorable."""
LABEL_FLOAT_LIMIT: Final = 2.0**63
"""A number label read as a float must be smaller in magnitude: every integer beyond 64 bits
becomes such a float, so an exact class id cannot be told from a lossy one."""


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
    VALUE_TOO_LONG = "value_too_long"
    """A string feature value or prediction label exceeds ``limits.max_category_length``."""
    TOO_MANY_MODELS = "too_many_models"
    """The event's model is new and the worker already tracks ``limits.max_models`` models
    (checked by the engine)."""
    WRONG_PARTITION = "wrong_partition"
    """The event arrived on another partition than the one Kafka's default (murmur2)
    partitioner assigns to its model id, so its state would split (checked by the worker;
    docs/partitioning.md)."""
    OUT_OF_RANGE = "out_of_range"
    """A number beyond what the detectors compute with safely or exactly: a feature value,
    prediction, error or loss beyond +/-:data:`MAX_ABS_NUMBER` (1e100), or a numeric
    ``y_true``/``y_pred`` beyond 64-bit integers."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """The event's ``ts`` is more than ``arrival.max_future_seconds`` ahead of processing time
    (checked by the engine, which knows the processing time)."""
    INTERNAL_ERROR = "internal_error"
    """Processing the message or event raised an exception (a bug, a detector that throws):
    not the producer's fault; the model's state was reset (docs/dead-letters.md)."""
    LABEL_EXPIRED = "label_expired"
    """A label waited ``labels.ttl_seconds`` of event time and no prediction with its id came
    (dead-lettered when it expires, as a synthesized message: docs/dead-letters.md)."""


Feature = float | str | None
"""A decoded feature value: a float within +/-:data:`MAX_ABS_NUMBER` (numbers, booleans as
0/1), a category, or missing."""


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    """The inputs a model saw for one prediction."""

    kind: ClassVar[EventKind] = EventKind.FEATURE
    model: str
    """Model id; also the Kafka message key."""
    features: dict[str, Feature]
    """Feature name to value; null arrives as None (missing). JSON has no NaN or infinity."""
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
    """0/1 misclassification (labels), absolute error (numbers), or the given error/loss;
    within +/-:data:`MAX_ABS_NUMBER` (decode refuses the rest)."""
    error_name: str = "error"
    """Name of the error stream: ``loss`` when the producer sent a loss, else ``error``."""
    correct: bool | None = None
    """Whether a classification was right; None for regression outcomes."""
    id: str | None = None
    """Prediction / request id, echoed in alerts."""
    ts_given: bool = True
    """False when ``ts`` is the receive time because the event carried none."""


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """Ground truth without the prediction (``id`` and ``y_true`` only): joined with the
    prediction of the feature event of the same model and id (docs/events.md, "Labels")."""

    kind: ClassVar[EventKind] = EventKind.OUTCOME
    model: str
    """Model id; also the Kafka message key."""
    ts: int
    """Event time in epoch milliseconds (the receive time when the producer sent none)."""
    id: str
    """The prediction's id: what the label is joined on."""
    y_true: str | int | bool | float
    """The truth: a class (string, integer or boolean) or a number (a float)."""
    ts_given: bool = True
    """False when ``ts`` is the receive time because the event carried none."""


Event = FeatureEvent | OutcomeEvent | LabelEvent


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


MAX_ERROR_DETAIL = 200
"""An internal error's message header is cut to this many characters (exception texts may
quote data of any size)."""


def internal_rejection(exc: Exception, model: str | None) -> Rejection:
    """The ``internal_error`` rejection of an exception raised while processing: its type and
    message, cut short (a dead-letter header, a replay report line)."""
    detail = f"internal error: {type(exc).__name__}: {exc}"
    if len(detail) > MAX_ERROR_DETAIL:
        detail = detail[:MAX_ERROR_DETAIL] + "..."
    return Rejection(Reason.INTERNAL_ERROR, detail, model=model)


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one message decoded into: accepted events, in order, and rejections."""

    events: list[Event] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    array: bool = False
    """Whether the message was an array, whose elements have positions."""

    def index_of(self, position: int) -> int | None:
        """The array position of ``events[position]`` (None for a single-object message).

        Events are the elements that were not rejected, in order, so the position is found
        from the rejections alone: nothing is stored per event for the rare caller (an
        event the engine refuses)."""
        if not self.array:
            return None
        index = position
        for rejection in self.rejections:  # ascending positions
            if rejection.index is None or rejection.index > index:
                break
            index += 1
        return index


def decode(payload: bytes, *, kind: EventKind | None, received_ms: int, limits: Limits) -> Decoded:
    """Decode one message (a JSON object, or an array of them) into events.

    ``kind`` is the contract the topic implies; None (a replayed file) means
    "an event carrying ``features`` is a feature event, else an outcome event",
    unless the event names its ``type``. ``received_ms`` stands in for ``ts``
    when an event has none. Never raises on bad input.

    >>> from streamproc.settings import Limits
    >>> message = b'{"model": "churn", "ts": 1764460800000, "features": {"age": 41, "plan": "pro"}}'
    >>> limits = Limits()
    >>> (event,) = decode(message, kind=EventKind.FEATURE, received_ms=0, limits=limits).events
    >>> event.model, event.features, event.ts
    ('churn', {'age': 41.0, 'plan': 'pro'}, 1764460800000)

    Bad input is a value, a rejection with a stable reason code:

    >>> decoded = decode(b'{"model": "m"}', kind=EventKind.FEATURE, received_ms=0, limits=limits)
    >>> decoded.rejections[0].reason, decoded.rejections[0].message
    (<Reason.MISSING_FIELD: 'missing_field'>, 'features: required')
    """
    one = decode_message(payload, kind=kind, received_ms=received_ms, limits=limits)
    return one if isinstance(one, Decoded) else Decoded(events=[one])


def decode_message(
    payload: bytes, *, kind: EventKind | None, received_ms: int, limits: Limits
) -> Event | Decoded:
    """:func:`decode` for the worker's hot path: a message that is one valid event (the usual
    case) comes back as that event alone, anything else as :func:`decode` returns it. A
    :class:`Decoded` per message would cost about as much as a detector update."""
    if not payload:
        return _whole(Reason.EMPTY, "message: empty")
    if len(payload) > limits.max_message_bytes:
        size = len(payload)
        return _whole(
            Reason.TOO_LARGE, f"message: {size} bytes; the limit is {limits.max_message_bytes}"
        )
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return _whole(Reason.INVALID_JSON, f"message: not valid UTF-8 JSON: {exc}")
    if type(doc) is dict:
        one = _event(doc, kind, received_ms, limits, None)
        return Decoded(rejections=[one]) if isinstance(one, Rejection) else one
    if type(doc) is not list:
        got = _json_type(doc)
        return _whole(
            Reason.NOT_AN_OBJECT, f"message: expected an object or an array of objects, got {got}"
        )
    if not doc:
        return _whole(Reason.EMPTY, "message: an empty array")
    if len(doc) > limits.max_batch_events:
        return _whole(
            Reason.TOO_MANY_EVENTS,
            f"message: {len(doc)} events; the limit is {limits.max_batch_events}",
        )
    decoded = Decoded(array=True)
    for index, item in enumerate(doc):
        one = _event(item, kind, received_ms, limits, index)
        if isinstance(one, Rejection):
            decoded.rejections.append(one)
        else:
            decoded.events.append(one)
    return decoded


class _Reject(Exception):
    """Unwinds one event's validation to the place that turns it into a Rejection."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _whole(reason: Reason, message: str) -> Decoded:
    return Decoded(rejections=[Rejection(reason, message)])


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages producers in any language read."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


_JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
_KINDS = {"feature": EventKind.FEATURE, "outcome": EventKind.OUTCOME}


def _short(text: str) -> str:
    """A producer's string, cut so that a rejection stays small."""
    return text if len(text) <= 40 else text[:40] + "..."


def _event(
    item: object, kind: EventKind | None, received_ms: int, limits: Limits, index: int | None
) -> Event | Rejection:
    """One event, or its rejection carrying the model once that is known (per-model metrics)."""
    if type(item) is not dict:
        return Rejection(
            Reason.NOT_AN_OBJECT, f"event: expected an object, got {_json_type(item)}", index
        )
    model = None
    max_name = limits.max_name_length
    try:  # each field's usual form is checked inline; the helpers take every other one
        given = item.get("model")
        if type(given) is not str or not given or len(given) > max_name:
            given = _name(given, "model", limits, required=True)
        model = given
        this_kind = kind if kind is not None and item.get("type") is None else _kind(item, kind)
        id_ = item.get("id")
        if id_ is not None and (type(id_) is not str or len(id_) > max_name):
            id_ = _id(id_, limits)
        ts = item.get("ts")
        ts_given = ts is not None
        if not ts_given:
            ts = received_ms
        elif type(ts) is not int or not 0 <= ts <= MAX_EPOCH_MS:
            ts = _ts(ts)
        if this_kind == EventKind.FEATURE:
            features = _features(item.get("features"), limits)
            prediction = item.get("prediction")
            if prediction is not None:
                prediction = _value(prediction, "prediction")
                if type(prediction) is str:
                    _category(prediction, "prediction", limits)
            return FeatureEvent(model, features, ts, id_, prediction, ts_given)
        if _is_label(item):
            return _label(item, model, ts, id_, limits)
        error, error_name, correct = _outcome(item)
        return OutcomeEvent(model, ts, error, error_name, correct, id_, ts_given)
    except _Reject as exc:
        return Rejection(exc.reason, exc.message, index, model)


def _name(value: object, where: str, limits: Limits, *, required: bool) -> str:
    """A model id, event id or feature name: bounded, as names key streams and ids fill alerts."""
    if type(value) is not str:
        if value is None and required:
            raise _Reject(Reason.MISSING_FIELD, f"{where}: required")
        raise _Reject(Reason.WRONG_TYPE, f"{where}: expected a string, got {_json_type(value)}")
    if not value and required:
        raise _Reject(Reason.INVALID_VALUE, f"{where}: must not be empty")
    if len(value) > limits.max_name_length:
        raise _Reject(
            Reason.NAME_TOO_LONG,
            f"{where}: {len(value)} characters; the limit is {limits.max_name_length}",
        )
    return value


def _category(value: str, where: str, limits: Limits) -> None:
    """A category is counted per feature (up to 64 of them), so its length bounds memory."""
    if len(value) > limits.max_category_length:
        raise _Reject(
            Reason.VALUE_TOO_LONG,
            f"{where}: a category of {len(value)} characters; the limit is "
            f"{limits.max_category_length}",
        )


def _kind(item: dict[str, Any], kind: EventKind | None) -> EventKind:
    """The topic's contract wins; an event's ``type`` may only confirm it."""
    declared = item.get("type")
    if declared is None:
        if kind is not None:
            return kind
        return EventKind.OUTCOME if item.get("features") is None else EventKind.FEATURE
    if type(declared) is not str:
        got = _json_type(declared)
        raise _Reject(Reason.WRONG_TYPE, f'type: expected "feature" or "outcome", got {got}')
    this_kind = _KINDS.get(declared)
    if this_kind is None:
        got = _short(declared)
        raise _Reject(Reason.INVALID_VALUE, f'type: expected "feature" or "outcome", got "{got}"')
    if kind is not None and this_kind != kind:
        raise _Reject(
            Reason.WRONG_KIND, f'type: "{declared}", but this topic carries {kind} events'
        )
    return this_kind


def _id(value: object, limits: Limits) -> str | None:
    """Integers are accepted because many producers number requests; alerts echo a string."""
    if value is None:
        return None
    if type(value) is int:
        value = str(value)
    elif type(value) is not str:
        got = _json_type(value)
        raise _Reject(Reason.WRONG_TYPE, f"id: expected a string or an integer, got {got}")
    return _name(value, "id", limits, required=False)


def _ts(value: object) -> int:
    """Epoch ms of the event's ``ts`` (given: not None)."""
    if type(value) is int or type(value) is float:
        if not 0 <= value <= MAX_EPOCH_MS:  # also false for NaN
            raise _Reject(Reason.INVALID_VALUE, f"ts: {value} is not in 0..{MAX_EPOCH_MS} ms")
        return int(value)
    if type(value) is str:
        try:
            return rfc3339_to_ms(value)
        except ValueError as exc:
            raise _Reject(Reason.INVALID_VALUE, f'ts: "{_short(value)}": {exc}') from None
    got = _json_type(value)
    raise _Reject(
        Reason.WRONG_TYPE, f"ts: expected epoch milliseconds or an RFC 3339 string, got {got}"
    )


def _features(value: object, limits: Limits) -> dict[str, Feature]:
    """Validate ``features`` and convert its values in place (the dict is ours, fresh from orjson).

    orjson yields no NaN or infinity (it rejects the message); floats are checked against
    :data:`MAX_ABS_NUMBER`, integers need no check (orjson keeps them within 64 bits).
    """
    if type(value) is not dict:
        if value is None:
            raise _Reject(Reason.MISSING_FIELD, "features: required")
        got = _json_type(value)
        raise _Reject(Reason.WRONG_TYPE, f"features: expected an object, got {got}")
    if not value:
        raise _Reject(Reason.INVALID_VALUE, "features: must not be empty")
    if len(value) > limits.max_features_per_event:
        raise _Reject(
            Reason.TOO_MANY_FEATURES,
            f"features: {len(value)}; the limit is {limits.max_features_per_event}",
        )
    if "" in value:
        raise _Reject(Reason.INVALID_VALUE, "features: a feature name is empty")
    max_length, max_category = limits.max_name_length, limits.max_category_length
    low, high = -MAX_ABS_NUMBER, MAX_ABS_NUMBER
    for name, item in value.items():
        if len(name) > max_length:
            _name(name, f"features.{_short(name)}", limits, required=True)
        kind = type(item)
        if kind is float:
            if low <= item <= high:
                continue
            _out_of_range(item, f"features.{_short(name)}")
        if item is None:
            continue
        if kind is str:
            if len(item) > max_category:
                _category(item, f"features.{_short(name)}", limits)
            continue
        if kind is int:
            value[name] = float(item)  # at most 2**64 in magnitude (orjson), so within range
        elif kind is bool:
            value[name] = 1.0 if item else 0.0
        else:
            _value(item, f"features.{_short(name)}")
    return value


def _value(value: object, where: str) -> Feature:
    """A feature or prediction value: number or boolean to float, string kept, null missing."""
    if type(value) is float:
        if -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:
            return value
        _out_of_range(value, where)
    if type(value) is str or value is None:
        return value
    if type(value) is int:
        return float(value)
    if type(value) is bool:
        return 1.0 if value else 0.0
    got = _json_type(value)
    raise _Reject(
        Reason.WRONG_TYPE, f"{where}: expected a number, string, boolean or null, got {got}"
    )


def _outcome(item: dict[str, Any]) -> tuple[float, str, bool | None]:
    """Reduce an outcome to (error, error stream name, correct); every given measure is checked."""
    error = _number(item.get("error"), "error")
    loss = _number(item.get("loss"), "loss")
    label_error, label_correct = _labels(item.get("y_true"), item.get("y_pred"))
    correct = item.get("correct")
    if correct is not None and type(correct) is not bool:
        got = _json_type(correct)
        raise _Reject(Reason.WRONG_TYPE, f"correct: expected a boolean, got {got}")
    if correct is None:
        correct = label_correct
    if error is not None:
        return error, "error", correct
    if loss is not None:
        return loss, "loss", correct
    if label_error is not None:
        return label_error, "error", correct
    if correct is not None:
        return (0.0 if correct else 1.0), "error", correct
    raise _Reject(
        Reason.MISSING_FIELD, "y_true and y_pred, error, loss or correct: at least one is required"
    )


_MEASURES = ("y_pred", "error", "loss", "correct")


def _is_label(item: dict[str, Any]) -> bool:
    """``id`` and ``y_true`` with none of the measures: the prediction is to be joined
    (labels.py). Without an ``id`` it is an outcome missing ``y_pred``, as before labels."""
    if item.get("y_true") is None or item.get("id") is None:
        return False
    return all(item.get(name) is None for name in _MEASURES)


def _label(
    item: dict[str, Any], model: str, ts: int, id_: str | None, limits: Limits
) -> LabelEvent:
    """A label waits in the model's state, so its truth is bounded like a category."""
    if not id_:
        raise _Reject(Reason.INVALID_VALUE, "id: a label's id must not be empty")
    y_true = item["y_true"]
    if type(y_true) not in _LABEL_TYPES:
        got = _json_type(y_true)
        raise _Reject(Reason.WRONG_TYPE, f"y_true: expected a string, number or boolean, got {got}")
    if type(y_true) is float and not -LABEL_FLOAT_LIMIT < y_true < LABEL_FLOAT_LIMIT:
        raise _Reject(Reason.OUT_OF_RANGE, f"y_true: {y_true:.17g} is beyond 64-bit integers")
    if type(y_true) is str:
        _category(y_true, "y_true", limits)
    return LabelEvent(model, ts, id_, y_true, item.get("ts") is not None)


def _number(value: object, where: str) -> float | None:
    """An error or loss: booleans are refused here, since 0/1 is what ``correct`` is for."""
    if value is None:
        return None
    if type(value) is int:
        return float(value)  # orjson's ints fit in 64 bits, so within MAX_ABS_NUMBER
    if type(value) is not float:
        raise _Reject(Reason.WRONG_TYPE, f"{where}: expected a number, got {_json_type(value)}")
    if not -MAX_ABS_NUMBER <= value <= MAX_ABS_NUMBER:  # also refuses NaN
        _out_of_range(value, where)
    return value


def _out_of_range(value: float, where: str) -> NoReturn:
    raise _Reject(
        Reason.OUT_OF_RANGE,
        f"{where}: {value:.17g} is beyond +/-{MAX_ABS_NUMBER:g}, the largest magnitude the "
        "detectors take",
    )


def _labels(y_true: object, y_pred: object) -> tuple[float | None, bool | None]:
    """(error, correct) from a truth/prediction pair; classification when both are labels.

    Both JSON integers count as class ids, compared exactly; a float on either side makes it
    regression. orjson reads an integer beyond 64 bits as the nearest float, so a number label
    read as a float of magnitude 2**63 or more may be a class id that lost its last digits:
    it is refused (``out_of_range``), never compared approximately.
    """
    if y_true is None or y_pred is None:
        if y_true is None and y_pred is None:
            return None, None
        absent, given = ("y_pred", "y_true") if y_pred is None else ("y_true", "y_pred")
        raise _Reject(Reason.MISSING_FIELD, f"{absent}: required when {given} is given")
    for value, where in ((y_true, "y_true"), (y_pred, "y_pred")):
        if type(value) not in _LABEL_TYPES:
            got = _json_type(value)
            raise _Reject(
                Reason.WRONG_TYPE, f"{where}: expected a string, number or boolean, got {got}"
            )
        if type(value) is float and not -LABEL_FLOAT_LIMIT < value < LABEL_FLOAT_LIMIT:
            raise _Reject(
                Reason.OUT_OF_RANGE,
                f"{where}: {value:.17g} is beyond 64-bit integers, where JSON decoding loses "
                "digits; send such class ids as strings",
            )
    if type(y_true) is type(y_pred) and type(y_true) is not float:
        correct = y_true == y_pred
        return (0.0 if correct else 1.0), correct
    if type(y_true) in _NUMBERS and type(y_pred) in _NUMBERS:
        # Both within 2**64 in magnitude, so the difference is far within MAX_ABS_NUMBER.
        return float(abs(y_true - y_pred)), None  # type: ignore[operator]
    got = f"{_json_type(y_true)} and {_json_type(y_pred)}"
    raise _Reject(Reason.WRONG_TYPE, f"y_true, y_pred: expected values of one type, got {got}")


_NUMBERS = (int, float)
_LABEL_TYPES = (str, bool, int, float)
