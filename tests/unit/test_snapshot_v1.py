"""Version-1 snapshots (positional lists, written by workers before #17) still restore.

Version 2 names every field; :mod:`streamproc.snapshot_v1` upgrades the old layout on
restore, so a deployed worker's checkpoints continue exactly after the upgrade.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamproc import snapshot_v1
from streamproc.arrival.monitor import STATE_FIELDS as ARRIVAL_FIELDS
from streamproc.engine import FEATURE_FIELDS, MODEL_FIELDS, SNAPSHOT_VERSION, Engine
from streamproc.settings import ArrivalSettings, Limits
from streamproc.settings.alerts import RollupSettings
from streamproc.settings.categories import CategorySettings
from streamproc.streams import STATE_FIELDS
from tests.unit.test_engine import settings_with_everything
from tests.unit.test_snapshot_validation import EVENTS, SPLIT, run


def engine(arrival: bool) -> Engine:
    """What version 1 had: no category streams (only counts, which the upgrade drops), no
    rollups (their state did not exist), no spread tests (the upgrade starts them at rest)
    and no seasonal profiles (a stream without one starts it empty: test_seasonal.py)."""
    settings = settings_with_everything().model_copy(
        update={
            "categories": CategorySettings(enabled=False),
            "rollup": RollupSettings(enabled=False),
            "spread": False,
            "seasonality": "off",
        }
    )
    return Engine(settings, Limits(), arrival=ArrivalSettings() if arrival else None)


def as_v1(snapshot: bytes) -> bytes:
    """The layout version 1 wrote: the same values as lists, in field order, and the arrival
    item only for models that had arrival state."""
    doc = orjson.loads(snapshot)
    assert doc["version"] == SNAPSHOT_VERSION == 2
    models = {name: _model_v1(model) for name, model in doc["models"].items()}
    return orjson.dumps({"version": 1, "models": models})


def _model_v1(model: dict[str, Any]) -> list[Any]:
    assert tuple(model) == MODEL_FIELDS
    features = {name: _feature_v1(f) for name, f in model["features"].items()}
    record = [
        features,
        _stream_v1(model["prediction"]),
        {name: _stream_v1(s) for name, s in model["errors"].items()},
        _stream_v1(model["correctness"]),
    ]
    if model["arrival"] is not None:
        record.append(_arrival_v1(model["arrival"]))
    return record


def _arrival_v1(arrival: dict[str, Any]) -> list[Any]:
    assert tuple(arrival) == ARRIVAL_FIELDS
    parts = [list(arrival[k].values()) for k in ("silence", "rate", "freshness")]
    return [1, arrival["events"], *parts]  # 1: the arrival state's own version in v1


def _feature_v1(feature: dict[str, Any]) -> list[Any]:
    assert tuple(feature) == FEATURE_FIELDS
    assert feature["category"] is None
    counts = {"x": 3, "__other__": 1}  # what version 1 kept of a string feature: dropped
    return [_stream_v1(feature["value"]), _stream_v1(feature["missing"]), counts]


def _stream_v1(stream: dict[str, Any] | None) -> list[Any] | None:
    if stream is None:
        return None
    assert tuple(stream) == STATE_FIELDS
    assert {
        k: stream[k] for k in snapshot_v1.SPREAD_AT_REST
    } == snapshot_v1.SPREAD_AT_REST  # spread off
    assert stream.pop("seasonal") is None  # seasonality off
    return [v for k, v in stream.items() if k not in snapshot_v1.SPREAD_AT_REST]


@pytest.mark.parametrize("arrival", [True, False])
def test_a_version_1_snapshot_restores_and_continues_exactly(arrival: bool) -> None:
    reference = engine(arrival)
    run(reference, EVENTS[:SPLIT])
    old = as_v1(reference.snapshot())
    expected = run(reference, EVENTS[SPLIT:])

    restored = engine(arrival)
    result = restored.restore(old)

    assert result.rejected == ()
    assert result.models == ("m0", "m1")
    assert run(restored, EVENTS[SPLIT:]) == expected
    assert without_episodes(restored.snapshot()) == without_episodes(reference.snapshot())


def without_episodes(snapshot: bytes) -> dict[str, Any]:
    """A snapshot less the lifecycle's bookkeeping, which version 1 had not: an upgraded
    model starts it afresh at its next alert (its alerts continue exactly, as above)."""
    doc: dict[str, Any] = orjson.loads(snapshot)
    for model in doc["models"].values():
        model["episodes"] = None
    return doc


def test_a_malformed_version_1_record_is_rejected_alone() -> None:
    source = engine(True)
    run(source, EVENTS[:SPLIT])
    doc = orjson.loads(as_v1(source.snapshot()))
    doc["models"]["m0"][0]["a"][0] = [1, 2]  # a value stream of two items

    result = engine(True).restore(orjson.dumps(doc))

    assert result.models == ("m1",)
    (rejected,) = result.rejected
    assert "expected a mapping with keys n, quiet_until" in rejected.reason


def test_snapshots_are_written_with_named_fields() -> None:
    source = engine(True)
    run(source, EVENTS[:SPLIT])
    model = orjson.loads(source.snapshot())["models"]["m0"]
    assert tuple(model) == MODEL_FIELDS
    assert tuple(model["features"]["a"]) == FEATURE_FIELDS
    assert tuple(model["features"]["a"]["value"]) == STATE_FIELDS
    assert tuple(model["arrival"]) == ARRIVAL_FIELDS
    assert all(type(model["arrival"][k]) is dict for k in ("silence", "rate", "freshness"))
