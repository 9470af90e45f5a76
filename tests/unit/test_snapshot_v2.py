"""Version-2 snapshots (no spread state) still restore, as version 3 with spread at rest."""

from __future__ import annotations

from typing import Any

import orjson

from streamproc import snapshot_v2
from streamproc.engine import SNAPSHOT_VERSION, Engine
from streamproc.settings import Limits
from streamproc.settings.categories import CategorySettings
from tests.unit.test_engine import settings_with_everything
from tests.unit.test_snapshot_validation import EVENTS, SPLIT, run


def engine(spread: bool) -> Engine:
    settings = settings_with_everything().model_copy(
        update={"categories": CategorySettings(enabled=False), "spread": spread}
    )
    return Engine(settings, Limits())


def as_v2(snapshot: bytes) -> bytes:
    """The layout version 2 wrote: every stream without the spread fields."""
    doc = orjson.loads(snapshot)
    assert doc["version"] == SNAPSHOT_VERSION == 3
    for model in doc["models"].values():
        model["prediction"] = _stream_v2(model["prediction"])
        model["correctness"] = _stream_v2(model["correctness"])
        model["errors"] = {k: _stream_v2(v) for k, v in model["errors"].items()}
        for feature in model["features"].values():
            feature["value"] = _stream_v2(feature["value"])
            feature["missing"] = _stream_v2(feature["missing"])
    return orjson.dumps({"version": 2, "models": doc["models"]})


def _stream_v2(stream: dict[str, Any] | None) -> dict[str, Any] | None:
    if stream is None:
        return None
    return {k: v for k, v in stream.items() if k not in snapshot_v2.ADDED}


def test_a_version_2_snapshot_restores_and_continues_exactly_with_spread_off() -> None:
    reference = engine(spread=False)
    run(reference, EVENTS[:SPLIT])
    old = as_v2(reference.snapshot())
    expected = run(reference, EVENTS[SPLIT:])

    restored = engine(spread=False)
    result = restored.restore(old)

    assert result.rejected == ()
    assert run(restored, EVENTS[SPLIT:]) == expected
    assert restored.snapshot() == reference.snapshot()


def test_a_version_2_snapshot_restores_with_the_spread_tests_at_rest() -> None:
    source = engine(spread=True)
    run(source, EVENTS[:SPLIT])
    restored = engine(spread=True)

    result = restored.restore(as_v2(source.snapshot()))

    assert result.rejected == ()
    doc = orjson.loads(restored.snapshot())
    streams = [f["value"] for m in doc["models"].values() for f in m["features"].values()]
    assert streams and all(
        {k: s[k] for k in snapshot_v2.ADDED} == snapshot_v2.ADDED for s in streams if s
    )


def test_a_version_3_stream_without_its_spread_fields_is_rejected() -> None:
    source = engine(spread=True)
    run(source, EVENTS[:SPLIT])
    doc = orjson.loads(source.snapshot())
    name = next(iter(doc["models"]))
    feature = next(f for f in doc["models"][name]["features"].values() if f["value"])
    del feature["value"]["spread_up"]

    result = engine(spread=True).restore(orjson.dumps(doc))

    assert name in {r.model for r in result.rejected}
