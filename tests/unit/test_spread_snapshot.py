"""The spread statistics are part of every stream's snapshot: one without them is refused."""

from __future__ import annotations

import orjson

from streamproc.engine import Engine
from streamproc.settings import Limits
from streamproc.settings.categories import CategorySettings
from tests.unit.test_engine import settings_with_everything
from tests.unit.test_snapshot_validation import EVENTS, SPLIT, run


def engine(spread: bool) -> Engine:
    settings = settings_with_everything().model_copy(
        update={"categories": CategorySettings(enabled=False), "spread": spread}
    )
    return Engine(settings, Limits())


def test_a_stream_without_its_spread_fields_is_rejected() -> None:
    source = engine(spread=True)
    run(source, EVENTS[:SPLIT])
    doc = orjson.loads(source.snapshot())
    name = next(iter(doc["models"]))
    feature = next(f for f in doc["models"][name]["features"].values() if f["value"])
    del feature["value"]["spread_up"]

    result = engine(spread=True).restore(orjson.dumps(doc))

    assert name in {r.model for r in result.rejected}
