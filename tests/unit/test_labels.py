"""The label join (issue #15, item 2): labels meet their predictions in either order, within
a time to live, bounded per model, and restore exactly."""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.alerts import Alert
from streamproc.detectors import DetectorSpec
from streamproc.domain import StreamKind
from streamproc.engine import Engine, Processed
from streamproc.errors import StateError
from streamproc.events import Event, EventKind, FeatureEvent, LabelEvent, Reason, decode
from streamproc.labels import LabelJoin, NoObserver, Side, reduce
from streamproc.settings import DetectorDefaults, EngineSettings, Limits
from streamproc.settings.labels import LabelSettings
from tests.unit.test_events import SCHEMAS

NOW = 1_700_000_000_000
DAY = 86_400_000
LIMITS = Limits()
SETTINGS = EngineSettings(
    standardize=False,
    cooldown_events=0,
    detectors=DetectorDefaults(
        error=(DetectorSpec(type="adwin"),), correctness=(DetectorSpec(type="ddm"),)
    ),
)


class Recorder(NoObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def joined(self, model: str, delay_ms: int) -> None:
        self.events.append(("joined", delay_ms))

    def expired(self, model: str, side: Side) -> None:
        self.events.append(("expired", side))

    def dropped(self, model: str, side: Side) -> None:
        self.events.append(("dropped", side))


def engine(recorder: Recorder | None = None, **labels: Any) -> Engine:
    return Engine(SETTINGS, LIMITS, labels=LabelSettings(**labels), label_observer=recorder)


def prediction(id_: str, value: float | str, ts: int = NOW, model: str = "m") -> FeatureEvent:
    return FeatureEvent(model, {"x": 1.0}, ts, id_, value)


def label(id_: str, y_true: Any, ts: int = NOW, model: str = "m") -> LabelEvent:
    return LabelEvent(model, ts, id_, y_true)


def error_values(e: Engine) -> tuple[int, int]:
    """(events seen by the error stream, by the correctness stream)."""
    counts = {s.id.kind: s.n for s in e.streams()}
    return counts.get(StreamKind.ERROR, 0), counts.get(StreamKind.CORRECTNESS, 0)


def test_decode_reads_an_outcome_with_id_and_y_true_only_as_a_label() -> None:
    payload = orjson.dumps({"model": "m", "id": 7, "y_true": "fraud", "ts": NOW})
    (event,) = decode(payload, kind=EventKind.OUTCOME, received_ms=0, limits=LIMITS).events
    assert event == LabelEvent("m", NOW, "7", "fraud")
    for extra in ({"y_pred": "ok"}, {"error": 1.0}, {"loss": 0.5}, {"correct": True}):
        doc = {"model": "m", "id": "7", "y_true": "fraud", **extra}
        decoded = decode(orjson.dumps(doc), kind=None, received_ms=0, limits=LIMITS)
        assert not any(isinstance(event, LabelEvent) for event in decoded.events)


def test_a_label_without_id_is_still_an_outcome_missing_y_pred() -> None:
    payload = orjson.dumps({"model": "m", "y_true": 1})
    (rejection,) = decode(payload, kind=None, received_ms=0, limits=LIMITS).rejections
    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.message.startswith("y_pred: ")


def test_a_label_truth_is_bounded_like_a_category() -> None:
    payload = orjson.dumps({"model": "m", "id": "1", "y_true": "x" * 201})
    (rejection,) = decode(payload, kind=None, received_ms=0, limits=LIMITS).rejections
    assert rejection.reason is Reason.VALUE_TOO_LONG


@pytest.mark.parametrize(
    ("predicted", "truth", "expected"),
    [
        ("a", "a", (0.0, True)),
        ("a", "b", (1.0, False)),
        (1.0, 1, (0.0, True)),
        (1.0, True, (0.0, True)),
        (0.0, 1, (1.0, False)),
        (0.75, 1, (0.25, None)),
        (2.0, 3.5, (1.5, None)),
        ("a", 1, None),
        (1.0, "a", None),
    ],
)
def test_a_pair_reduces_as_an_outcome_with_both_fields(
    predicted: Any, truth: Any, expected: Any
) -> None:
    assert reduce(predicted, truth) == expected


@pytest.mark.parametrize("label_first", [False, True])
def test_a_pair_joins_in_either_order_with_the_same_effect(label_first: bool) -> None:
    recorder = Recorder()
    e = engine(recorder)
    e.process(label("warm", 0, NOW), NOW)  # the model's first label starts its join
    first: Event = label("1", 1, NOW + 5000) if label_first else prediction("1", 0.0, NOW)
    second: Event = prediction("1", 0.0, NOW) if label_first else label("1", 1, NOW + 5000)
    e.process(first, NOW)
    assert error_values(e) == (0, 0)
    e.process(second, NOW)
    assert error_values(e) == (1, 1)
    assert recorder.events == [("joined", 5000)]
    error = next(s for s in e.streams() if s.id.kind is StreamKind.ERROR)
    assert error.to_state() == _outcome_stream_state(correct=False)


def _outcome_stream_state(*, correct: bool) -> Any:
    """The error stream's state after one equivalent full outcome."""
    e = engine()
    payload = orjson.dumps({"model": "m", "id": "1", "y_true": 1, "y_pred": 1 if correct else 0})
    (event,) = decode(payload, kind=None, received_ms=NOW, limits=LIMITS).events
    e.process(event, NOW)
    return next(s for s in e.streams() if s.id.kind is StreamKind.ERROR).to_state()


def test_a_label_for_an_unknown_model_waits_and_expires_as_a_dead_letter() -> None:
    recorder = Recorder()
    e = engine(recorder, ttl_seconds=86_400)
    assert e.process(label("1", "a", NOW, model="new"), NOW, source=42) == Processed()
    assert e.models == ["new"]
    assert e.process(label("2", "a", NOW + DAY, model="new"), NOW).dead_labels == ()
    (dead,) = e.process(label("3", "a", NOW + DAY + 1, model="new"), NOW).dead_labels
    assert (dead.model, dead.id, dead.y_true, dead.ts, dead.source) == ("new", "1", "a", NOW, 42)
    assert dead.reason is Reason.LABEL_EXPIRED
    assert dead.payload() == {"model": "new", "id": "1", "y_true": "a", "ts": NOW}
    assert recorder.events == [("expired", "label")]


def test_a_prediction_expires_in_event_time_and_then_finds_no_label() -> None:
    recorder = Recorder()
    e = engine(recorder, ttl_seconds=60)
    e.process(label("warm", 0, NOW), NOW)
    e.process(prediction("1", 1.0, NOW), NOW)
    e.process(prediction("2", 1.0, NOW + 60_001), NOW)  # the clock passes 1's time to live
    assert recorder.events == [("expired", "prediction"), ("expired", "label")]
    e.process(label("1", 1, NOW + 60_002), NOW)
    assert error_values(e) == (0, 0)
    e.process(label("2", 1, NOW + 60_003), NOW)
    assert error_values(e) == (1, 1)


def test_predictions_before_the_first_label_are_not_kept() -> None:
    """Models whose outcomes carry y_pred pay nothing for the join."""
    e = engine()
    e.process(prediction("1", 1.0), NOW)
    assert orjson.loads(e.snapshot())["models"]["m"]["labels"] is None
    e.process(label("1", 1), NOW)
    assert error_values(e) == (0, 0)


def test_pending_predictions_and_labels_are_bounded_oldest_dropped_first() -> None:
    recorder = Recorder()
    e = engine(recorder, max_pending_predictions=2, max_pending_labels=2)
    for i in range(3):
        e.process(label(f"l{i}", 1, NOW), NOW)
    for i in range(3):
        e.process(prediction(f"p{i}", 1.0), NOW)
    assert recorder.events == [("dropped", "label"), ("dropped", "prediction")]
    e.process(label("p0", 1), NOW)  # dropped: waits as a label instead
    e.process(label("p1", 1), NOW)
    e.process(prediction("l0", 1.0), NOW)  # its label was dropped
    assert error_values(e) == (1, 1)


def test_a_duplicate_label_is_dropped_and_a_duplicate_prediction_replaces() -> None:
    recorder = Recorder()
    e = engine(recorder)
    e.process(label("1", "a"), NOW)
    e.process(label("1", "b"), NOW)
    assert recorder.events == [("dropped", "label")]
    e.process(prediction("1", "a"), NOW)  # joins the first label: correct
    e.process(prediction("2", "a"), NOW)
    e.process(prediction("2", "b"), NOW)
    e.process(label("2", "b"), NOW)  # joins the latest prediction: correct
    correctness = next(s for s in e.streams() if s.id.kind is StreamKind.CORRECTNESS)
    assert correctness.n == 2
    assert [ev for ev in recorder.events if ev[0] == "joined"] == [("joined", 0)] * 2
    e.process(label("1", "a"), NOW)  # a label after the join waits for another prediction
    assert correctness.n == 2


def test_an_incomparable_label_is_refused_or_dead_lettered() -> None:
    e = engine()
    e.process(prediction("1", "cat"), NOW)
    e.process(label("warm", "x"), NOW)
    e.process(prediction("1", "cat"), NOW)
    result = e.process(label("1", 3), NOW)
    assert result.rejection is not None and result.rejection.reason is Reason.WRONG_TYPE
    e.process(label("2", 3), NOW, source=9)
    (dead,) = e.process(prediction("2", "cat"), NOW).dead_labels
    assert (dead.reason, dead.source) == (Reason.WRONG_TYPE, 9)


def test_pending_state_restores_exactly_and_is_validated() -> None:
    e = engine()
    e.process(label("a", 1, NOW), NOW, source=3)
    e.process(prediction("b", 0.5, NOW + 1), NOW)
    restored = engine()
    assert restored.restore(e.snapshot()).rejected == ()
    assert restored.snapshot() == e.snapshot()
    assert restored.process(prediction("a", 1.0), NOW).updates > 0
    watch = {"count": 1, "last": {"id": "a", "ts": NOW}, "longest_gap": 0, "silent": False}
    no_predictions = {"ids": [], "values": [], "ts": []}
    no_labels = {"ids": [], "y_true": [], "ts": [], "sources": []}

    def join(
        silence: Any = watch, predictions: Any = no_predictions, labels: Any = no_labels
    ) -> Any:
        return {"silence": silence, "clock": NOW, "predictions": predictions, "labels": labels}

    bads = (
        join(predictions={"ids": ["b"], "values": ["x"], "ts": [-1]}),
        join(labels={"ids": ["a"], "y_true": [[]], "ts": [NOW], "sources": [3]}),
        join(labels=5),
        join(labels={"ids": ["a"], "y_true": [1], "ts": [], "sources": [3]}),
        join(silence={**watch, "last": {"id": "a", "ts": -5}}),
        join(silence={**watch, "last": None, "silent": "no"}),
    )
    for bad in bads:
        body = orjson.loads(e.snapshot())
        body["models"]["m"]["labels"] = bad
        (rejected,) = engine().restore(orjson.dumps(body)).rejected
        assert "label" in rejected.reason or "pending" in rejected.reason, rejected.reason


def test_a_restore_keeps_at_most_the_configured_bound() -> None:
    e = engine()
    for i in range(5):
        e.process(label(str(i), 1), NOW)
    smaller = engine(max_pending_labels=2)
    smaller.restore(e.snapshot())
    join = LabelJoin("m", LabelSettings(), NoObserver())
    join.restore(orjson.loads(smaller.snapshot())["models"]["m"]["labels"], "m")
    assert join.count == 5
    assert list(join.labels) == ["3", "4"]


def test_a_bad_labels_state_raises_state_error() -> None:
    join = LabelJoin("m", LabelSettings(), NoObserver())
    with pytest.raises(StateError):
        join.restore(
            {
                "silence": {"count": 0, "last": None, "longest_gap": 0, "silent": False},
                "clock": 0,
                "predictions": {"ids": [], "values": [], "ts": []},
                "labels": {"ids": [""], "y_true": [1], "ts": [0], "sources": [0]},
            },
            "m",
        )


def test_joined_outcomes_detect_an_accuracy_drop() -> None:
    """Labels 300 events late; accuracy from 90% to 60% at event 3000."""
    rng = random.Random(3)
    e = engine()
    alerts: list[Alert] = []
    truths: list[int] = []
    for i in range(6000):
        truth = rng.random() < 0.5
        right = rng.random() < (0.9 if i < 3000 else 0.6)
        truths.append(int(truth))
        ts = NOW + i * 1000
        alerts += e.process(prediction(str(i), float(truth == right), ts), NOW).alerts
        if i >= 300:
            j = i - 300
            alerts += e.process(label(str(j), truths[j], ts), NOW).alerts
    kinds = {a.stream.kind for a in alerts if a.events_seen > 2700}
    assert StreamKind.CORRECTNESS in kinds


def test_models_matching_labels_models_keep_predictions_from_their_first_event() -> None:
    e = engine(models="fraud-*, other")
    for name in ("fraud-1", "ranker"):
        e.process(prediction("1", 1.0, model=name), NOW)
        e.process(label("1", 1, model=name), NOW)
    joined = {s.id.model for s in e.streams() if s.id.kind is StreamKind.ERROR}
    assert joined == {"fraud-1"}
    assert LabelSettings(models="*").joins_from_start("anything")
    assert not LabelSettings().joins_from_start("anything")


def test_the_tally_feeds_join_counts_and_the_delay_histogram() -> None:
    from prometheus_client import CollectorRegistry

    from streamproc.labels import LabelTally
    from streamproc.metrics import Metrics

    tally = LabelTally()
    e = Engine(SETTINGS, LIMITS, labels=LabelSettings(ttl_seconds=60), label_observer=tally)
    e.process(label("a", 1, NOW + 90_000), NOW)
    e.process(prediction("a", 1.0, NOW), NOW)  # joined, 90 s late
    e.process(label("b", 1, NOW + 200_000), NOW)  # a expires nothing; b waits
    e.process(label("b", 1, NOW + 200_000), NOW)  # duplicate: dropped
    e.process(label("c", 1, NOW + 300_000), NOW)  # b expires
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.labels_counted(tally.drain())
    metrics.labels_counted(tally.drain())  # drained: adds nothing

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("streamproc_label_joins_total", model="m") == 1
    assert value("streamproc_label_expired_total", model="m", side="label") == 1
    assert value("streamproc_label_dropped_total", model="m", side="label") == 1
    assert value("streamproc_label_delay_seconds_count") == 1
    assert value("streamproc_label_delay_seconds_sum") == 90.0
    assert value("streamproc_label_delay_seconds_bucket", le="60.0") == 0
    assert value("streamproc_label_delay_seconds_bucket", le="300.0") == 1


LABEL_VALUES = st.one_of(
    st.sampled_from(["a", "x" * 201, ""]), st.booleans(), st.integers(-3, 3), st.floats(-9, 9)
)
LABEL_LIKE = st.fixed_dictionaries(
    {"model": st.just("m"), "y_true": st.one_of(LABEL_VALUES, st.none())},
    optional={
        "id": st.one_of(st.sampled_from(["", "r1"]), st.integers(0, 9), st.none(), st.booleans()),
        "y_pred": st.one_of(st.none(), st.just("a")),
        "error": st.one_of(st.none(), st.just(0.5)),
        "loss": st.none(),
        "correct": st.one_of(st.none(), st.booleans()),
        "ts": st.one_of(st.none(), st.integers(0, 10)),
    },
)


@settings(max_examples=300, deadline=None)
@given(event=LABEL_LIKE)
def test_the_outcome_schema_accepts_exactly_the_labels_decode_accepts(
    event: dict[str, Any],
) -> None:
    decoded = decode(orjson.dumps(event), kind=EventKind.OUTCOME, received_ms=0, limits=LIMITS)
    assert SCHEMAS[EventKind.OUTCOME].is_valid(event) == bool(decoded.events), decoded


def test_labels_that_stop_while_predictions_go_on_raise_one_arrival_alert() -> None:
    e = engine(silence_factor=10, silence_min_seconds=60, models="*")
    minute = 60_000
    for i in range(50):  # a label every second, 2 s after its prediction
        e.process(prediction(str(i), 1.0, NOW + i * 1000), NOW)
        if i >= 2:
            e.process(label(str(i - 2), 1, NOW + i * 1000), NOW)
    alerts: list[Alert] = []
    for i in range(50, 50 + 2 * 60):  # predictions only, two more minutes
        alerts += e.process(prediction(str(i), 1.0, NOW + i * 1000), NOW + i).alerts
    (alert,) = alerts
    assert (alert.stream.kind, alert.stream.name) == (StreamKind.ARRIVAL, "labels")
    assert alert.event_id == "47" and alert.event_ts == NOW + 49_000
    assert alert.change.mean_after is not None and alert.change.mean_after > minute / 1000
    e.process(label("48", 1, NOW + 200_000), NOW)  # labels again: watched afresh
    quiet = e.process(prediction("x", 1.0, NOW + 200_000 + minute), NOW).alerts
    assert quiet == []
    later = e.process(prediction("y", 1.0, NOW + 200_000 + 2 * 30 * minute), NOW).alerts
    assert [a.stream.name for a in later] == ["labels"]
    assert later[0].alert_id != alert.alert_id
    schema = json.loads(
        resources.files("streamproc").joinpath("schemas/alert.schema.json").read_text()
    )
    jsonschema.validate(orjson.loads(alert.to_json()), schema)
