"""The hot path's shortcuts: they skip allocations, never change what comes out."""

from __future__ import annotations

import orjson
import pytest

from streamproc.engine import Engine
from streamproc.events import Decoded, EventKind, FeatureEvent, decode, decode_message
from streamproc.settings import EngineSettings, Limits

LIMITS = Limits()


def message(**fields: object) -> bytes:
    return orjson.dumps({"model": "churn", "ts": 1_764_460_800_000, **fields})


def test_one_valid_event_comes_back_bare_and_equal_to_decode() -> None:
    payload = message(id=7, features={"age": 41, "plan": "pro", "gone": None}, prediction=0.3)
    one = decode_message(payload, kind=EventKind.FEATURE, received_ms=0, limits=LIMITS)
    assert isinstance(one, FeatureEvent)
    assert decode(payload, kind=EventKind.FEATURE, received_ms=0, limits=LIMITS).events == [one]
    assert (one.id, one.features, one.prediction) == (
        "7",
        {"age": 41.0, "plan": "pro", "gone": None},
        0.3,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b"not json",
        message(features={}),
        message(id=1.5, features={"a": 1}),
        message(ts=-1, features={"a": 1}),
        message(ts="2025-12-01T00:00:00Z", features={"a": 1}).replace(b'"model"', b'"x"'),
        b"[" + message(features={"a": 1}) + b"]",
    ],
)
def test_everything_else_is_what_decode_returns(payload: bytes) -> None:
    got = decode_message(payload, kind=EventKind.FEATURE, received_ms=5, limits=LIMITS)
    assert isinstance(got, Decoded)
    assert got == decode(payload, kind=EventKind.FEATURE, received_ms=5, limits=LIMITS)


def test_quiet_results_are_shared_and_stay_empty() -> None:
    """Results without alerts are one object per update count: the events that fire
    must not leave their alerts in it."""
    engine = Engine(EngineSettings(), Limits())
    results = []
    for i in range(2000):
        age = (40.0 if i < 1000 else 50.0) + i % 7
        results.append(engine.process(FeatureEvent("churn", {"age": age}, i), now_ms=i))
    fired = [r for r in results if r.alerts]
    quiet = [r for r in results[200:] if not r.alerts]
    assert len(fired) == 1
    assert len({id(r) for r in quiet}) == 1
    assert quiet[0].alerts == []
    assert quiet[0].updates == fired[0].updates == 3
