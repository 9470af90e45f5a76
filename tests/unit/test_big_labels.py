"""Labels beyond 64 bits (issue #12, item 11): compared exactly, or refused with a reason.

What orjson does (pinned below): integers from -2**63 to 2**64 - 1 are exact ints; any
integer outside that range is read as the nearest float, silently. Two different class ids
beyond 64 bits then looked like equal floats, which made them a regression error of 0.
"""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import orjson
import pytest

from streamproc.events import EventKind, OutcomeEvent, Reason, decode
from streamproc.settings import Limits

NOW = 1_764_324_000_000


def outcome(y_true: str, y_pred: str) -> bytes:
    """A message with the labels written as JSON number literals, exactly as given."""
    return f'{{"model": "m", "y_true": {y_true}, "y_pred": {y_pred}}}'.encode()


def decoded(payload: bytes) -> tuple[list[OutcomeEvent], list[Reason], list[str]]:
    result = decode(payload, kind=EventKind.OUTCOME, received_ms=NOW, limits=Limits())
    events = [e for e in result.events if isinstance(e, OutcomeEvent)]
    return events, [r.reason for r in result.rejections], [r.message for r in result.rejections]


def test_orjson_reads_integers_beyond_64_bits_as_floats() -> None:
    assert type(orjson.loads(b"18446744073709551615")) is int
    assert type(orjson.loads(b"-9223372036854775808")) is int
    assert orjson.loads(b"18446744073709551616") == orjson.loads(b"18446744073709551617")
    assert type(orjson.loads(b"18446744073709551617")) is float
    assert orjson.loads(b"-9223372036854775809") == -(2.0**63)  # rounds onto the boundary


@pytest.mark.parametrize(
    ("y_true", "y_pred", "field"),
    [
        ("18446744073709551616", "18446744073709551617", "y_true"),  # equal as floats
        ("123456789012345678901234567890", "123456789012345678901234567891", "y_true"),
        ("-9223372036854775809", "-9223372036854775810", "y_true"),
        ("1", "340282366920938463463374607431768211456", "y_pred"),
        ("0.5", "1e19", "y_pred"),  # a float this large might be such an integer
    ],
)
def test_labels_beyond_64_bits_are_refused_not_compared_approximately(
    y_true: str, y_pred: str, field: str
) -> None:
    events, reasons, messages = decoded(outcome(y_true, y_pred))
    assert events == []
    assert reasons == [Reason.OUT_OF_RANGE]
    assert messages[0].startswith(f"{field}: "), messages
    assert "send such class ids as strings" in messages[0]


def test_labels_within_64_bits_and_as_strings_are_exact_classes() -> None:
    cases = [
        (outcome("18446744073709551615", "18446744073709551614"), False),
        (outcome("-9223372036854775808", "-9223372036854775808"), True),
        (outcome('"18446744073709551617"', '"18446744073709551616"'), False),
    ]
    for payload, correct in cases:
        (event,), reasons, _ = decoded(payload)
        assert reasons == []
        assert (event.correct, event.error) == (correct, 0.0 if correct else 1.0)
    # Regression values just inside the bound are still measured.
    (event,), _, _ = decoded(outcome("9.2e18", "9.1e18"))
    assert event.correct is None
    assert event.error == pytest.approx(1e17)


def test_the_schema_refuses_what_decode_refuses() -> None:
    """Except a float literal like 1e19 within 64 bits: JSON Schema counts it as an integer."""
    text = (resources.files("streamproc") / "schemas" / "outcome-event.schema.json").read_text()
    validator = jsonschema.Draft202012Validator(json.loads(text))
    for y_true, y_pred, valid in [
        ("18446744073709551616", "1", False),
        ("-9223372036854775809", "1", False),
        ("0.5", "1e20", False),
        ("18446744073709551615", "1", True),
        ("-9223372036854775808", "1", True),
        ("0.5", "9.2e18", True),
    ]:
        message = json.loads(outcome(y_true, y_pred))
        accepted = decoded(outcome(y_true, y_pred))[0] != []
        assert validator.is_valid(message) is valid is accepted, (y_true, y_pred)
