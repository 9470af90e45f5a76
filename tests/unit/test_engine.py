"""The drift engine: golden equality with raw River, exact snapshot/restore, limits, cooldown."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from river import drift
from river.drift import binary

from streamproc.alerts import Alert, Status
from streamproc.engine import Engine
from streamproc.errors import StateError
from streamproc.events import Event, FeatureEvent, OutcomeEvent, Reason
from streamproc.settings import (
    DetectorDefaults,
    DetectorSpec,
    EngineSettings,
    Limits,
    Override,
    StreamKind,
)

NOW = 1_700_000_000_000


def raw_settings(**kwargs: object) -> EngineSettings:
    """Standardization off, no cooldown: every detection of every detector is an alert."""
    return EngineSettings(standardize=False, cooldown_events=0, **kwargs)  # type: ignore[arg-type]


def shifted(n: int, at: int, shift: float, seed: int, scale: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [scale * (rng.gauss(0, 1) + (shift if i >= at else 0.0)) for i in range(n)]


def feature_events(values: list[float], model: str = "m", name: str = "x") -> list[Event]:
    return [
        FeatureEvent(model=model, features={name: v}, ts=NOW + i, id=str(i))
        for i, v in enumerate(values)
    ]


def run(engine: Engine, events: list[Event]) -> list[Alert]:
    alerts: list[Alert] = []
    for event in events:
        result = engine.process(event, NOW)
        assert result.rejection is None
        alerts += result.alerts
    return alerts


def river_detections(detector: object, values: list[float]) -> list[int]:
    found = []
    for i, v in enumerate(values, start=1):
        detector.update(v)  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            found.append(i)
    return found


def positions(alerts: list[Alert], detector: str, kind: StreamKind = StreamKind.VALUE) -> list[int]:
    return [
        a.events_seen
        for a in alerts
        if a.detector["type"] == detector and a.stream.kind == kind and a.status is Status.FIRING
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_raw_mode_equals_river_on_value_streams(seed: int) -> None:
    values = shifted(4000, at=2000, shift=1.0, seed=seed, scale=3.0)
    alerts = run(Engine(raw_settings(), Limits()), feature_events(values))
    assert positions(alerts, "adwin") == river_detections(drift.ADWIN(), values)
    assert positions(alerts, "page_hinkley") == river_detections(drift.PageHinkley(), values)
    assert positions(alerts, "adwin"), "the shift must be detected for the test to mean anything"


def test_raw_mode_equals_river_on_binary_streams() -> None:
    rng = random.Random(5)
    errors = [1.0 if rng.random() < (0.05 if i < 3000 else 0.3) else 0.0 for i in range(6000)]
    detectors = DetectorDefaults(
        error=(DetectorSpec(type="adwin"),),
        correctness=(DetectorSpec(type="ddm"), DetectorSpec(type="hddm_a")),
    )
    engine = Engine(raw_settings(detectors=detectors), Limits())
    events: list[Event] = [
        OutcomeEvent(model="m", ts=NOW, error=e, correct=e == 0.0, id=str(i))
        for i, e in enumerate(errors)
    ]
    alerts = run(engine, events)
    assert positions(alerts, "adwin", StreamKind.ERROR) == river_detections(drift.ADWIN(), errors)
    # DDM and HDDM_A alarm on more 1s: on the correctness stream (1 = right) they read the
    # error indicator, so they fire when the error rate rises, as River would on errors.
    ddm = positions(alerts, "ddm", StreamKind.CORRECTNESS)
    assert ddm == river_detections(binary.DDM(), errors)
    assert ddm and ddm[0] > 3000, "the rise is detected, after it happened"
    assert positions(alerts, "hddm_a", StreamKind.CORRECTNESS) == river_detections(
        binary.HDDMA(), errors
    )


def mixed_events(n: int, seed: int) -> Iterator[Event]:
    """Two models, numeric/categorical/missing features, predictions and outcomes, with drift."""
    rng = random.Random(seed)
    for i in range(n):
        model = f"m{i % 2}"
        late = i > n // 2
        features = {
            "a": rng.gauss(5.0 + (2.0 if late else 0.0), 1.0),
            "b": None if rng.random() < (0.3 if late else 0.02) else rng.random() * 1e6,
            "c": rng.choice(["x", "y", "z"]),
        }
        if rng.random() < 0.1:
            del features["a"]
        yield FeatureEvent(
            model=model, features=features, ts=NOW + i, id=f"e{i}", prediction=rng.random()
        )
        if i % 3 == 0:
            wrong = rng.random() < (0.4 if late else 0.05)
            yield OutcomeEvent(model=model, ts=NOW + i, error=float(wrong), correct=not wrong)


def settings_with_everything() -> EngineSettings:
    kswin = DetectorSpec(type="kswin", params={"seed": 3})
    return EngineSettings(
        warmup=50,
        cooldown_events=200,
        detectors=DetectorDefaults(
            correctness=(DetectorSpec(type="ddm"), DetectorSpec(type="eddm")),
        ),
        # KSWIN runs a KS test per update: one stream of it is enough to cover its state.
        overrides=(
            Override(
                model="m0",
                stream="a",
                detectors=(DetectorSpec(type="adwin"), DetectorSpec(type="page_hinkley"), kswin),
            ),
        ),
    )


@pytest.mark.parametrize("split_seed", [11, 12, 13, 14])
def test_snapshot_and_restore_continue_exactly(split_seed: int) -> None:
    events = list(mixed_events(1600, seed=split_seed))
    split = random.Random(split_seed).randrange(1, len(events) - 1)
    settings = settings_with_everything()

    reference = run(Engine(settings, Limits()), events)

    first = Engine(settings, Limits())
    before = run(first, events[:split])
    restored = Engine(settings, Limits())
    assert restored.restore(first.snapshot()).models == ("m0", "m1")
    after = run(restored, events[split:])

    assert before + after == reference
    assert len(reference) >= 4, "drift must be detected for the comparison to mean anything"
    assert restored.snapshot() == _finished_snapshot(settings, events)


def _finished_snapshot(settings: EngineSettings, events: list[Event]) -> bytes:
    engine = Engine(settings, Limits())
    run(engine, events)
    return engine.snapshot()


def test_snapshot_of_some_models_restores_only_them() -> None:
    engine = Engine(EngineSettings(), Limits())
    run(engine, list(mixed_events(200, seed=1)))
    other = Engine(EngineSettings(), Limits())
    assert other.restore(engine.snapshot(["m1"])).models == ("m1",)
    assert other.models == ["m1"]
    other.forget(["m1"])
    assert other.models == []


@pytest.mark.parametrize("data", [b"", b"{}", b"[1,2]", b'{"version": 1, "models": [5]}'])
def test_unreadable_snapshots_raise_state_error(data: bytes) -> None:
    """A bad model alone does not raise: see tests/unit/test_snapshot_validation.py."""
    with pytest.raises(StateError):
        Engine(EngineSettings(), Limits()).restore(data)


def test_alert_ids_are_deterministic_and_unique() -> None:
    events = list(mixed_events(4000, seed=3))
    first = run(Engine(EngineSettings(), Limits()), events)
    second = run(Engine(EngineSettings(), Limits()), events)
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    assert len({a.alert_id for a in first}) == len(first) > 0


def test_too_many_streams_rejects_the_whole_event() -> None:
    engine = Engine(EngineSettings(), Limits(max_streams_per_model=3))
    ok = engine.process(FeatureEvent(model="m", features={"a": 1.0, "b": 2.0}, ts=NOW), NOW)
    assert ok.rejection is None
    bad = engine.process(
        FeatureEvent(model="m", features={"a": 1.0, "c": 1.0, "d": 1.0}, ts=NOW), NOW
    )
    assert bad.rejection is not None
    assert bad.rejection.reason is Reason.TOO_MANY_STREAMS
    assert "max_streams_per_model=3" in bad.rejection.message
    assert sorted(s.id.name for s in engine.streams()) == ["a", "a", "b", "b"]
    other_model = engine.process(
        FeatureEvent(model="n", features={"a": 1.0, "c": 1.0, "d": 1.0}, ts=NOW), NOW
    )
    assert other_model.rejection is None


def test_absent_known_features_count_as_missing() -> None:
    detectors = DetectorDefaults(missing_rate=(DetectorSpec(type="adwin"),))
    engine = Engine(raw_settings(detectors=detectors), Limits())
    events: list[Event] = [
        FeatureEvent(model="m", features={"a": 1.0, "b": 2.0}, ts=NOW) for _ in range(500)
    ]
    events += [FeatureEvent(model="m", features={"a": 1.0}, ts=NOW) for _ in range(500)]
    alerts = run(engine, events)
    missing = [a for a in alerts if a.stream.kind is StreamKind.MISSING_RATE]
    assert {a.stream.name for a in missing} == {"b"}
    assert missing[0].change.direction == "up"
    assert missing[0].severity.value == "critical"


def test_categorical_values_feed_a_category_stream() -> None:
    engine = Engine(EngineSettings(), Limits())
    for i in range(100):
        engine.process(FeatureEvent(model="m", features={"c": f"v{i}"}, ts=NOW), NOW)
    kinds = {s.id.kind for s in engine.streams()}
    assert kinds == {StreamKind.MISSING_RATE, StreamKind.CATEGORY}


def test_cooldown_gives_one_alert_per_change() -> None:
    values = shifted(6000, at=3000, shift=2.0, seed=4)
    noisy = run(Engine(raw_settings(), Limits()), feature_events(values))
    quiet = run(Engine(EngineSettings(cooldown_events=2000), Limits()), feature_events(values))
    assert len([a for a in noisy if a.events_seen > 3000]) > 1
    assert [a.stream.kind for a in quiet] == [StreamKind.VALUE]
    assert 3000 < quiet[0].events_seen < 3300
    assert quiet[0].change.direction == "up"


@pytest.mark.parametrize("scale", [1e-6, 1.0, 1e9])
def test_standardized_detection_does_not_depend_on_scale(scale: float) -> None:
    values = shifted(6000, at=3000, shift=1.0, seed=8, scale=scale)
    alerts = run(Engine(EngineSettings(), Limits()), feature_events(values))
    reference = run(
        Engine(EngineSettings(), Limits()), feature_events(shifted(6000, 3000, 1.0, seed=8))
    )
    assert [(a.alert_id, a.events_seen) for a in alerts] == [
        (a.alert_id, a.events_seen) for a in reference
    ]
    assert reference, "the shift must be detected"


def test_overrides_pick_detectors_by_model_and_stream_glob() -> None:
    settings = EngineSettings(
        overrides=(
            Override(model="fraud-*", stream="amount", detectors=(DetectorSpec(type="kswin"),)),
            Override(kind=StreamKind.MISSING_RATE, cooldown_events=5),
        )
    )
    assert [d.type for d in settings.policy("fraud-v1", StreamKind.VALUE, "amount").detectors] == [
        "kswin"
    ]
    assert [d.type for d in settings.policy("churn", StreamKind.VALUE, "amount").detectors] == [
        "adwin",
        "page_hinkley",
    ]
    assert settings.policy("fraud-v1", StreamKind.MISSING_RATE, "amount").cooldown_events == 5
    assert settings.policy("fraud-v1", StreamKind.VALUE, "amount").cooldown_events == 1000
