"""Numbers that overflow: every legal message leaves finite state that restores and keeps
detecting (issue #12, item 1). Magnitudes beyond 1e100 are refused at decode
(``out_of_range``); the warm-up scale has a floor, so standardized values stay finite."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.alerts import Alert
from streamproc.detectors import DetectorSpec
from streamproc.engine import Engine
from streamproc.events import MAX_ABS_NUMBER, EventKind, Reason, decode
from streamproc.settings import DetectorDefaults, EngineSettings, Limits
from streamproc.streams import MIN_SCALE
from tests.unit.test_engine import NOW

LIMITS = Limits()


def decoded(doc: object, kind: EventKind = EventKind.FEATURE) -> Any:
    return decode(orjson.dumps(doc), kind=kind, received_ms=NOW, limits=LIMITS)


def feed(engine: Engine, docs: list[dict[str, Any]], first: int = 0) -> list[Alert]:
    """Decode each document (by its ``features``) and process what is accepted; ``first``:
    the position of ``docs[0]`` in its sequence (which sets its ``ts``)."""
    alerts: list[Alert] = []
    for i, doc in enumerate(docs, first):
        kind = EventKind.FEATURE if "features" in doc else EventKind.OUTCOME
        for event in decoded({"model": "m", "id": str(i), "ts": NOW + i, **doc}, kind).events:
            result = engine.process(event, NOW + i)
            assert result.rejection is None
            alerts += result.alerts
    return alerts


def assert_finite(alerts: list[Alert]) -> None:
    for alert in alerts:
        change = alert.change
        for value in (change.mean_before, change.mean_after, change.scale, change.magnitude):
            assert value is None or math.isfinite(value), alert


@pytest.mark.parametrize(
    ("doc", "kind", "field"),
    [
        ({"features": {"x": 1e160}}, EventKind.FEATURE, "features.x"),
        ({"features": {"x": -1.7e308}}, EventKind.FEATURE, "features.x"),
        ({"features": {"x": 1.0}, "prediction": 1.7e308}, EventKind.FEATURE, "prediction"),
        ({"error": 1e101}, EventKind.OUTCOME, "error"),
        ({"loss": -1.7976931348623157e308}, EventKind.OUTCOME, "loss"),
    ],
)
def test_magnitudes_beyond_1e100_are_refused_with_a_reason(
    doc: dict[str, Any], kind: EventKind, field: str
) -> None:
    result = decoded({"model": "m", **doc}, kind)
    assert result.events == []
    (rejection,) = result.rejections
    assert rejection.reason is Reason.OUT_OF_RANGE
    assert rejection.message.startswith(f"{field}: "), rejection.message
    assert rejection.model == "m"


def test_the_boundary_and_tiny_numbers_are_accepted() -> None:
    features = {"a": MAX_ABS_NUMBER, "b": -MAX_ABS_NUMBER, "c": 5e-324, "d": 0.0, "e": 2**64 - 1}
    (event,) = decoded({"model": "m", "features": features}).events
    assert event.features == {k: float(v) for k, v in features.items()}
    assert Reason.OUT_OF_RANGE.value == "out_of_range"


def test_a_huge_value_after_warm_up_leaves_a_restorable_stream_that_keeps_detecting() -> None:
    """The issue's case: 1.7e308 after a warm-up made the statistics inf, the snapshot null."""
    rng = random.Random(1)
    warm: list[dict[str, Any]] = [{"features": {"x": rng.gauss(0, 1)}} for _ in range(300)]
    spike: list[dict[str, Any]] = [{"features": {"x": v}} for v in (1.7e308, 1e160, 0)]
    shifted = [{"features": {"x": rng.gauss(3, 1)}} for _ in range(300)]
    settings = EngineSettings(cooldown_events=0)

    engine = Engine(settings, LIMITS)
    feed(engine, warm + spike)
    restored = Engine(settings, LIMITS)
    assert restored.restore(engine.snapshot()).rejected == ()
    alerts = feed(restored, shifted)
    assert alerts, "the shift after the spike must still be detected"
    assert alerts == feed(engine, shifted)
    assert_finite(alerts)


@pytest.mark.parametrize("standardize", [True, False])
def test_extremes_within_range_keep_every_statistic_finite(standardize: bool) -> None:
    """+/-1e100 alternating: squares near 1e200 summed over the stream stay finite."""
    docs = [{"features": {"x": MAX_ABS_NUMBER * (-1) ** i}} for i in range(400)]
    docs += [{"features": {"x": 0.0}} for _ in range(400)]
    settings = EngineSettings(standardize=standardize, warmup=10, cooldown_events=0)
    engine = Engine(settings, LIMITS)
    assert_finite(feed(engine, docs))
    for stream in engine.streams():
        state = stream.to_state()
        profile = state["seasonal"] or {}
        numbers = [v for k, v in state.items() if k not in ("detectors", "seasonal")]
        numbers += [v for v in profile.values() if isinstance(v, float)]
        numbers += [*profile.get("day_mean", []), *profile.get("week_mean", [])]
        assert all(v is None or math.isfinite(v) for v in numbers), state
    assert Engine(settings, LIMITS).restore(engine.snapshot()).rejected == ()


def test_a_warm_up_of_subnormals_gets_a_scale_that_keeps_magnitudes_finite() -> None:
    docs = [{"features": {"x": 5e-324}} for _ in range(220)]
    docs += [{"features": {"x": 1.0}} for _ in range(300)]
    engine = Engine(EngineSettings(warmup=20, cooldown_events=0), LIMITS)
    alerts = feed(engine, docs)
    assert alerts, "a jump from 5e-324 to 1 is a change"
    assert_finite(alerts)
    assert all(a.change.scale == MIN_SCALE for a in alerts)


# -- property: any legal sequence snapshots, restores and continues identically -----------

EXTREMES = [1.7e308, -1.7e308, 1e160, -1e160, 1e100, -1e100, 5e-324, -5e-324, 2.2e-308, 0.0]
NUMBERS = (
    st.sampled_from(EXTREMES)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-3, max_value=3)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
)
FEATURE_DOCS = st.fixed_dictionaries(
    {"features": st.dictionaries(st.sampled_from(["a", "b"]), NUMBERS | st.none(), min_size=1)},
    optional={"prediction": NUMBERS},
)
OUTCOME_DOCS = st.one_of(
    st.fixed_dictionaries({"error": NUMBERS}),
    st.fixed_dictionaries({"loss": NUMBERS, "correct": st.booleans()}),
    st.fixed_dictionaries({"y_true": NUMBERS, "y_pred": NUMBERS}),
)
PROPERTY_SETTINGS = st.builds(
    EngineSettings,
    standardize=st.booleans(),
    warmup=st.integers(2, 6),
    cooldown_events=st.sampled_from([0, 5]),
    detectors=st.just(
        DetectorDefaults(
            value=(DetectorSpec(type="adwin"), DetectorSpec(type="page_hinkley")),
            correctness=(DetectorSpec(type="ddm"),),
        )
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(FEATURE_DOCS | OUTCOME_DOCS, min_size=2, max_size=120),
    engine_settings=PROPERTY_SETTINGS,
    data=st.data(),
)
def test_any_legal_sequence_restores_and_continues_with_identical_alerts(
    docs: list[dict[str, Any]], engine_settings: EngineSettings, data: st.DataObject
) -> None:
    split = data.draw(st.integers(1, len(docs) - 1), label="split")
    reference = Engine(engine_settings, LIMITS)
    expected = feed(reference, docs)
    assert_finite(expected)

    first = Engine(engine_settings, LIMITS)
    before = feed(first, docs[:split])
    restored = Engine(engine_settings, LIMITS)
    outcome = restored.restore(first.snapshot())
    assert outcome.rejected == ()
    after = feed(restored, docs[split:], split)

    assert before + after == expected
    assert restored.snapshot() == reference.snapshot()
