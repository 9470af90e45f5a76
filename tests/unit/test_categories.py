"""Category streams (issue #15): share changes, new and vanished categories, bounded state."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.alerts import Alert, Status, StreamId, alert_id, from_json
from streamproc.categories import CANDIDATES, DETECTOR, OTHER, CategoryStream
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.errors import StateError
from streamproc.events import FeatureEvent
from streamproc.settings import EngineSettings, Limits
from streamproc.settings.categories import CategorySettings
from streamproc.summaries import summarize

NOW = 1_764_000_000_000
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "streamproc/schemas/alert.schema.json").read_text()
)
BASE = {"DE": 0.10, "FR": 0.30, "US": 0.40, "IT": 0.15, "ES": 0.05}


def stream(settings: CategorySettings | None = None) -> CategoryStream:
    sid = StreamId("m", StreamKind.CATEGORY, "country")
    return CategoryStream(sid, settings or CategorySettings())


def draws(weights: dict[str, float], n: int, rng: random.Random) -> list[str]:
    return rng.choices(list(weights), list(weights.values()), k=n)


def feed(s: CategoryStream, values: Sequence[str], start: int = 0) -> list[Alert]:
    alerts: list[Alert] = []
    for i, value in enumerate(values, start):
        alerts += s.update(value, f"e{i}", NOW + i, NOW + i)
    return alerts


def first_after_change(before: dict[str, float], after: dict[str, float], seed: int) -> Alert:
    """The first alert of a stream that saw 20,000 events of ``before``, then ``after``."""
    rng = random.Random(seed)
    s = stream()
    assert feed(s, draws(before, 20_000, rng)) == []
    alerts = feed(s, draws(after, 3_000, rng), start=20_000)
    assert alerts, "the change went unnoticed"
    return alerts[0]


def named(alert: Alert) -> dict[str, tuple[float, float, str]]:
    cats = alert.change.categories
    assert cats is not None
    return {c.category: (c.share_before, c.share_after, c.change) for c in cats}


def test_a_share_that_doubles_is_named_with_its_shares_before_and_after() -> None:
    alert = first_after_change(BASE, {**BASE, "DE": 0.20, "US": 0.30}, seed=1)
    assert 20_000 < alert.events_seen < 22_000
    before, after, how = named(alert)["DE"]
    assert before == pytest.approx(0.10, abs=0.01)
    assert after > 0.15
    assert how == "up"
    assert alert.stream.kind is StreamKind.CATEGORY
    assert alert.severity.value == "critical"


def test_a_new_category_at_volume_is_reported_new() -> None:
    after = {**{k: v * 0.9 for k, v in BASE.items()}, "XX": 0.10}
    alert = first_after_change(BASE, after, seed=2)
    before, _, how = named(alert)["XX"]
    assert (before < 0.001, how) == (True, "new")
    assert alert.events_seen < 20_500


def test_a_category_that_vanishes_is_reported_vanished() -> None:
    alert = first_after_change(BASE, {**BASE, "ES": 0.0, "US": 0.45}, seed=3)
    before, after, how = named(alert)["ES"]
    assert before == pytest.approx(0.05, abs=0.01)
    assert (after, how) == (pytest.approx(0.0, abs=0.005), "vanished")
    assert alert.change.direction == "down"


def test_two_top_categories_swapping_ranks_are_both_named() -> None:
    alert = first_after_change(BASE, {**BASE, "FR": 0.40, "US": 0.30}, seed=4)
    assert {"FR", "US"} <= set(named(alert))


def test_ids_sent_as_a_feature_stay_bounded_and_quiet() -> None:
    s = stream()
    bound = CANDIDATES * s._s.top_k + 1
    alerts = []
    for i in range(60_000):
        alerts += s.update(f"id-{i}", None, NOW, NOW)
        assert len(s.warm or ()) <= bound
        assert len(s.names) <= s._s.top_k + 1
    assert alerts == []


def test_a_stationary_zipf_over_2000_values_stays_quiet_and_bounded() -> None:
    zipf = {f"v{r}": 1 / r for r in range(1, 2001)}
    s = stream()
    assert feed(s, draws(zipf, 150_000, random.Random(5))) == []
    assert len(s.names) <= s._s.top_k + 1


def test_the_head_of_a_long_tail_growing_is_detected() -> None:
    zipf = {f"v{r}": 1 / r for r in range(1, 2001)}
    alert = first_after_change(zipf, {**zipf, "v1": 2.5}, seed=6)
    assert named(alert)["v1"][2] == "up"


def test_the_alert_follows_the_schema_and_round_trips() -> None:
    alert = first_after_change(BASE, {**BASE, "DE": 0.20, "US": 0.30}, seed=1)
    body = json.loads(alert.to_json())
    jsonschema.validate(body, SCHEMA)
    assert body["detector"]["type"] == DETECTOR
    assert body["change"]["categories"][0]["category"] == "DE"
    assert from_json(alert.to_json()) == alert
    assert alert.alert_id == alert_id(alert.stream, 0, DETECTOR, alert.events_seen)
    assert "category:country" in summarize(alert)
    assert "DE 10" in summarize(alert)


def test_numeric_alerts_carry_no_categories_field() -> None:
    engine = Engine(EngineSettings(), Limits())
    rng = random.Random(7)
    alerts = []
    for i in range(4000):
        x = rng.gauss(0.0 if i < 2000 else 3.0, 1.0)
        alerts += engine.process(FeatureEvent(model="m", features={"a": x}, ts=NOW), NOW).alerts
    assert alerts
    assert "categories" not in json.loads(alerts[0].to_json())["change"]


def engine_events(seed: int, n: int, at: int) -> list[FeatureEvent]:
    rng = random.Random(seed)
    after = {**BASE, "DE": 0.3, "US": 0.2}
    events = []
    for i in range(n):
        weights = BASE if i < at else after
        country, label = draws(weights, 1, rng)[0], rng.choice(["cat", "dog"])
        events.append(
            FeatureEvent(
                model="m", features={"country": country}, ts=NOW + i, prediction=label, id=f"e{i}"
            )
        )
    return events


def test_engine_watches_string_features_and_string_predictions() -> None:
    engine = Engine(EngineSettings(), Limits())
    alerts = []
    for event in engine_events(8, 6000, at=3000):
        alerts += engine.process(event, NOW).alerts
    assert engine.stream_counts()[StreamKind.CATEGORY] == 2
    gauges = {s.id.name: s.estimate() for s in engine.streams() if s.id.kind == "category"}
    assert gauges["prediction"][1] == 3  # cat, dog and __other__ tracked
    assert 0.4 < gauges["prediction"][0] < 0.7
    firing = [a for a in alerts if a.status is Status.FIRING]
    assert [(a.stream.kind, a.stream.name) for a in firing] == [(StreamKind.CATEGORY, "country")]


def test_category_streams_can_be_turned_off() -> None:
    settings = EngineSettings(categories=CategorySettings(enabled=False))
    engine = Engine(settings, Limits())
    for event in engine_events(8, 100, at=50):
        engine.process(event, NOW)
    assert engine.stream_counts()[StreamKind.CATEGORY] == 0
    assert Engine(EngineSettings(), Limits()).restore(engine.snapshot()).rejected == ()


# --- restore validation -------------------------------------------------------------------


def armed_state() -> dict[str, object]:
    s = stream()
    feed(s, draws(BASE, 2500, random.Random(9)))
    state = s.to_state()
    assert state["warm"] is None
    return state


def corrupt(state: dict[str, object], path: tuple[object, ...], value: object) -> object:
    copy = json.loads(json.dumps(state))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("n",), -1, "n: expected a non-negative integer"),
        (("ref_n",), 10**9, "exceeds n"),
        (("warm",), {"a": 1}, "exactly one of"),
        (("slots", "names", 0), "DE", "bad or repeated category name"),
        (("slots", "names", 1), OTHER, "bad or repeated category name"),
        (("slots", "ref", 1), 10**6, "do not add up"),
        (("slots", "last", 1), 10**9, "beyond n"),
        (("slots", "up", 1), -1.0, "up: expected a number"),
        (("slots", "down", 1), float("1e300"), "down: expected a number"),
        (("slots", "recent", 1), 1.5, "recent share: expected a number"),
        (("slots", "p0", 1), 0.0, "reference share: expected a number"),
        (("slots", "up"), [1.0, 2.0], "columns of one length"),
        (("slots", "extra"), [], "slots: expected a mapping with keys names"),
        (("slots",), [], "slots: expected a mapping with keys names"),
        (("known",), 0, "known slots 0 not in"),
        (("known",), 99, "known slots 99 not in"),
        (("pending",), ["DE"], "pending must be"),
        (("pending",), ["x", "x"], "pending must be"),
        (("pending",), [1], "pending must be"),
        (("extra",), 1, "expected a mapping with keys n, ref_n"),
    ],
)
def test_a_bad_field_is_refused_and_leaves_the_stream_unchanged(
    path: tuple[object, ...], value: object, reason: str
) -> None:
    s = stream()
    before = s.to_state()
    with pytest.raises(StateError, match=reason):
        s.restore(corrupt(armed_state(), path, value))
    assert s.to_state() == before


def test_too_many_slots_or_warm_up_counts_are_refused() -> None:
    state = armed_state()
    small = stream(CategorySettings(top_k=2))
    with pytest.raises(StateError, match="slots must be columns of one length, 1 to 3"):
        small.restore(state)
    warm: dict[str, object] = {"n": 10, "ref_n": 10, "slots": None, "known": 0, "pending": []}
    with pytest.raises(StateError, match="at most 11"):
        small.restore({**warm, "warm": {f"v{i}": 0 for i in range(11)} | {"a": 10}})
    with pytest.raises(StateError, match="do not add up"):
        small.restore({**warm, "warm": {"a": 9}})


def test_a_restored_stream_continues_exactly() -> None:
    values = draws(BASE, 4000, random.Random(10)) + draws(
        {**BASE, "DE": 0.3, "US": 0.2}, 2000, random.Random(11)
    )
    expected = feed(stream(), values)
    assert expected
    for split in (1000, 2000, 4100, 4500):
        first = stream()
        before = feed(first, values[:split])
        second = stream()
        second.restore(json.loads(json.dumps(first.to_state())))
        assert before + feed(second, values[split:], start=split) == expected


# --- snapshot and restore through the engine ----------------------------------------------

LABELS = ["a", "b", "c", "d", "e", "f"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    weights=st.lists(st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6), min_size=2, max_size=3),
    size=st.integers(150, 700),
    top_k=st.integers(1, 4),
    sweep=st.integers(1, 40),
    data=st.data(),
)
def test_a_snapshot_at_any_point_continues_with_identical_alerts(
    seed: int,
    weights: list[list[float]],
    size: int,
    top_k: int,
    sweep: int,
    data: st.DataObject,
) -> None:
    cats = CategorySettings(warmup=100, top_k=top_k, sweep_events=sweep, false_alarm_events=100)
    engine_settings = EngineSettings(categories=cats)
    rng = random.Random(seed)
    events = []
    for i in range(size):
        w = weights[i * len(weights) // size]
        feature, label = rng.choices(LABELS, [x + 1e-3 for x in w], k=2)
        events.append(
            FeatureEvent(model="m", features={"c": feature}, ts=NOW + i, prediction=label)
        )
    split = data.draw(st.integers(1, size - 1), label="split")

    def run(engine: Engine, part: list[FeatureEvent]) -> list[Alert]:
        return [a for e in part for a in engine.process(e, NOW).alerts]

    reference = Engine(engine_settings, Limits())
    expected = run(reference, events)
    first = Engine(engine_settings, Limits())
    before = run(first, events[:split])
    restored = Engine(engine_settings, Limits())
    assert restored.restore(first.snapshot()).rejected == ()
    assert before + run(restored, events[split:]) == expected
    assert restored.snapshot() == reference.snapshot()


def test_the_property_sees_alerts() -> None:
    """The property above is only worth its name if its sequences raise category alerts."""
    cats = CategorySettings(warmup=100, top_k=2, sweep_events=8, false_alarm_events=100)
    engine = Engine(EngineSettings(categories=cats), Limits())
    alerts = []
    for i in range(600):
        value = "a" if i % 3 or i > 300 else "b"
        alerts += engine.process(FeatureEvent(model="m", features={"c": value}, ts=NOW), NOW).alerts
    assert any(a.stream.kind is StreamKind.CATEGORY for a in alerts)


def test_lazy_updates_equal_per_event_cusums() -> None:
    """Applying a category's run of zeros at its next occurrence gives what updating every
    slot on every event would (no sweep here, so the tuning stays fixed)."""
    s = stream(CategorySettings(warmup=200, top_k=6, sweep_events=100_000))
    rng = random.Random(12)
    feed(s, draws({"a": 0.5, "b": 0.3, "c": 0.2}, 200, rng))
    s._settle()  # exact at any point: the starting values of the per-event computation
    naive = {name: [s.up[i], s.dn[i], s.recent[i]] for name, i in s.slots.items()}
    after = {"a": 0.47, "b": 0.3, "c": 0.2, "d": 0.03}
    for i, value in enumerate(draws(after, 1500, rng)):
        assert s.update(value, None, NOW + i, NOW) == ()
        for name, slot in s.slots.items():
            hit = name == value or (slot == 0 and value not in s.slots)
            up, dn, recent = naive.setdefault(name, [0.0, 0.0, 0.0])  # new: admitted now
            up = max(0.0, up + (s.o_up[slot] if hit else s.z_up[slot]))
            dn = max(0.0, dn + (s.o_dn[slot] if hit else s.z_dn[slot]))
            recent = recent * (1 - 2 / 201) + (2 / 201 if hit else 0.0)
            naive[name] = [up, dn, recent]
        touched = s.slots.get(value, 0)  # settled by its own update
        got = [s.up[touched], s.dn[touched], s.recent[touched]]
        assert got == pytest.approx(naive[s.names[touched]], abs=1e-9)
    s._settle()
    assert "d" in s.slots
    for name, slot in s.slots.items():
        expected = naive[name]
        assert [s.up[slot], s.dn[slot], s.recent[slot]] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (("features", "country", "category", "slots", "recent", 1), "recent share"),
        (("prediction_category", "slots", "recent", 1), "recent share"),
    ],
)
def test_the_engine_rejects_a_model_whose_category_state_is_bad(
    path: tuple[object, ...], reason: str
) -> None:
    engine = Engine(EngineSettings(), Limits())
    for event in engine_events(8, 1500, at=1500):
        engine.process(event, NOW)
    doc = json.loads(engine.snapshot())
    node = doc["models"]["m"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 2.0
    restored = Engine(EngineSettings(), Limits())
    (rejected,) = restored.restore(json.dumps(doc).encode()).rejected
    assert reason in rejected.reason
    assert restored.models == []
