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
# Positions in a model record: [features, prediction, errors, correctness, arrival]; a
# feature is [value stream, missing stream, categories]; a stream is [n, quiet_until,
# warm_n, warm_mean, warm_m2, offset, scale, ref_n, ref_mean, recent, detectors].
VALUE_A = ("m0", 0, "a", 0)
ARRIVAL = ("m0", 4)


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
    ((*VALUE_A, 0), "600", "n: expected a non-negative integer"),
    ((*VALUE_A, 0), -1, "n: expected a non-negative integer"),
    ((*VALUE_A, 1), True, "quiet_until: expected a non-negative integer"),
    ((*VALUE_A, 2), 10**6, "exceeds n"),
    ((*VALUE_A, 3), None, "warm_mean: expected a number"),
    ((*VALUE_A, 3), {"f": "nan"}, "warm_mean: expected a number"),
    ((*VALUE_A, 4), -1.0, "warm_m2: expected a number in [0"),
    ((*VALUE_A, 5), 1e300, "offset: expected a number"),
    ((*VALUE_A, 6), 0.0, "scale: expected a number"),
    ((*VALUE_A, 6), -2.0, "scale: expected a number"),
    ((*VALUE_A, 6), "1.0", "scale: expected a number"),
    ((*VALUE_A, 8), 1.7e308, "ref_mean: expected a number"),
    ((*VALUE_A, 9), "x", "recent: expected a number"),
    ((*VALUE_A, 10), "adwin", "detectors must be a list"),
    ((*VALUE_A, 10, 1, "state", "_sum_increase"), {"f": "nan"}, "_sum_increase: non-finite"),
    ((*VALUE_A, 10, 0), nan_adwin(get((*VALUE_A, 10, 0))), "ADWIN statistics are not finite"),
    (VALUE_A, [1, 2], "expected a list of 11 values"),
    (("m0", 0, "c", 2, "x"), "3", "category count"),
    (("m0", 0, "c", 2, "x"), -3, "category count"),
    (("m0", 2), {**get(("m0", 2)), "bogus": get(("m0", 2, "error"))}, "unknown error stream"),
    (("m0",), {"features": {}}, "expected a list of 4 to 6 items"),
    ((*ARRIVAL, 1), "17", "arrival state: events"),
    ((*ARRIVAL, 2, 0), "1764", "silence state: last_ms"),
    ((*ARRIVAL, 2, 6), 0, "silence state: silent"),
    ((*ARRIVAL, 3, 4), 1000.0, "rate state: level"),
    ((*ARRIVAL, 3, 6), -0.5, "rate state: var"),
    ((*ARRIVAL, 4, 1), None, "freshness state: baseline"),
    ((*ARRIVAL, 4, 2), 800.0, "freshness state: recent"),
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
    result = restored.restore(corrupted((*VALUE_A, 6), -1.0))
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
    assert restored.restore(corrupted((*VALUE_A, 1), 2**63)).rejected == ()
    (stream,) = [s for s in restored.streams(["m0"]) if s.id.name == "a" and s.id.kind == "value"]
    assert stream.quiet_until == stream.n + settings_with_everything().cooldown_events


def test_a_valid_snapshot_restores_every_model() -> None:
    assert engine().restore(orjson.dumps(GOOD)) == Restored(("m0", "m1"), ())


# -- property: whatever a record holds, restore never raises and what it accepts works ----

PLAIN_PATHS = [
    p
    for p in paths(GOOD["models"]["m0"], ("m0",))
    if not (len(p) > 5 and p[1] in (0, 2) and p[4] == 10)  # not inside detector state
    and not (len(p) > 3 and p[1] in (1, 3) and p[2] == 10)  # (test_state.py fuzzes those)
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
