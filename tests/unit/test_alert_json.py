"""An alert message parses back into the alert that wrote it, in every shape it takes.

``streamproc alerts``, the router and lifecycle restore all read alerts with
:func:`~streamproc.alerts.from_json`/``from_dict``: a field dropped, swapped or defaulted
wrongly there shows a consumer something the worker never said. Each test builds the
alert by hand, so a wrong default is caught however the writer changes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from streamproc.alerts import (
    SCHEMA_VERSION,
    Alert,
    CategoryShare,
    Change,
    Member,
    Severity,
    Status,
    StreamId,
    alert_id,
    from_dict,
    from_json,
)
from streamproc.domain import StreamKind

AGE = StreamId("churn", StreamKind.VALUE, "age")
PLAN = StreamId("churn", StreamKind.CATEGORY, "plan")
MODEL = StreamId("churn", StreamKind.MODEL, "churn")


def alert(stream: StreamId = AGE, **fields: Any) -> Alert:
    base = Alert(
        alert_id=alert_id(stream, 1, "adwin", 1234),
        stream=stream,
        detector={"type": "adwin", "params": {"delta": 0.002}},
        event_id="e-1234",
        event_ts=1_700_000_000_123,
        detected_at=1_700_000_000_456,
        events_seen=1234,
        change=Change(40.5, 52.25, 3.5, 3.357, "up", 96),
        severity=Severity.CRITICAL,
    )
    return replace(base, **fields)


CATEGORY_CHANGE = Change(
    None,
    None,
    None,
    None,
    "none",
    None,
    categories=(
        CategoryShare("gold", 0.1, 0.45, "up"),
        CategoryShare("__other__", 0.3, 0.0, "vanished"),
    ),
)
SHAPES = {
    "firing": alert(),
    "no event id": alert(event_id=None, severity=Severity.INFO),
    "resolved": alert(status=Status.RESOLVED, resolved_at=1_700_000_100_000),
    "category": alert(PLAN, change=CATEGORY_CHANGE, severity=Severity.WARNING),
    "rollup": alert(
        MODEL,
        members=(
            Member(AGE, alert_id(AGE, 0, "adwin", 10)),
            Member(PLAN, alert_id(PLAN, 0, "categories", 20)),
        ),
    ),
    "older schema": alert(schema_version=1),
}


@pytest.mark.parametrize("original", SHAPES.values(), ids=SHAPES.keys())
def test_every_shape_of_alert_parses_back_to_itself(original: Alert) -> None:
    assert from_json(original.to_json()) == original
    assert from_dict(orjson.loads(original.to_json())) == original


def test_the_fields_are_read_from_their_own_keys() -> None:
    """Field by field, so that a swap of two same-typed fields cannot pass unnoticed."""
    parsed = from_json(SHAPES["rollup"].to_json())
    assert parsed.stream == MODEL
    assert parsed.event_id == "e-1234"
    assert (parsed.event_ts, parsed.detected_at, parsed.events_seen) == (
        1_700_000_000_123,
        1_700_000_000_456,
        1234,
    )
    assert parsed.change == Change(40.5, 52.25, 3.5, 3.357, "up", 96)
    assert parsed.detector == {"type": "adwin", "params": {"delta": 0.002}}
    assert parsed.members is not None
    assert [(m.stream, m.alert_id) for m in parsed.members] == [
        (AGE, alert_id(AGE, 0, "adwin", 10)),
        (PLAN, alert_id(PLAN, 0, "categories", 20)),
    ]


def test_a_category_change_keeps_its_categories_in_order() -> None:
    parsed = from_json(SHAPES["category"].to_json())
    assert parsed.change.categories == CATEGORY_CHANGE.categories
    assert parsed.change.direction == "none"


def test_fields_added_after_version_one_default_when_absent() -> None:
    """A message written before the lifecycle (or by an older worker) has no ``status``,
    ``resolved_at``, ``members``, ``event_id`` or ``schema_version``: it is a firing alert
    of the current schema, not a resolution and not a rollup."""
    body = orjson.loads(alert().to_json())
    for key in ("status", "schema_version", "event_id"):
        del body[key]
    assert "resolved_at" not in body
    assert "members" not in body
    parsed = from_dict(body)
    assert parsed.status is Status.FIRING
    assert parsed.schema_version == SCHEMA_VERSION
    assert parsed.event_id is None
    assert parsed.resolved_at is None
    assert parsed.members is None


def test_a_non_category_message_has_no_categories_key() -> None:
    body = orjson.loads(alert().to_json())
    assert "categories" not in body["change"]
    assert body["model"] == "churn"
    assert from_dict(body).change.categories is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("severity", "urgent"), ("status", "done"), ("stream.kind", "weather")],
)
def test_an_unknown_enum_value_is_refused(key: str, value: str) -> None:
    body = orjson.loads(alert().to_json())
    where = body
    *parents, last = key.split(".")
    for part in parents:
        where = where[part]
    where[last] = value
    with pytest.raises(ValueError, match=value):
        from_dict(body)
