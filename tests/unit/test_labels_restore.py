"""Pending joins survive a snapshot at any point: identical later alerts, dead labels and
final snapshot (issue #15 acceptance, like test_overflow.py's property)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.detectors import DetectorSpec
from streamproc.engine import Engine
from streamproc.events import Event, FeatureEvent, LabelEvent
from streamproc.settings import DetectorDefaults, EngineSettings, Limits
from streamproc.settings.labels import LabelSettings

NOW = 1_700_000_000_000
LIMITS = Limits()
ENGINE = EngineSettings(
    standardize=False,
    warmup=2,
    cooldown_events=0,
    detectors=DetectorDefaults(
        error=(DetectorSpec(type="page_hinkley", params={"threshold": 1.0, "min_instances": 3}),),
        correctness=(DetectorSpec(type="ddm", params={"warm_start": 3}),),
    ),
)
LABELS = LabelSettings(ttl_seconds=5, max_pending_predictions=4, max_pending_labels=3)

IDS = st.sampled_from([str(i) for i in range(8)])
TS = st.integers(0, 12_000).map(lambda t: NOW + t)
PREDICTIONS = st.builds(
    lambda id_, value, ts, model: FeatureEvent(model, {"x": 1.0}, ts, id_, value),
    IDS,
    st.sampled_from([0.0, 1.0, 0.5, "a", "b"]),
    TS,
    st.sampled_from(["m", "n"]),
)
LABEL_EVENTS = st.builds(
    lambda id_, truth, ts, model: LabelEvent(model, ts, id_, truth),
    IDS,
    st.sampled_from([0, 1, True, 2.5, "a", "b"]),
    TS,
    st.sampled_from(["m", "n"]),
)


def feed(engine: Engine, events: list[Event], start: int = 0) -> list[Any]:
    """Alerts and dead labels, in order, as comparable values."""
    out: list[Any] = []
    for i, event in enumerate(events, start=start):
        result = engine.process(event, NOW, source=i)
        out += result.alerts
        out += result.dead_labels
        out.append(result.rejection)
    return out


def new_engine() -> Engine:
    return Engine(ENGINE, LIMITS, labels=LABELS)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(PREDICTIONS | LABEL_EVENTS, min_size=2, max_size=80), data=st.data())
def test_a_snapshot_at_any_point_continues_the_join_exactly(
    events: list[Event], data: st.DataObject
) -> None:
    split = data.draw(st.integers(1, len(events) - 1), label="split")
    reference = new_engine()
    expected = feed(reference, events)

    first = new_engine()
    before = feed(first, events[:split])
    restored = new_engine()
    assert restored.restore(first.snapshot()).rejected == ()
    after = feed(restored, events[split:], split)

    assert before + after == expected
    assert restored.snapshot() == reference.snapshot()
