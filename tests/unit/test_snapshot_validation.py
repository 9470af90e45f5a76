"""Snapshots are validated on restore, per model (issue #12, item 5, the engine's half).

A model whose record fails validation restores nothing (it starts afresh, and
:class:`~streamproc.engine.Restored` names it with the reason); the other models of the
snapshot restore and continue exactly. Only a wholly unreadable snapshot raises.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.alerts import Alert
from streamproc.engine import Engine, RejectedModel, Restored
from streamproc.events import Event
from streamproc.settings import ArrivalSettings, Limits
from tests.unit.test_engine import NOW, mixed_events, settings_with_everything
from tests.unit.test_state import paths, replaced

EVENTS = list(mixed_events(900, seed=21))
SPLIT = 600


def engine() -> Engine:
    return Engine(settings_with_everything(), Limits(), arrival=ArrivalSettings())


def run(e: Engine, events: list[Event]) -> list[Alert]:
    alerts: list[Alert] = []
    for event in events:
        result = e.process(event, NOW + 1000)
        assert result.rejection is None
        alerts += result.alerts
    return alerts


def snapshot_doc() -> dict[str, Any]:
    first = engine()
    run(first, EVENTS[:SPLIT])
    doc: dict[str, Any] = orjson.loads(first.snapshot())
    return doc


GOOD = snapshot_doc()
# Every record names its fields: a model its features, prediction, errors, correctness and
# arrival; a feature its value stream, missing stream and category stream; and so on down.
VALUE_A = ("m0", "features", "a", "value")
ARRIVAL = ("m0", "arrival")


def corrupted(path: tuple[Any, ...], new: Any) -> bytes:
    return orjson.dumps(replaced(GOOD, ("models", *path), new))


def nan_adwin(detector: dict[str, Any]) -> dict[str, Any]:
    """The detector with its ADWIN's running total (the head's first statistic) set to NaN."""
    blob = bytearray(base64.b64decode(detector["state"]["_helper"]["b"]))
    struct.pack_into("<d", blob, struct.calcsize("<diQdd"), math.nan)
    helper = {"rs": "AdaptiveWindowing", "b": base64.b64encode(bytes(blob)).decode()}
    return {**detector, "state": {**detector["state"], "_helper": helper}}


def get(path: tuple[Any, ...]) -> Any:
    node: Any = GOOD["models"]
    for key in path:
        node = node[key]
    return node


CORRUPTIONS = [
    ((*VALUE_A, "n"), "600", "n: expected a non-negative integer"),
    ((*VALUE_A, "n"), -1, "n: expected a non-negative integer"),
    ((*VALUE_A, "quiet_until"), True, "quiet_until: expected a non-negative integer"),
    ((*VALUE_A, "warm_n"), 10**6, "exceeds n"),
    ((*VALUE_A, "warm_mean"), None, "warm_mean: expected a number"),
    ((*VALUE_A, "warm_mean"), {"f": "nan"}, "warm_mean: expected a number"),
    ((*VALUE_A, "warm_m2"), -1.0, "warm_m2: expected a number in [0"),
    ((*VALUE_A, "offset"), 1e300, "offset: expected a number"),
    ((*VALUE_A, "scale"), 0.0, "scale: expected a number"),
    ((*VALUE_A, "scale"), -2.0, "scale: expected a number"),
    ((*VALUE_A, "scale"), "1.0", "scale: expected a number"),
    ((*VALUE_A, "ref_mean"), 1.7e308, "ref_mean: expected a number"),
    ((*VALUE_A, "recent"), "x", "recent: expected a number"),
    ((*VALUE_A, "detectors"), "adwin", "detectors must be a list"),
    (
        (*VALUE_A, "detectors", 1, "state", "_sum_increase"),
        {"f": "nan"},
        "_sum_increase: non-finite",
    ),
    (
        (*VALUE_A, "detectors", 0),
        nan_adwin(get((*VALUE_A, "detectors", 0))),
        "ADWIN statistics are not finite",
    ),
    (VALUE_A, [1, 2], "expected a mapping with keys n, quiet_until"),
    (VALUE_A, {**get(VALUE_A), "extra": 1}, "expected a mapping with keys n, quiet_until"),
    (("m0", "features", "c", "category", "warm", "x"), "3", "warm-up count"),
    (("m0", "features", "c", "category", "warm", "x"), -3, "warm-up count"),
    (("m0", "features", "c", "category", "ref_n"), 10**6, "exceeds n"),
    (("m0", "features", "c", "category", "n"), 2**64 - 45, "up to 2**53"),
    (
        ("m0", "errors"),
        {**get(("m0", "errors")), "bogus": get(("m0", "errors", "error"))},
        "unknown error stream",
    ),
    (("m0",), {"features": {}}, "expected a mapping with keys features, prediction"),
    ((*ARRIVAL, "events"), "17", "arrival state: events"),
    ((*ARRIVAL, "silence", "last_ms"), "1764", "silence state: last_ms"),
    ((*ARRIVAL, "silence", "silent"), 0, "silence state: silent"),
    ((*ARRIVAL, "rate", "level"), 1000.0, "rate state: level"),
    ((*ARRIVAL, "rate", "var"), -0.5, "rate state: var"),
    ((*ARRIVAL, "freshness", "baseline"), None, "freshness state: baseline"),
    ((*ARRIVAL, "freshness", "recent"), 800.0, "freshness state: recent"),
    (ARRIVAL, [1, 2, 3, 4, 5], "arrival state: expected a mapping with keys events"),
]


@pytest.mark.parametrize(("path", "new", "reason"), CORRUPTIONS)
def test_a_bad_field_rejects_its_model_alone(path: tuple[Any, ...], new: Any, reason: str) -> None:
    restored = engine()
    run(restored, EVENTS[:10])  # state for m0 that the rejected record must not leave behind
    result = restored.restore(corrupted(path, new))

    assert result.models == ("m1",)
    (rejected,) = result.rejected
    assert rejected.model == "m0"
    assert reason in rejected.reason, rejected.reason
    assert restored.models == ["m1"], "the rejected model holds no state"


def test_the_other_models_continue_exactly_and_the_rejected_one_starts_afresh() -> None:
    reference = engine()
    run(reference, EVENTS[:SPLIT])
    expected = run(reference, EVENTS[SPLIT:])
    restored = engine()
    result = restored.restore(corrupted((*VALUE_A, "scale"), -1.0))
    assert result == Restored(("m1",), (RejectedModel("m0", result.rejected[0].reason),))

    after = run(restored, EVENTS[SPLIT:])
    assert [a for a in after if a.stream.model == "m1"] == [
        a for a in expected if a.stream.model == "m1"
    ]
    assert restored.snapshot(["m1"]) == reference.snapshot(["m1"])
    fresh = engine()
    run(fresh, [e for e in EVENTS[SPLIT:] if e.model == "m0"])
    assert restored.snapshot(["m0"]) == fresh.snapshot(["m0"])


def test_a_cooldown_is_never_restored_longer_than_configured() -> None:
    restored = engine()
    assert restored.restore(corrupted((*VALUE_A, "quiet_until"), 2**52)).rejected == ()
    (stream,) = [s for s in restored.streams(["m0"]) if s.id.name == "a" and s.id.kind == "value"]
    assert stream.quiet_until == stream.n + settings_with_everything().cooldown_events
    (rejected,) = engine().restore(corrupted((*VALUE_A, "quiet_until"), 2**63)).rejected
    assert "up to 2**53" in rejected.reason


def test_a_valid_snapshot_restores_every_model() -> None:
    assert engine().restore(orjson.dumps(GOOD)) == Restored(("m0", "m1"), ())


# -- property: whatever a record holds, restore never raises and what it accepts works ----

PLAIN_PATHS = [
    p
    for p in paths(GOOD["models"]["m0"], ("m0",))
    if "detectors" not in p[:-1]  # not inside detector state (test_state.py fuzzes those)
]
VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | st.sampled_from([1.7e308, -1e160, 5e-324, 0.0, "1", "nan"])
    | st.lists(st.integers(0, 3), max_size=3)
    | st.dictionaries(st.sampled_from(["f", "x"]), st.sampled_from(["nan", "inf", 1]), max_size=1)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PLAIN_PATHS), new=VALUES)
def test_any_mutated_record_restores_or_is_rejected_and_the_engine_keeps_working(
    path: tuple[Any, ...], new: Any
) -> None:
    try:
        data = orjson.dumps(replaced(GOOD, ("models", *path), new))
    except orjson.JSONEncodeError:
        return
    restored = engine()
    result = restored.restore(data)
    assert "m1" in result.models
    assert len(result.models) + len(result.rejected) == 2
    run(restored, EVENTS[SPLIT : SPLIT + 120])
    again = engine().restore(restored.snapshot())
    assert again.rejected == (), again.rejected
