"""Labels through the engine, one event at a time: what each event returns and which
streams a joined pair feeds (docs/labels.md).

The label join itself is tested in test_labels.py; these tests pin the engine's side:
a joined pair updates the error and correctness streams exactly as an outcome event
with ``y_true`` and ``y_pred`` would, dead labels come back with the event that expired
them, and a label that cannot be compared is refused.
"""

from __future__ import annotations

import orjson

from streamproc.domain import StreamKind
from streamproc.engine import Engine, Processed
from streamproc.events import FeatureEvent, LabelEvent, OutcomeEvent, Reason
from streamproc.settings import EngineSettings, Limits
from streamproc.settings.labels import LabelSettings

T0 = 1_764_000_000_000
S = 1000


def engine(models: str = "m*", **labels: float) -> Engine:
    settings = LabelSettings(models=models, ttl_seconds=10, **labels)  # type: ignore[arg-type]
    return Engine(EngineSettings(), Limits(), labels=settings)


def predict(e: Engine, id_: str | None, prediction: object, ts: int = T0) -> Processed:
    event = FeatureEvent("m", {"x": 1.0}, ts, id_, prediction=prediction)  # type: ignore[arg-type]
    return e.process(event, ts)


def label(e: Engine, id_: str, y_true: object, ts: int = T0, source: int = 7) -> Processed:
    return e.process(LabelEvent("m", ts, id_, y_true), ts, source=source)  # type: ignore[arg-type]


def outcome_streams(e: Engine) -> dict[StreamKind, tuple[int, float | None]]:
    """(values seen, recent mean) of the model's error and correctness streams."""
    return {
        s.id.kind: (s.n, s.estimate()[0])
        for s in e.streams(["m"])
        if s.id.kind in (StreamKind.ERROR, StreamKind.CORRECTNESS) and s.id.name != "x"
    }


def outcome_updates(e: Engine) -> int:
    kinds = (StreamKind.ERROR, StreamKind.CORRECTNESS)
    return sum(s.updates_per_value for s in e.streams(["m"]) if s.id.kind in kinds)


def test_a_label_after_its_prediction_feeds_error_and_correctness_once() -> None:
    e = engine()
    first = predict(e, "r1", "yes")
    assert first.rejection is None and first.dead_labels == ()
    assert outcome_streams(e) == {}
    joined = label(e, "r1", "no", T0 + S)
    assert joined.rejection is None and joined.alerts == []
    assert outcome_streams(e) == {StreamKind.ERROR: (1, 1.0), StreamKind.CORRECTNESS: (1, 0.0)}
    [error] = [s for s in e.streams(["m"]) if s.id.kind is StreamKind.ERROR]
    assert (error.id.model, error.id.name) == ("m", "error")
    assert joined.updates == outcome_updates(e)
    assert label(e, "r1", "no", T0 + 2 * S) == Processed(), "the pair is joined only once"
    assert outcome_streams(e)[StreamKind.ERROR] == (1, 1.0)


def test_a_label_before_its_prediction_is_joined_when_the_prediction_comes() -> None:
    e = engine(models="")
    assert label(e, "r1", "yes") == Processed()
    assert outcome_streams(e) == {}
    joined = predict(e, "r1", "yes", T0 + S)
    assert joined.rejection is None and joined.dead_labels == () and joined.alerts == []
    assert outcome_streams(e) == {StreamKind.ERROR: (1, 0.0), StreamKind.CORRECTNESS: (1, 1.0)}
    unjoined = predict(engine(), "r1", "yes", T0 + S).updates
    assert joined.updates == unjoined + outcome_updates(e)


def test_a_model_outside_labels_models_keeps_no_prediction_before_its_first_label() -> None:
    e = engine(models="other*")
    predict(e, "r1", "yes")
    label(e, "r1", "yes", T0 + S)
    assert outcome_streams(e) == {}


def test_a_numeric_prediction_feeds_the_absolute_error_and_no_correctness() -> None:
    e = engine()
    predict(e, "r1", 2.5)
    label(e, "r1", 4.0)
    assert outcome_streams(e) == {StreamKind.ERROR: (1, 1.5)}


def test_events_without_an_id_or_a_prediction_wait_for_nothing() -> None:
    e = engine()
    for id_, prediction in ((None, "yes"), ("r1", None)):
        result = predict(e, id_, prediction)
        assert result.rejection is None and result.dead_labels == ()
    assert label(e, "r1", "yes") == Processed(), "r1 had no prediction to wait"
    assert outcome_streams(e) == {}


def test_an_expired_label_comes_back_with_the_feature_event_that_expired_it() -> None:
    e = engine()
    label(e, "lost", "yes", T0, source=41)
    later = predict(e, "r2", "no", T0 + 10 * S + 1)
    [dead] = later.dead_labels
    assert (dead.id, dead.y_true, dead.ts, dead.source, dead.model) == ("lost", "yes", T0, 41, "m")
    assert dead.reason is Reason.LABEL_EXPIRED
    assert later.rejection is None
    assert later.updates > 0 and later.alerts == []


def test_an_expired_label_comes_back_with_the_label_that_expired_it() -> None:
    e = engine()
    label(e, "lost", "yes", T0, source=3)
    waiting = label(e, "other", "no", T0 + 10 * S + 1)
    assert [d.id for d in waiting.dead_labels] == ["lost"]
    assert waiting.rejection is None and waiting.alerts == []
    predict(e, "p", "yes", T0 + 11 * S)
    joined = label(e, "p", "yes", T0 + 21 * S)
    assert [d.id for d in joined.dead_labels] == ["other"]
    assert outcome_streams(e) == {StreamKind.ERROR: (1, 0.0), StreamKind.CORRECTNESS: (1, 1.0)}


def test_a_label_that_cannot_be_compared_with_its_prediction_is_refused() -> None:
    e = engine()
    predict(e, "r1", 2.5)
    refused = label(e, "r1", "yes")
    assert refused.rejection is not None
    assert refused.rejection.reason is Reason.WRONG_TYPE
    assert refused.rejection.model == "m"
    assert outcome_streams(e) == {}


def test_a_refused_label_still_returns_the_labels_it_expired() -> None:
    e = engine()
    label(e, "lost", "yes", T0)
    predict(e, "r1", 2.5, T0 + 5 * S)
    refused = label(e, "r1", "yes", T0 + 10 * S + 1)
    assert refused.rejection is not None and refused.rejection.reason is Reason.WRONG_TYPE
    assert [d.id for d in refused.dead_labels] == ["lost"]


def test_a_joining_prediction_still_returns_the_labels_it_expired() -> None:
    e = engine()
    label(e, "lost", "yes", T0)
    label(e, "r1", "yes", T0 + 5 * S)
    joined = predict(e, "r1", "no", T0 + 10 * S + 1)
    assert [d.id for d in joined.dead_labels] == ["lost"]
    assert outcome_streams(e)[StreamKind.ERROR] == (1, 1.0)


class Spike:
    """Fires on every value above 0.5: an alert on the first misclassification."""

    drift_detected = False

    def update(self, x: float) -> None:
        self.drift_detected = x > 0.5


def alerting_engine() -> Engine:
    settings = EngineSettings(standardize=False, warmup=2, cooldown_events=0)
    labels = LabelSettings(models="m*", ttl_seconds=10)
    return Engine(settings, Limits(), lambda spec, std: Spike(), labels=labels)


def test_an_alert_of_a_joined_pair_carries_the_labels_time_and_the_pairs_id() -> None:
    for label_last in (True, False):
        e = alerting_engine()
        if label_last:
            predict(e, "r1", "yes", T0)
            now = T0 + 3 * S
            result = e.process(LabelEvent("m", T0 + 2 * S, "r1", "no"), now)
        else:
            label(e, "r1", "no", T0 + 2 * S)
            now = T0 + 3 * S
            event = FeatureEvent("m", {"x": 0.0}, T0 + S, "r1", prediction="yes")
            result = e.process(event, now)
        [alert] = [a for a in result.alerts if a.stream.kind is StreamKind.ERROR]
        assert (alert.model, alert.stream.name) == ("m", "error")
        assert (alert.event_id, alert.event_ts, alert.detected_at) == ("r1", T0 + 2 * S, now)


def test_an_outcomes_correctness_alert_carries_its_event_and_counts_its_updates() -> None:
    settings = EngineSettings(
        standardize=False,
        warmup=2,
        cooldown_events=0,
        detectors={"correctness": [{"type": "adwin"}]},  # type: ignore[arg-type]
    )
    e = Engine(settings, Limits(), lambda spec, std: Spike())
    result = e.process(OutcomeEvent("m", T0 + S, 0.0, "error", True, "o1"), T0 + 2 * S)
    [alert] = result.alerts
    assert alert.stream.kind is StreamKind.CORRECTNESS
    assert (alert.event_id, alert.event_ts, alert.detected_at) == ("o1", T0 + S, T0 + 2 * S)
    assert result.updates == 2


def test_a_prediction_that_cannot_be_compared_with_its_label_returns_the_label() -> None:
    e = engine()
    label(e, "r1", "yes", source=12)
    result = predict(e, "r1", 2.5, T0 + S)
    [dead] = result.dead_labels
    assert (dead.id, dead.source, dead.reason) == ("r1", 12, Reason.WRONG_TYPE)
    assert result.rejection is None
    assert outcome_streams(e) == {}


def test_labels_that_stop_while_predictions_go_on_raise_one_label_silence_alert() -> None:
    e = engine(silence_factor=2, silence_min_seconds=20)
    for i in range(3):
        predict(e, f"r{i}", "yes", T0 + i * S)
        label(e, f"r{i}", "yes", T0 + i * S)
    quiet = [predict(e, f"q{i}", "yes", T0 + (3 + i) * 5 * S) for i in range(8)]
    alerts = [(i, a) for i, r in enumerate(quiet) for a in r.alerts]
    assert len(alerts) == 1
    at, alert = alerts[0]
    assert T0 + (3 + at) * 5 * S - (T0 + 2 * S) > 20 * S
    assert T0 + (2 + at) * 5 * S - (T0 + 2 * S) <= 20 * S
    assert alert.model == "m"
    assert alert.detected_at == T0 + (3 + at) * 5 * S
    assert quiet[at].rejection is None and quiet[at].updates > 0


def test_a_restored_join_keeps_its_waiting_labels_and_predictions() -> None:
    e = engine()
    label(e, "early", "yes", T0, source=5)
    predict(e, "later", "no", T0 + S)
    restored = engine()
    assert restored.restore(e.snapshot()).models == ("m",)
    assert restored.snapshot() == e.snapshot()
    predict(restored, "early", "no", T0 + 2 * S)
    assert outcome_streams(restored) == {
        StreamKind.ERROR: (1, 1.0),
        StreamKind.CORRECTNESS: (1, 0.0),
    }
    label(restored, "later", "no", T0 + 3 * S)
    assert outcome_streams(restored)[StreamKind.ERROR] == (2, 1.0 + 2 / 51 * (0.0 - 1.0))


def test_a_restored_joins_expired_labels_name_their_model() -> None:
    e = engine()
    label(e, "lost", "yes", T0)
    restored = engine()
    restored.restore(e.snapshot())
    [dead] = predict(restored, "r2", "no", T0 + 10 * S + 1).dead_labels
    assert (dead.model, dead.id) == ("m", "lost")


def test_a_malformed_join_state_is_refused_naming_the_model() -> None:
    e = engine()
    label(e, "lost", "yes", T0)
    body = orjson.loads(e.snapshot())
    body["models"]["m"]["labels"] = 7
    [rejected] = engine().restore(orjson.dumps(body)).rejected
    assert rejected.reason.startswith("model 'm'")


def test_a_restored_model_that_joins_from_the_start_keeps_predictions_before_any_label() -> None:
    source = Engine(EngineSettings(), Limits())
    source.process(FeatureEvent("m", {"x": 1.0}, T0), T0)
    for models, joins in (("m*", True), ("other*", False), ("", False)):
        restored = engine(models)
        assert restored.restore(source.snapshot()).rejected == ()
        predict(restored, "r1", "yes", T0 + S)
        label(restored, "r1", "no", T0 + 2 * S)
        expected = {StreamKind.ERROR: (1, 1.0), StreamKind.CORRECTNESS: (1, 0.0)}
        assert outcome_streams(restored) == (expected if joins else {}), models
