"""A stream's and the engine's rules, pinned at their boundaries (issue #14, mutation run).

These tests assert what the public methods report (gauges, counts, restored state,
alerts) for inputs chosen so that an off-by-one, a flipped comparison or a dropped
branch in the core changes the answer.
"""

from __future__ import annotations

import random

import orjson
import pytest

from streamproc import change as change_rules
from streamproc.alerts import Severity, Status, StreamId
from streamproc.detectors import DetectorSpec
from streamproc.domain import StreamKind
from streamproc.engine import MODEL_FIELDS, Engine
from streamproc.errors import StateError
from streamproc.events import FeatureEvent, OutcomeEvent, Reason
from streamproc.settings import (
    ArrivalSettings,
    EngineSettings,
    Limits,
    SilenceSettings,
    StreamPolicy,
)
from streamproc.settings.alerts import LifecycleSettings, RollupSettings
from streamproc.stream_detectors import default_factory
from streamproc.streams import Stream

T0 = 1_764_000_000_000


def test_stream_counts_count_every_stream_by_kind() -> None:
    e = Engine(EngineSettings(), Limits())
    e.process(FeatureEvent("m", {"a": 1.0, "b": None, "c": "gold"}, T0, "1"), T0)
    e.process(FeatureEvent("m", {"a": 2.0}, T0, "2", prediction=0.5), T0)
    e.process(OutcomeEvent("m", T0, 1.0, "error", True, "3"), T0)
    e.process(OutcomeEvent("n", T0, 0.5, "loss", None, "4"), T0)
    counts = e.stream_counts()
    assert counts[StreamKind.MISSING_RATE] == 3
    assert counts[StreamKind.VALUE] == 1
    assert counts[StreamKind.CATEGORY] == 1
    assert counts[StreamKind.PREDICTION] == 1
    assert counts[StreamKind.ERROR] == 2
    assert counts[StreamKind.CORRECTNESS] == 1
    assert set(counts) == set(StreamKind)
    assert sum(counts.values()) == 9


def test_models_that_never_alerted_have_no_stream_in_drift() -> None:
    e = Engine(EngineSettings(), Limits())
    e.process(FeatureEvent("m", {"a": 1.0}, T0, "1"), T0)
    assert e.drifting() == {}


# -- Stream.restore: every field checked against its documented range -------------------


def policy(**changes: object) -> StreamPolicy:
    """The default policy of a value stream (spread tests on), with ``changes``."""
    default = EngineSettings().policy("m", StreamKind.VALUE, "x")
    return default.model_copy(update={"cooldown_events": 50, "warmup": 20, **changes})


def value_stream(cooldown: int = 50) -> Stream:
    return Stream(
        StreamId("m", StreamKind.VALUE, "x"), policy(cooldown_events=cooldown), default_factory
    )


def warmed(n: int = 700) -> Stream:
    stream = value_stream()
    rng = random.Random(7)
    for _ in range(n):
        stream.update(rng.gauss(10.0, 2.0), None, 0, 0)
    return stream


SID = StreamId("m", StreamKind.VALUE, "x")
WHERE = "stream m/value/x"
NUMBER_BOUNDS = {
    "spread_up": (0.0, 1e4, "[0, 10000]"),
    "spread_down": (0.0, 1e4, "[0, 10000]"),
    "recent_sq": (0.0, 16.0, "[0, 16]"),
    "previous": (-4e200, 4e200, "[-4e+200, 4e+200]"),
    "spread_ref": (1e-12, 1e13, "[1e-12, 1e+13]"),
    "spread_sq": (0.0, 8192.0, "[0, 8192]"),
    "spread_tail": (1.0, 1360.0, "[1, 1360]"),
    "warm_mean": (-2e100, 2e100, "[-2e+100, 2e+100]"),
    "offset": (-2e100, 2e100, "[-2e+100, 2e+100]"),
    "scale": (1e-100, 4e100, "[1e-100, 4e+100]"),
    "ref_mean": (-2e100, 2e100, "[-2e+100, 2e+100]"),
    "recent": (-2e100, 2e100, "[-2e+100, 2e+100]"),
}


def outside(low: float, high: float) -> list[float]:
    below = low - abs(low) * 0.5 if low else -1.0
    return [below, high * 1.5 if high > 0 else high + 1.0]


@pytest.mark.parametrize("name", NUMBER_BOUNDS)
def test_a_restored_number_outside_its_range_is_refused_naming_it(name: str) -> None:
    low, high, shown = NUMBER_BOUNDS[name]
    good = warmed().to_state()
    for bad in outside(low, high):
        stream = warmed()
        before = stream.to_state()
        with pytest.raises(StateError) as caught:
            stream.restore({**good, name: bad})
        assert str(caught.value).startswith(f"{WHERE}: {name}: expected a number in {shown}")
        assert stream.to_state() == before, "a refused state leaves the stream unchanged"


@pytest.mark.parametrize("name", NUMBER_BOUNDS)
def test_a_restored_number_at_either_end_of_its_range_is_accepted(name: str) -> None:
    low, high, _ = NUMBER_BOUNDS[name]
    good = {**warmed().to_state(), "spread_acc": 0.0}  # its bound follows spread_ref
    for edge in (low, high):
        stream = value_stream()
        stream.restore({**good, name: edge})
        assert stream.to_state()[name] == edge


@pytest.mark.parametrize("name", ["n", "quiet_until", "warm_n", "ref_n", "spread_n"])
def test_a_restored_count_must_be_a_non_negative_integer(name: str) -> None:
    good = warmed().to_state()
    for bad in (-1, 1.5, True):
        with pytest.raises(StateError, match=f"^{WHERE}: {name}: expected a non-negative"):
            value_stream().restore({**good, name: bad})


def test_a_stream_state_that_is_not_a_mapping_of_its_fields_is_refused() -> None:
    for bad in (7, {**warmed().to_state(), "extra": 1}):
        with pytest.raises(StateError, match=f"^{WHERE}: expected a mapping with keys n, quiet"):
            value_stream().restore(bad)


def test_warm_up_and_reference_counts_cannot_exceed_the_stream_length() -> None:
    good = warmed(700).to_state()
    # no event since warm-up: none in the spread batch either
    value_stream().restore({**good, "warm_n": 700, "ref_n": 700, "spread_acc": 0.0})
    for name in ("warm_n", "ref_n"):
        with pytest.raises(StateError, match=f"^{WHERE}: warm_n .* or ref_n .* exceeds n 700"):
            value_stream().restore({**good, name: 701})


def test_the_warm_up_sum_of_squares_is_non_negative_and_detectors_a_list() -> None:
    good = warmed().to_state()
    value_stream().restore({**good, "warm_m2": 0.0})
    with pytest.raises(StateError, match=f"^{WHERE}: warm_m2: expected a number in \\[0,"):
        value_stream().restore({**good, "warm_m2": -0.5})
    with pytest.raises(StateError, match=f"^{WHERE}: detectors must be a list$"):
        value_stream().restore({**good, "detectors": {}})
    with pytest.raises(StateError, match=f"^{WHERE}: detector"):
        value_stream().restore({**good, "detectors": [{"v": 1}]})


def test_a_restored_cooldown_is_cut_to_the_configured_length_and_learning_to_its_end() -> None:
    good = warmed(700).to_state()
    stream = value_stream(cooldown=50)
    stream.restore({**good, "quiet_until": 10**9, "spread_n": 10**6})
    assert stream.quiet_until == 750
    assert stream.spread_n == 32
    stream.restore({**good, "quiet_until": 730, "spread_n": 5})
    assert stream.quiet_until == 730
    assert stream.spread_n == 5


def test_a_restored_stream_continues_exactly_and_keeps_only_detectors_it_has() -> None:
    original = warmed(700)
    state = original.to_state()
    twin = value_stream()
    twin.restore({**state, "detectors": [*state["detectors"], state["detectors"][0]]})
    assert twin.to_state() == state
    rng = random.Random(3)
    values = [rng.gauss(14.0, 6.0) for _ in range(1500)]
    expected = [a for x in values for a in original.update(x, None, 0, 0)]
    got = [a for x in values for a in twin.update(x, None, 0, 0)]
    assert got == expected
    assert expected, "the shift is detected, so the detectors' state mattered"
    assert twin.to_state() == original.to_state()


def test_a_detector_whose_configuration_changed_starts_afresh() -> None:
    state = warmed(700).to_state()
    other = DetectorSpec(type="adwin", params={"delta": 0.1})
    changed = policy(detectors=(other,))
    stream = Stream(StreamId("m", StreamKind.VALUE, "x"), changed, default_factory)
    fresh = stream.to_state()["detectors"]
    stream.restore(state)
    assert stream.to_state()["detectors"] == fresh
    assert stream.n == 700


# -- Engine: limits, idleness, old snapshots ----------------------------------------------


def test_the_stream_limit_admits_a_model_exactly_up_to_it_and_names_the_overflow() -> None:
    e = Engine(EngineSettings(), Limits(max_streams_per_model=3))
    assert e.process(FeatureEvent("m", {"a": 1.0, "b": 1.0}, T0), T0).rejection is None
    full = e.process(FeatureEvent("m", {"a": 1.0, "c": 1.0}, T0), T0)
    assert full.rejection is None, "a third feature reaches the limit, not over it"
    over = e.process(FeatureEvent("m", {"d": 1.0, "e": 1.0}, T0), T0).rejection
    assert over is not None
    assert over.reason is Reason.TOO_MANY_STREAMS
    assert over.model == "m"
    assert over.message == (
        "features: model 'm' tracks 3 features and this event adds 2 more, "
        "over limits.max_streams_per_model=3"
    )
    assert e.process(FeatureEvent("m", {"a": 2.0, "c": None}, T0), T0).rejection is None


def test_the_model_limit_names_the_model_refused() -> None:
    e = Engine(EngineSettings(), Limits(max_models=1))
    e.process(FeatureEvent("a", {"x": 1.0}, T0), T0)
    refused = e.process(FeatureEvent("b", {"x": 1.0}, T0), T0).rejection
    assert refused is not None
    assert refused.reason is Reason.TOO_MANY_MODELS
    assert refused.model == "b"
    assert refused.message == (
        "model: 'b' would be a new model, but this worker already tracks limits.max_models=1"
    )


def test_a_model_is_idle_only_after_more_than_the_idle_time() -> None:
    e = Engine(EngineSettings(), Limits(model_idle_seconds=60))
    e.process(FeatureEvent("m", {"x": 1.0}, T0), T0)
    assert e.evict_idle(T0 + 60_000).models == []
    assert e.models == ["m"]
    assert e.evict_idle(T0 + 60_001).models == ["m"]
    assert e.models == []


def test_a_restored_model_is_idle_from_the_first_check_after_the_restore() -> None:
    source = Engine(EngineSettings(), Limits(model_idle_seconds=60))
    source.process(FeatureEvent("m", {"x": 1.0}, T0), T0)
    e = Engine(EngineSettings(), Limits(model_idle_seconds=60))
    e.restore(source.snapshot())
    later = T0 + 10**9
    assert e.evict_idle(later).models == []
    assert e.evict_idle(later + 60_000).models == []
    assert e.evict_idle(later + 60_001).models == ["m"]


class Spike:
    """Fires on every value above 50: detections exactly where a test puts them."""

    drift_detected = False

    def update(self, x: float) -> None:
        self.drift_detected = x > 50.0


class Always:
    """Fires on every value: every stream update is an alert, so each shows what it was fed."""

    drift_detected = True

    def update(self, x: float) -> None:
        pass


def test_every_stream_of_a_feature_event_alerts_with_the_events_id_and_times() -> None:
    settings = EngineSettings(standardize=False, warmup=2, cooldown_events=0)
    e = Engine(settings, Limits(), lambda spec, std: Always())
    e.process(FeatureEvent("m", {"v": 1.0, "gone": 1.0}, T0, "e0"), T0)
    result = e.process(FeatureEvent("m", {"c": "x", "v": 2.0, "a": None}, T0 + 5, "e1"), T0 + 9)
    kinds = (StreamKind.MISSING_RATE, StreamKind.VALUE)
    firing = [a for a in result.alerts if a.stream.kind in kinds]
    assert {(a.event_id, a.event_ts, a.detected_at) for a in firing} == {("e1", T0 + 5, T0 + 9)}
    fired = {(a.stream.kind, a.stream.name) for a in firing}
    assert fired == {
        (StreamKind.MISSING_RATE, "v"),
        (StreamKind.VALUE, "v"),
        (StreamKind.MISSING_RATE, "c"),
        (StreamKind.MISSING_RATE, "a"),
        (StreamKind.MISSING_RATE, "gone"),
    }
    streams = {(s.id.kind, s.id.name): s for s in e.streams(["m"])}
    missing = [streams[(StreamKind.MISSING_RATE, n)] for n in ("v", "c", "a", "gone")]
    value = streams[(StreamKind.VALUE, "v")]
    assert result.updates == sum(s.updates_per_value for s in missing) + value.updates_per_value + 1
    assert [s.estimate()[0] for s in missing] == [0.0, 0.0, 1.0, pytest.approx(2 / 51)]
    e.process(FeatureEvent("m", {"c": "y"}, T0, "e2"), T0)
    assert streams[(StreamKind.CATEGORY, "c")].n == 2, "one category stream, fed twice"


def test_a_numeric_prediction_alerts_with_the_events_id_and_times_and_counts_its_updates() -> None:
    settings = EngineSettings(standardize=False, warmup=2, cooldown_events=0)
    e = Engine(settings, Limits(), lambda spec, std: Always())
    e.process(FeatureEvent("m", {}, T0, "e0", prediction=0.5), T0)
    result = e.process(FeatureEvent("m", {}, T0 + 5, "e1", prediction=0.7), T0 + 9)
    kind = StreamKind.PREDICTION
    alerts = [a for a in result.alerts if a.stream.kind is kind and a.status is Status.FIRING]
    assert {(a.event_id, a.event_ts, a.detected_at) for a in alerts} == {("e1", T0 + 5, T0 + 9)}
    [stream] = [s for s in e.streams(["m"]) if s.id.kind is StreamKind.PREDICTION]
    assert stream.n == 2, "one prediction stream, fed twice"
    assert result.updates == stream.updates_per_value
    labelled = e.process(FeatureEvent("m", {}, T0, "e2", prediction="yes"), T0)
    again = e.process(FeatureEvent("m", {}, T0, "e3", prediction="no"), T0)
    assert (labelled.updates, again.updates) == (1, 1)
    [cats] = [s for s in e.streams(["m"]) if s.id.kind is StreamKind.CATEGORY]
    assert cats.n == 2


def model_alerts(share: float, spiked: int) -> int:
    """Model alerts when ``spiked`` of three value streams alert at once, in a model of 12
    streams (4 missing, 3 value, 1 category, prediction as number and as label, error,
    correctness) whose rollup needs ``share`` of them."""
    settings = EngineSettings(
        standardize=False,
        warmup=2,
        cooldown_events=10,
        lifecycle=LifecycleSettings(stable_events=100),
        rollup=RollupSettings(min_streams=100, min_share=share, window_events=50),
    )
    e = Engine(settings, Limits(), lambda spec, std: Spike())
    e.process(OutcomeEvent("m", T0, 0.0, "error", True), T0)
    out = []
    for i in range(30):
        high = 100.0 if i == 20 else 0.0
        values: dict[str, float | str | None] = {
            f"f{j}": high if j < spiked else 0.0 for j in range(3)
        }
        prediction = "yes" if i % 2 else 0.0
        event = FeatureEvent("m", {**values, "c": "a"}, T0 + i, prediction=prediction)
        out += e.process(event, T0 + i).alerts
    assert sum(e.stream_counts().values()) == 12
    return sum(1 for a in out if a.stream.kind is StreamKind.MODEL)


def test_the_rollup_share_counts_every_kind_of_stream_of_the_model() -> None:
    assert (model_alerts(0.25, 3), model_alerts(0.25, 2)) == (1, 0), "3 of 12 needed"
    assert model_alerts(0.3, 3) == 0, "4 of 12 needed"


def test_evicting_idle_models_resolves_the_active_alerts_of_each() -> None:
    settings = EngineSettings(
        standardize=False,
        warmup=2,
        detectors={"value": [{"type": "adwin"}]},  # type: ignore[arg-type]
    )
    e = Engine(settings, Limits(model_idle_seconds=60), lambda spec, std: Spike())
    fired = []
    for model in ("a", "b"):
        for i, x in enumerate((0.0, 0.0, 0.0, 100.0)):
            fired += e.process(FeatureEvent(model, {"x": x}, T0 + i, f"{model}{i}"), T0).alerts
    assert [a.model for a in fired] == ["a", "b"]
    evicted = e.evict_idle(T0 + 60_001)
    assert sorted(evicted.models) == ["a", "b"]
    assert sorted((a.alert_id, a.status) for a in evicted.alerts) == sorted(
        (a.alert_id, Status.RESOLVED) for a in fired
    )


def test_restored_streams_keep_their_identity() -> None:
    source = Engine(EngineSettings(), Limits())
    source.process(FeatureEvent("m", {"c": "gold", "v": 1.0}, T0, prediction="yes"), T0)
    source.process(FeatureEvent("m", {"v": 2.0}, T0, prediction=0.5), T0)
    source.process(OutcomeEvent("m", T0, 0.5, "loss", True), T0)
    restored = Engine(EngineSettings(), Limits())
    assert restored.restore(source.snapshot()).models == ("m",)
    ids = [(s.id.model, s.id.kind, s.id.name) for s in restored.streams()]
    assert ids == [(s.id.model, s.id.kind, s.id.name) for s in source.streams()]
    assert ("m", StreamKind.CATEGORY, "c") in ids
    assert ("m", StreamKind.CATEGORY, "prediction") in ids
    assert ("m", StreamKind.PREDICTION, "prediction") in ids
    assert restored.snapshot() == source.snapshot()


def test_a_malformed_feature_record_is_named_with_its_first_40_characters() -> None:
    name = "f" * 50
    body = {"version": 2, "models": {"m": {**dict.fromkeys(MODEL_FIELDS), "errors": {}}}}
    body["models"]["m"]["features"] = {name: 7}
    [rejected] = Engine(EngineSettings(), Limits()).restore(orjson.dumps(body)).rejected
    assert rejected.reason == (
        f"model 'm', feature '{'f' * 40}': expected a mapping with keys value, missing, category"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": 9, "models": {}}, "snapshot: unknown format or version"),
        ([2], "snapshot: unknown format or version"),
        ({"version": 2, "models": []}, "snapshot: 'models' must be a mapping"),
        (
            {"version": 2, "models": {key: {} for key in "edcba"}},
            "snapshot carries other models: ['a', 'b', 'c']",
        ),
    ],
)
def test_an_unreadable_snapshot_is_refused_whole(body: object, message: str) -> None:
    e = Engine(EngineSettings(), Limits())
    with pytest.raises(StateError) as caught:
        e.restore(orjson.dumps(body), only=("a",))
    assert str(caught.value) == message
    assert e.models == []


def model_record(**fields: object) -> bytes:
    record = {**dict.fromkeys(MODEL_FIELDS), "features": {}, "errors": {}, **fields}
    return orjson.dumps({"version": 2, "models": {"m": record}})


def test_a_model_record_needs_mappings_of_features_and_errors_and_known_error_names() -> None:
    for fields in ({"features": []}, {"errors": 3}):
        [rejected] = Engine(EngineSettings(), Limits()).restore(model_record(**fields)).rejected
        assert rejected.reason == "model 'm': features and errors must be mappings"
    errors = {"e" * 50: warmed(3).to_state()}
    [rejected] = Engine(EngineSettings(), Limits()).restore(model_record(errors=errors)).rejected
    assert rejected.reason == f"model 'm': unknown error stream '{'e' * 40}'"


def test_a_malformed_arrival_state_is_named_with_its_model() -> None:
    e = Engine(EngineSettings(), Limits(), arrival=ArrivalSettings())
    [rejected] = e.restore(model_record(arrival=7)).rejected
    assert rejected.reason.startswith("model 'm': arrival state: expected a mapping with keys")


def test_a_restored_models_arrival_state_is_its_own() -> None:
    arrival = ArrivalSettings(silence=SilenceSettings(floor_seconds=10, ceiling_seconds=60))
    source = Engine(EngineSettings(), Limits(), arrival=arrival)
    for i in range(30):
        now = T0 + i * 1000
        source.process(FeatureEvent("m", {"x": 1.0}, now, f"e{i}"), now)
        source.tick(now)
    restored = Engine(EngineSettings(), Limits(), arrival=arrival)
    restored.restore(source.snapshot())
    assert restored.snapshot() == source.snapshot()
    alerts = [a for s in range(30, 200) for a in restored.tick(T0 + s * 1000)]
    [silence] = alerts
    assert (silence.model, silence.stream.kind, silence.event_id) == (
        "m",
        StreamKind.ARRIVAL,
        "e29",
    )
    assert silence.events_seen == 30, "the restored count of events"


def test_streams_of_named_models_skip_unknown_names() -> None:
    e = Engine(EngineSettings(), Limits())
    e.process(FeatureEvent("a", {"x": 1.0}, T0), T0)
    e.process(FeatureEvent("b", {"y": 1.0}, T0), T0)
    assert [(s.id.model, s.id.kind, s.id.name) for s in e.streams(["nope", "b"])] == [
        ("b", StreamKind.MISSING_RATE, "y"),
        ("b", StreamKind.VALUE, "y"),
    ]


def test_a_version_1_record_gets_the_later_fields_as_null_and_a_malformed_one_is_refused() -> None:
    v1 = orjson.dumps({"version": 1, "models": {"ok": [{}, None, {}, None], "bad": 7}})
    e = Engine(EngineSettings(), Limits())
    restored = e.restore(v1)
    assert restored.models == ("ok",)
    [(model, reason)] = [(r.model, r.reason) for r in restored.rejected]
    assert model == "bad"
    assert reason.startswith("model 'bad': expected a mapping with keys features, prediction")
    assert e.models == ["ok"]


# -- Gauges: a stream's estimate, the engine's drifting streams ----------------------------


def test_the_estimate_is_the_recent_mean_and_the_first_windowed_detectors_width() -> None:
    stream = value_stream()
    assert stream.estimate() == (0.0, 0), "nothing seen yet"
    for x in (4.0, 6.0, 8.0):
        stream.update(x, None, 0, 0)
    recent, width = stream.estimate()
    alpha = 2.0 / 51
    assert recent == pytest.approx(4.0 + alpha * 2.0 + alpha * (8.0 - (4.0 + alpha * 2.0)))
    assert width == 0, "ADWIN reads standardized values: none before the warm-up's end"
    for x in range(22):
        stream.update(float(x % 5), None, 0, 0)
    assert stream.estimate()[1] == 5, "ADWIN's window: the 5 values after the warm-up"
    unwindowed = Stream(
        SID, policy(detectors=(DetectorSpec(type="page_hinkley"),)), default_factory
    )
    for x in (-3.0, -3.0):
        unwindowed.update(x, None, 0, 0)
    assert unwindowed.estimate() == (-3.0, 2), "no window: the stream's length"
    empty = Stream(SID, policy(detectors=(DetectorSpec(type="page_hinkley"),)), default_factory)
    assert empty.estimate() == (0.0, 0)


# -- change.summarize / change.severity on a change of unknown size ------------------------

AGE = StreamId("churn", StreamKind.VALUE, "age")
RATE = StreamId("churn", StreamKind.MISSING_RATE, "age")


@pytest.mark.parametrize("sid", [AGE, RATE], ids=["value", "rate"])
@pytest.mark.parametrize(("before", "after"), [(None, 0.3), (0.3, None), (None, None)])
def test_a_change_with_a_mean_unknown_has_no_direction_or_size_and_is_a_warning(
    sid: StreamId, before: float | None, after: float | None
) -> None:
    change = change_rules.summarize(sid, before, after, 2.0, 7)
    assert (change.mean_before, change.mean_after) == (before, after)
    assert (change.direction, change.magnitude, change.window) == ("none", None, 7)
    assert change_rules.severity(sid, change) is Severity.WARNING
