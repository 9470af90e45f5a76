"""The input contract: decode() against docs/events.md and the JSON Schemas."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.events import (
    Decoded,
    Event,
    EventKind,
    FeatureEvent,
    LabelEvent,
    OutcomeEvent,
    Reason,
    Rejection,
    decode,
)
from streamproc.settings import Limits
from streamproc.timestamps import MAX_EPOCH_MS, rfc3339_to_ms

FEATURE = EventKind.FEATURE
OUTCOME = EventKind.OUTCOME
LIMITS = Limits()
RECEIVED = 1_764_324_000_000  # 2025-11-28T10:00:00Z


def run(message: object, kind: EventKind | None = FEATURE, limits: Limits = LIMITS) -> Decoded:
    payload = message if isinstance(message, bytes) else orjson.dumps(message)
    return decode(payload, kind=kind, received_ms=RECEIVED, limits=limits)


def accepted(message: object, kind: EventKind | None = FEATURE) -> Event:
    decoded = run(message, kind)
    assert decoded.rejections == [], decoded.rejections
    assert len(decoded.events) == 1
    return decoded.events[0]


def rejected(
    message: object, kind: EventKind | None = FEATURE, limits: Limits = LIMITS
) -> Rejection:
    decoded = run(message, kind, limits)
    assert decoded.events == []
    assert len(decoded.rejections) == 1
    return decoded.rejections[0]


def feature(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "features": {"x": 1.5}, **fields}


def outcome(**fields: Any) -> dict[str, Any]:
    return {"model": "m", **fields}


# -- whole-message rejections -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.EMPTY),
        (b"[]", Reason.EMPTY),
        (b"{", Reason.INVALID_JSON),
        (b"\xff\xfe{}", Reason.INVALID_JSON),
        (b'{"model": "\xe9"}', Reason.INVALID_JSON),  # Latin-1, not UTF-8
        (b'{"model": "m", "features": {"x": NaN}}', Reason.INVALID_JSON),
        (b'{"model": "m", "features": {"x": Infinity}}', Reason.INVALID_JSON),
        (b'"text"', Reason.NOT_AN_OBJECT),
        (b"42", Reason.NOT_AN_OBJECT),
        (b"null", Reason.NOT_AN_OBJECT),
    ],
)
def test_whole_message_rejections(payload: bytes, reason: Reason) -> None:
    rejection = rejected(payload)
    assert rejection.reason is reason
    assert rejection.index is None
    assert rejection.message.startswith("message: ")


def test_too_large_is_checked_before_parsing() -> None:
    limits = Limits(max_message_bytes=16)
    rejection = rejected(b"{" * 17, limits=limits)  # would be invalid_json if parsed
    assert rejection.reason is Reason.TOO_LARGE
    assert "17 bytes" in rejection.message
    assert rejected(b"x" * 16, limits=limits).reason is Reason.INVALID_JSON


def test_too_many_events() -> None:
    limits = Limits(max_batch_events=2)
    rejection = rejected([feature()] * 3, limits=limits)
    assert (rejection.reason, rejection.index) == (Reason.TOO_MANY_EVENTS, None)
    assert len(run([feature()] * 2, limits=limits).events) == 2


# -- batches ------------------------------------------------------------------------------


def test_batch_keeps_order_and_indexes_rejections() -> None:
    decoded = run(
        [
            feature(id="a"),
            "not an object",
            feature(id="b", model=""),
            {"model": "m2", "features": {"x": [1]}},
            feature(id="c"),
        ]
    )
    assert [e.id for e in decoded.events] == ["a", "c"]
    assert [(r.index, r.reason, r.model) for r in decoded.rejections] == [
        (1, Reason.NOT_AN_OBJECT, None),
        (2, Reason.INVALID_VALUE, None),
        (3, Reason.WRONG_TYPE, "m2"),
    ]
    assert decoded.rejections[0].message == "event: expected an object, got string"


def test_single_object_rejection_has_no_index_but_the_model() -> None:
    rejection = rejected(feature(model="churn", features={}))
    assert (rejection.index, rejection.model) == (None, "churn")


# -- common fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "reason", "field"),
    [
        ({"features": {"x": 1}}, Reason.MISSING_FIELD, "model"),
        (feature(model=None), Reason.MISSING_FIELD, "model"),
        (feature(model=3), Reason.WRONG_TYPE, "model"),
        (feature(model=""), Reason.INVALID_VALUE, "model"),
        (feature(model="m" * 201), Reason.NAME_TOO_LONG, "model"),
        (feature(id=1.5), Reason.WRONG_TYPE, "id"),
        (feature(id=True), Reason.WRONG_TYPE, "id"),
        (feature(id=["a"]), Reason.WRONG_TYPE, "id"),
        (feature(id="i" * 201), Reason.NAME_TOO_LONG, "id"),
        (feature(type=1), Reason.WRONG_TYPE, "type"),
        (feature(type="features"), Reason.INVALID_VALUE, "type"),
        (feature(type="outcome"), Reason.WRONG_KIND, "type"),
        (feature(ts=True), Reason.WRONG_TYPE, "ts"),
        (feature(ts={"ms": 1}), Reason.WRONG_TYPE, "ts"),
        (feature(ts=-1), Reason.INVALID_VALUE, "ts"),
        (feature(ts=-0.5), Reason.INVALID_VALUE, "ts"),
        (feature(ts=MAX_EPOCH_MS + 1), Reason.INVALID_VALUE, "ts"),
        (feature(ts="2026-11-28T10:00:00"), Reason.INVALID_VALUE, "ts"),
        (feature(ts="2026-11-28"), Reason.INVALID_VALUE, "ts"),
        (feature(ts="2026-02-30T10:00:00Z"), Reason.INVALID_VALUE, "ts"),
        (feature(ts="2026-11-28T24:00:00Z"), Reason.INVALID_VALUE, "ts"),
        (feature(ts="2026-11-28T10:00:00+24:00"), Reason.INVALID_VALUE, "ts"),
        (feature(ts="1969-12-31T23:59:59Z"), Reason.INVALID_VALUE, "ts"),
        (feature(ts="\u0662\u0660\u0662\u0666-11-28T10:00:00Z"), Reason.INVALID_VALUE, "ts"),
    ],
)
def test_common_field_rejections(event: dict[str, Any], reason: Reason, field: str) -> None:
    rejection = rejected(event)
    assert rejection.reason is reason
    assert rejection.message.startswith(f"{field}: "), rejection.message


def test_rejection_carries_the_model_only_when_it_is_valid() -> None:
    assert rejected(feature(model="churn", ts=True)).model == "churn"
    assert rejected(feature(model="m" * 201)).model is None


def test_id_accepts_strings_and_integers() -> None:
    assert accepted(feature(id="req-1")).id == "req-1"
    assert accepted(feature(id=42)).id == "42"
    assert accepted(feature(id=2**64 - 1)).id == str(2**64 - 1)
    assert accepted(feature(id=None)).id is None
    assert accepted(feature()).id is None
    # beyond 64 bits orjson reads a float, which would lose digits
    assert rejected(b'{"model":"m","features":{"x":1},"id":18446744073709551616}').reason is (
        Reason.WRONG_TYPE
    )


def test_unknown_fields_are_ignored() -> None:
    event = accepted(feature(schema_version=7, extra={"a": [1]}))
    assert event == accepted(feature())


# -- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        (1_764_324_000_123, 1_764_324_000_123),
        (1_764_324_000_123.9, 1_764_324_000_123),
        (0, 0),
        ("2026-11-28T10:00:00Z", 1_795_860_000_000),
        ("2026-11-28t10:00:00z", 1_795_860_000_000),
        ("2026-11-28 10:00:00Z", 1_795_860_000_000),
        ("2026-11-28T10:00:00.123+01:00", 1_795_856_400_123),
        ("2026-11-28T10:00:00.1234567-02:30", 1_795_869_000_123),
        ("2026-11-28T10:00:00.5Z", 1_795_860_000_500),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000),  # leap second: next minute's start
        ("9999-12-31T23:59:59.999Z", MAX_EPOCH_MS),
    ],
)
def test_ts_forms(ts: object, ms: int) -> None:
    event = accepted(feature(ts=ts))
    assert (event.ts, event.ts_given) == (ms, True)


@pytest.mark.parametrize("ts", [None, "absent"])
def test_absent_ts_is_the_receive_time(ts: object) -> None:
    event = accepted(feature() if ts == "absent" else feature(ts=ts))
    assert (event.ts, event.ts_given) == (RECEIVED, False)


@settings(deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    digits=st.integers(0, 9),
    separator=st.sampled_from("Tt "),
)
def test_rfc3339_agrees_with_datetime(
    when: datetime, offset_minutes: int, digits: int, separator: str
) -> None:
    local = when.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    text = local.isoformat(sep=separator, timespec="microseconds")
    fraction = f"{local.microsecond:06d}000"[:digits]
    text = text[:19] + (f".{fraction}" if digits else "") + text[26:]
    since = local - datetime(1970, 1, 1, tzinfo=UTC)
    expected = since // timedelta(milliseconds=1)
    if digits < 3:
        expected -= local.microsecond // 1000 - int(fraction.ljust(3, "0"))
    assert rfc3339_to_ms(text) == expected
    assert rfc3339_to_ms(text.replace("+00:00", "Z")) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T10:00:00+00:60",
        "2026-11-28T10:00:00+1:00",
        "2026-11-28T10:00:00.Z",
        "2026-11-28T10:00Z",
        "2026-11-28T10:00:00Z ",
        "2026-11-28T10:00:00Z\n",
        "2026-W48-6T10:00:00Z",
        "20261128T100000Z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        rfc3339_to_ms(text)


# -- kinds --------------------------------------------------------------------------------


def test_kind_inference_without_a_topic_contract() -> None:
    assert isinstance(accepted(feature(), kind=None), FeatureEvent)
    assert isinstance(accepted(outcome(error=0.5), kind=None), OutcomeEvent)
    assert isinstance(accepted(feature(type="feature"), kind=None), FeatureEvent)
    assert isinstance(accepted(feature(type="outcome", error=1), kind=None), OutcomeEvent)
    assert isinstance(accepted(outcome(type="feature", features={"a": 1}), kind=None), FeatureEvent)
    assert isinstance(accepted(outcome(features=None, correct=True), kind=None), OutcomeEvent)


def test_type_must_match_the_topic() -> None:
    assert isinstance(accepted(outcome(type="outcome", loss=1.0), kind=OUTCOME), OutcomeEvent)
    assert isinstance(accepted(feature(type=None)), FeatureEvent)
    rejection = rejected(outcome(type="feature", loss=1.0), kind=OUTCOME)
    assert rejection.reason is Reason.WRONG_KIND
    assert rejection.message == 'type: "feature", but this topic carries outcome events'
    # the topic decides, not the presence of features
    assert rejected(feature(), kind=OUTCOME).reason is Reason.MISSING_FIELD


# -- features -----------------------------------------------------------------------------


def test_feature_values() -> None:
    event = accepted(
        feature(
            features={
                "f": 0.25,
                "i": 3,
                "big": 2**64 - 1,
                "t": True,
                "n": False,
                "s": "gold",
                "missing": None,
            },
            prediction=0.73,
        )
    )
    assert isinstance(event, FeatureEvent)
    assert event.features == {
        "f": 0.25,
        "i": 3.0,
        "big": float(2**64 - 1),
        "t": 1.0,
        "n": 0.0,
        "s": "gold",
        "missing": None,
    }
    assert all(type(v) in (float, str, type(None)) for v in event.features.values())
    assert event.prediction == 0.73


def test_huge_numbers() -> None:
    # integers beyond 64 bits are read as (finite) floats
    event = accepted(b'{"model":"m","features":{"x":123456789012345678901234567890}}')
    assert isinstance(event, FeatureEvent)
    assert event.features == {"x": 1.2345678901234568e29}
    # numbers beyond a double's range are not valid JSON for orjson: the whole message goes
    for text in (b"1e400", b"-1e400", b"1" + b"0" * 400):
        payload = b'[{"model":"m","features":{"x":1}},{"model":"m","features":{"x":%s}}]' % text
        rejection = rejected(payload)
        assert (rejection.reason, rejection.index) == (Reason.INVALID_JSON, None)
        assert "infinity" in rejection.message


@pytest.mark.parametrize(
    ("prediction", "value"),
    [(1, 1.0), (0.5, 0.5), (True, 1.0), (False, 0.0), ("cat", "cat"), (None, None)],
)
def test_prediction(prediction: object, value: object) -> None:
    event = accepted(feature(prediction=prediction))
    assert isinstance(event, FeatureEvent)
    assert event.prediction == value
    assert type(event.prediction) is type(value)


@pytest.mark.parametrize(
    ("event", "reason", "field"),
    [
        ({"model": "m"}, Reason.MISSING_FIELD, "features"),
        (feature(features=None), Reason.MISSING_FIELD, "features"),
        (feature(features=[1.0]), Reason.WRONG_TYPE, "features"),
        (feature(features={}), Reason.INVALID_VALUE, "features"),
        (feature(features={"": 1}), Reason.INVALID_VALUE, "features"),
        (feature(features={"a": 1, "b" * 201: 1}), Reason.NAME_TOO_LONG, "features.bbbb"),
        (feature(features={"age": [1]}), Reason.WRONG_TYPE, "features.age"),
        (feature(features={"age": 1, "geo": {"lat": 1}}), Reason.WRONG_TYPE, "features.geo"),
        (feature(prediction=[0.5]), Reason.WRONG_TYPE, "prediction"),
        (feature(prediction={"p": 0.5}), Reason.WRONG_TYPE, "prediction"),
    ],
)
def test_feature_rejections(event: dict[str, Any], reason: Reason, field: str) -> None:
    rejection = rejected(event)
    assert rejection.reason is reason
    assert rejection.message.startswith(field), rejection.message
    assert rejection.model == "m"


def test_feature_wrong_type_message() -> None:
    message = rejected(feature(features={"age": [1]})).message
    assert message == "features.age: expected a number, string, boolean or null, got array"


def test_too_many_features() -> None:
    limits = Limits(max_features_per_event=2)
    rejection = rejected(feature(features={"a": 1, "b": 2, "c": 3}), limits=limits)
    assert rejection.reason is Reason.TOO_MANY_FEATURES
    assert rejection.message.startswith("features: 3")
    assert run(feature(features={"a": 1, "b": 2}), limits=limits).events


def test_name_limit_is_configurable() -> None:
    limits = Limits(max_name_length=3)
    assert run(feature(model="abc", features={"xyz": 1}, id=123), limits=limits).events
    for event, field in [
        (feature(model="abcd"), "model"),
        (feature(features={"wxyz": 1}), "features.wxyz"),
        (feature(id="abcd"), "id"),
        (feature(id=1234), "id"),
    ]:
        rejection = rejected(event, limits=limits)
        assert rejection.reason is Reason.NAME_TOO_LONG
        assert rejection.message.startswith(f"{field}: 4 characters; the limit is 3")


# -- outcomes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error", "error_name", "correct"),
    [
        ({"y_true": "cat", "y_pred": "cat"}, 0.0, "error", True),
        ({"y_true": "cat", "y_pred": "dog"}, 1.0, "error", False),
        ({"y_true": 2, "y_pred": 2}, 0.0, "error", True),
        ({"y_true": 2, "y_pred": 3}, 1.0, "error", False),
        ({"y_true": True, "y_pred": False}, 1.0, "error", False),
        ({"y_true": 2.5, "y_pred": 2.0}, 0.5, "error", None),
        ({"y_true": 2, "y_pred": 2.75}, 0.75, "error", None),
        ({"y_true": 3.0, "y_pred": 3.0}, 0.0, "error", None),
        ({"error": 0.3}, 0.3, "error", None),
        ({"error": 2}, 2.0, "error", None),
        ({"loss": 0.7}, 0.7, "loss", None),
        ({"correct": True}, 0.0, "error", True),
        ({"correct": False}, 1.0, "error", False),
        # precedence: error, then loss, then the labels, then correct
        ({"error": 0.3, "loss": 0.7, "y_true": 1.0, "y_pred": 0.0}, 0.3, "error", None),
        ({"loss": 0.7, "y_true": 1.0, "y_pred": 0.0}, 0.7, "loss", None),
        ({"error": 0.3, "y_true": "a", "y_pred": "a"}, 0.3, "error", True),
        ({"y_true": "a", "y_pred": "b", "correct": True}, 1.0, "error", True),
        ({"y_true": 1.5, "y_pred": 1.0, "correct": True}, 0.5, "error", True),
        ({"error": None, "correct": False}, 1.0, "error", False),
    ],
)
def test_outcome_reduction(
    fields: dict[str, Any], error: float, error_name: str, correct: bool | None
) -> None:
    event = accepted(outcome(id="p1", ts=5, **fields), kind=OUTCOME)
    assert event == OutcomeEvent(
        model="m", ts=5, error=error, error_name=error_name, correct=correct, id="p1"
    )
    assert type(event.error) is float


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ({}, Reason.MISSING_FIELD, "y_true and y_pred, error, loss or correct"),
        (
            {"y_true": None, "error": None},
            Reason.MISSING_FIELD,
            "y_true and y_pred, error, loss or correct",
        ),
        ({"y_true": "a"}, Reason.MISSING_FIELD, "y_pred"),
        ({"y_pred": 1.0, "error": 0.5}, Reason.MISSING_FIELD, "y_true"),
        ({"y_true": "1", "y_pred": 1}, Reason.WRONG_TYPE, "y_true, y_pred"),
        ({"y_true": True, "y_pred": 1}, Reason.WRONG_TYPE, "y_true, y_pred"),
        ({"y_true": [1], "y_pred": [1]}, Reason.WRONG_TYPE, "y_true"),
        ({"y_true": 1, "y_pred": {"p": 1}}, Reason.WRONG_TYPE, "y_pred"),
        ({"y_true": 1.7e308, "y_pred": -1.7e308}, Reason.OUT_OF_RANGE, "y_true"),
        ({"error": "0.5"}, Reason.WRONG_TYPE, "error"),
        ({"error": True}, Reason.WRONG_TYPE, "error"),
        ({"loss": [0.5]}, Reason.WRONG_TYPE, "loss"),
        ({"correct": 1}, Reason.WRONG_TYPE, "correct"),
        ({"correct": "yes", "error": 1.0}, Reason.WRONG_TYPE, "correct"),
    ],
)
def test_outcome_rejections(fields: dict[str, Any], reason: Reason, field: str) -> None:
    rejection = rejected(outcome(**fields), kind=OUTCOME)
    assert rejection.reason is reason
    assert rejection.message.startswith(f"{field}: "), rejection.message
    assert rejection.model == "m"


# -- JSON Schemas -------------------------------------------------------------------------


def _validator(name: str) -> jsonschema.Draft202012Validator:
    text = (resources.files("streamproc") / "schemas" / f"{name}-event.schema.json").read_text()
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


SCHEMAS = {FEATURE: _validator("feature"), OUTCOME: _validator("outcome")}


def test_schemas_share_the_common_definitions() -> None:
    feature_defs, outcome_defs = (SCHEMAS[k].schema["$defs"] for k in (FEATURE, OUTCOME))
    for name in ("model", "id", "ts"):
        assert feature_defs[name] == outcome_defs[name]


def test_schema_limits_are_the_default_limits() -> None:
    defs = SCHEMAS[FEATURE].schema["$defs"]
    features = defs["event"]["properties"]["features"]
    assert features["maxProperties"] == LIMITS.max_features_per_event
    assert features["propertyNames"]["maxLength"] == LIMITS.max_name_length
    assert defs["model"]["maxLength"] == LIMITS.max_name_length
    assert SCHEMAS[FEATURE].schema["oneOf"][1]["maxItems"] == LIMITS.max_batch_events
    assert defs["ts"]["anyOf"][0]["maximum"] == MAX_EPOCH_MS


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        (FEATURE, feature(ts="2026-11-28T10:00:00Z", id=7, prediction="yes")),
        (FEATURE, [feature(), feature(features={"c": "x", "n": None, "b": True})]),
        (OUTCOME, outcome(y_true="a", y_pred="b")),
        (OUTCOME, outcome(y_true=1, y_pred=1.5, ts=1.5)),
        (OUTCOME, [outcome(error=0.5), outcome(loss=1), outcome(correct=False, y_true=None)]),
    ],
)
def test_accepted_examples_match_the_schema(kind: EventKind, event: Any) -> None:
    assert run(event, kind).rejections == []
    SCHEMAS[kind].validate(event)


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        (FEATURE, {"features": {"x": 1}}),
        (FEATURE, feature(features={})),
        (FEATURE, feature(features={"x": [1]})),
        (FEATURE, feature(ts="2026-11-28T10:00:00")),
        (FEATURE, feature(type="outcome")),
        (FEATURE, feature(id=True)),
        (FEATURE, []),
        (OUTCOME, outcome()),
        (OUTCOME, outcome(y_true="a")),
        (OUTCOME, outcome(y_true="a", y_pred=1)),
        (OUTCOME, outcome(error=True)),
        (OUTCOME, outcome(correct=1)),
    ],
)
def test_rejected_examples_fail_the_schema(kind: EventKind, event: Any) -> None:
    assert run(event, kind).events == []
    assert not SCHEMAS[kind].is_valid(event)


def test_documented_examples_are_accepted_and_match_the_schema() -> None:
    text = (Path(__file__).parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 4
    for block in blocks:
        decoded = run(block.encode(), kind=None)
        assert decoded.rejections == [], block
        for event in decoded.events:
            SCHEMAS[event.kind].validate(json.loads(block))


# -- properties ---------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
SMALL_LIMITS = st.sampled_from(
    [
        LIMITS,
        Limits(
            max_message_bytes=200,
            max_batch_events=3,
            max_features_per_event=3,
            max_name_length=4,
        ),
    ]
)
KINDS = st.sampled_from([FEATURE, OUTCOME, None])


def _check_invariants(payload: bytes, decoded: Decoded, limits: Limits) -> None:
    """Every message yields events or rejections accounting for all of its input."""
    try:
        doc = orjson.loads(payload) if len(payload) <= limits.max_message_bytes else None
    except orjson.JSONDecodeError:
        doc = None
    outcomes = len(decoded.events) + len(decoded.rejections)
    indexes = [r.index for r in decoded.rejections]
    if isinstance(doc, list) and 0 < len(doc) <= limits.max_batch_events:
        assert outcomes == len(doc)
        assert all(i is not None for i in indexes)
        assert indexes == sorted(set(indexes))
    else:  # one event, or the whole message rejected
        assert outcomes == 1
        assert indexes in ([], [None])
    for event in decoded.events:
        _check_event(event)


def _check_event(event: Event) -> None:
    assert event.model
    assert 0 <= event.ts <= MAX_EPOCH_MS
    if isinstance(event, FeatureEvent):
        values = [*event.features.values(), event.prediction]
        assert all(type(v) in (str, type(None)) or math.isfinite(v) for v in values)
        assert all(type(v) in (float, str, type(None)) for v in values)
    elif isinstance(event, LabelEvent):
        assert event.id
        assert type(event.y_true) in (str, int, bool, float)
        assert type(event.y_true) is not float or math.isfinite(event.y_true)
    else:
        assert type(event.error) is float
        assert math.isfinite(event.error)


@settings(deadline=None)
@given(payload=st.binary(max_size=300), kind=KINDS, limits=SMALL_LIMITS)
def test_arbitrary_bytes_never_raise(
    payload: bytes, kind: EventKind | None, limits: Limits
) -> None:
    decoded = decode(payload, kind=kind, received_ms=RECEIVED, limits=limits)
    _check_invariants(payload, decoded, limits)


@settings(deadline=None)
@given(value=JSON_VALUES, kind=KINDS, limits=SMALL_LIMITS)
def test_arbitrary_json_never_raises(value: object, kind: EventKind | None, limits: Limits) -> None:
    payload = orjson.dumps(value)
    decoded = decode(payload, kind=kind, received_ms=RECEIVED, limits=limits)
    _check_invariants(payload, decoded, limits)


# Floats stay far from overflow and are never integral, so that an integral float
# (which JSON Schema counts as an integer) never stands in for an integer id.
SAFE_FLOATS = st.floats(min_value=-1e300, max_value=1e300).filter(lambda x: not x.is_integer())
SAFE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | SAFE_FLOATS
    | st.text(max_size=4)
)
SAFE_VALUES = st.recursive(
    SAFE_SCALARS,
    lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=4), c, max_size=2),
    max_leaves=4,
)
TIMESTAMPS = st.sampled_from(
    [
        "2026-11-28T10:00:00Z",
        "2026-11-28T10:00:00.123+01:00",
        "2026-11-28 10:00:00z",
        "2026-11-28T10:00:00",
        "2026-11-28",
        "28/11/2026",
        "1970-01-01T00:00:00Z",
        "1968-12-31T23:59:59Z",
        "1969-12-31T19:00:00-05:00",
    ]
)
LABELS = st.sampled_from(["cat", "dog"]) | st.booleans() | st.integers(0, 3) | SAFE_FLOATS
EVENT_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.sampled_from(["m", "", "m" * 201]), SAFE_VALUES),
        "type": st.one_of(st.sampled_from(["feature", "outcome", "x"]), SAFE_SCALARS),
        "id": st.one_of(st.text(max_size=3), st.integers(0, 10**6), SAFE_VALUES),
        "ts": st.one_of(TIMESTAMPS, st.integers(-5, 2**64 - 1), SAFE_FLOATS, SAFE_SCALARS),
        "features": st.one_of(
            st.dictionaries(st.text(max_size=3), SAFE_SCALARS, max_size=4), SAFE_VALUES
        ),
        "prediction": SAFE_VALUES,
        "y_true": st.one_of(LABELS, SAFE_VALUES),
        "y_pred": st.one_of(LABELS, SAFE_VALUES),
        "error": st.one_of(SAFE_FLOATS, SAFE_VALUES),
        "loss": st.one_of(SAFE_FLOATS, SAFE_VALUES),
        "correct": st.one_of(st.booleans(), SAFE_VALUES),
        "other": SAFE_VALUES,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=EVENT_LIKE, kind=st.sampled_from([FEATURE, OUTCOME]))
def test_schema_agrees_with_decode(event: dict[str, Any], kind: EventKind) -> None:
    """The schema of the topic accepts exactly what decode() accepts (see docs/events.md)."""
    decoded = run(event, kind)
    assert SCHEMAS[kind].is_valid(event) == bool(decoded.events), decoded.rejections


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(EVENT_LIKE, min_size=1, max_size=4))
def test_accepted_events_match_their_schema_when_kind_is_inferred(
    events: list[dict[str, Any]],
) -> None:
    decoded = run(events, None)
    assert len(decoded.events) + len(decoded.rejections) == len(events)
    accepted_indexes = sorted(set(range(len(events))) - {r.index for r in decoded.rejections})
    for index, event in zip(accepted_indexes, decoded.events, strict=True):
        _check_event(event)
        SCHEMAS[event.kind].validate(events[index])
