"""Arrival monitoring through the engine, on a simulated clock: silence and recovered, the
restart rule, rate, freshness, future timestamps, snapshots, replay on event time."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

import jsonschema
import orjson
import pytest

from streamproc.alerts import Alert, Severity, Status
from streamproc.demo import ARRIVAL_MODELS, HALVED_AT, SILENT, scenario
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import EventKind, FeatureEvent, OutcomeEvent, Reason
from streamproc.pipeline import Pipeline, Record
from streamproc.replay import replay
from streamproc.settings import (
    ArrivalOverride,
    ArrivalSettings,
    EngineSettings,
    Limits,
    RateSettings,
)

T0 = 1_764_000_000_000
S = 1000
LAG_MS = 50
ARRIVAL_KINDS = {StreamKind.ARRIVAL, StreamKind.RATE, StreamKind.FRESHNESS}

Sends = Callable[[int], bool]
"""Whether a model sends an event in second ``t`` of the simulation."""


def engine(**arrival: object) -> Engine:
    return Engine(EngineSettings(), Limits(), arrival=ArrivalSettings(**arrival))  # type: ignore[arg-type]


def event(model: str, ts: int, i: int, *, ts_given: bool = True) -> FeatureEvent:
    return FeatureEvent(model, {"x": float(i % 5)}, ts, f"{model}-{i}", None, ts_given)


def simulate(e: Engine, models: dict[str, Sends], seconds: Iterable[int]) -> list[Alert]:
    """Each simulated second: every model whose schedule says so sends one event (processed
    ``LAG_MS`` after its event time), then the worker's timer ticks."""
    alerts: list[Alert] = []
    for t in seconds:
        now = T0 + t * S
        for name, sends in models.items():
            if sends(t):
                result = e.process(event(name, now - LAG_MS, t), now)
                assert result.rejection is None
                alerts += result.alerts
        alerts += e.tick(now)
    return [a for a in alerts if a.stream.kind in ARRIVAL_KINDS and a.status is Status.FIRING]


def always(t: int) -> bool:
    return True


def test_silence_fires_once_within_its_window_and_recovered_once() -> None:
    e = engine()
    a: Sends = lambda t: t < 600 or t >= 900  # noqa: E731
    alerts = simulate(e, {"a": a, "b": always}, range(1200))
    assert [(x.stream.model, x.change.direction, x.severity) for x in alerts] == [
        ("a", "down", Severity.CRITICAL),
        ("a", "up", Severity.INFO),
    ]
    silence, recovered = alerts
    last = T0 + 599 * S
    window = 60 * S  # one event a second: the floor
    assert last + window < silence.detected_at <= last + window + S
    assert silence.event_id == "a-599"
    assert silence.change.window == 60
    assert silence.change.mean_after == pytest.approx(61.0)
    assert recovered.detected_at == T0 + 900 * S
    assert recovered.event_id == "a-900"
    assert recovered.change.mean_after == pytest.approx(301.0)
    assert silence.stream == recovered.stream
    assert silence.alert_id != recovered.alert_id


def test_after_two_minutes_down_only_the_model_that_stopped_alerts() -> None:
    """The restart rule: silence counts from max(last event, when the new process began
    watching). Models still sending produce events within their window after the restart
    (here, the backlog of the two minutes at once, then live ones); the one that stopped
    during the outage alerts once its window has passed since the restart."""
    before = engine()
    stops: Sends = lambda t: t < 590  # noqa: E731
    models = {"a": always, "b": always, "c": always, "d": stops}
    assert simulate(before, models, range(600)) == []
    checkpoint = before.snapshot()

    after = engine()
    after.restore(checkpoint)
    restart = T0 + 720 * S
    assert after.tick(restart) == []
    for t, name in itertools.product(range(600, 720), "abc"):  # the backlog, processed at once
        sent = T0 + t * S  # when the producer sent it: its Kafka record timestamp
        assert after.process(event(name, sent, t), restart, sent).alerts == []
    alerts = simulate(after, models, range(721, 1000))

    assert [(x.stream.model, x.change.direction) for x in alerts] == [("d", "down")]
    assert restart + 60 * S < alerts[0].detected_at <= restart + 61 * S
    assert alerts[0].event_id == "d-589"


def test_a_stalled_process_does_not_report_every_model_silent() -> None:
    """Ticks stopping for two minutes (a blocked event loop) is this process's silence."""
    e = engine()
    assert simulate(e, {"a": always, "b": always}, range(300)) == []
    resumed = T0 + 420 * S
    assert e.tick(resumed) == []
    for t, name in itertools.product(range(300, 420), "ab"):
        e.process(event(name, T0 + t * S, t), resumed)
    assert simulate(e, {"a": always, "b": always}, range(421, 600)) == []


def halving_rate() -> list[Alert]:
    """40 events a second for two minutes, then 20, in one-second buckets."""
    e = engine(rate=RateSettings(bucket_seconds=1))
    alerts = []
    for i in range(180 * 40):
        ms = i * 25 if i < 120 * 40 else 120 * S + (i - 120 * 40) * 50
        result = e.process(event("m", T0 + ms, i), T0 + ms + LAG_MS)
        alerts += [
            a for a in result.alerts if a.stream.kind in ARRIVAL_KINDS and a.status is Status.FIRING
        ]
    return alerts


def late_events() -> list[Alert]:
    """A lag of one second for 300 events, then of ten minutes."""
    e = engine()
    alerts = []
    for i in range(600):
        now = T0 + i * S
        lag = 1 * S if i < 300 else 600 * S
        alerts += e.process(event("m", now - lag, i), now).alerts
    return [a for a in alerts if a.stream.kind in ARRIVAL_KINDS and a.status is Status.FIRING]


def test_a_halving_rate_gives_one_rate_alert_with_a_stable_id() -> None:
    alerts = halving_rate()
    assert [(a.stream.kind, a.change.direction) for a in alerts] == [(StreamKind.RATE, "down")]
    alert = alerts[0]
    assert 0 < alert.event_ts - (T0 + 120 * S) <= 6 * S, "within a few one-second buckets"
    assert alert.change.mean_before == pytest.approx(40, rel=0.1)
    assert alert.change.mean_after == pytest.approx(20, rel=0.1)
    assert alert.severity is Severity.CRITICAL
    assert [a.alert_id for a in halving_rate()] == [alert.alert_id]


def test_freshness_alerts_once_when_events_arrive_ten_minutes_late() -> None:
    fresh = late_events()
    assert [a.stream.kind for a in fresh] == [StreamKind.FRESHNESS]
    assert 300 <= fresh[0].events_seen <= 315
    assert fresh[0].change.mean_before == pytest.approx(1.0, abs=0.3)
    assert fresh[0].change.mean_after >= 60  # type: ignore[operator]


def test_freshness_measures_when_events_reached_kafka_not_a_restarts_backlog() -> None:
    """A restarted worker processes ten minutes of backlog late; the events reached Kafka
    on time (their record timestamps), so nothing is late."""
    e = engine()
    for i in range(300):
        e.process(event("m", T0 + i * S - S, i), T0 + i * S, T0 + i * S)
    restored = engine()
    restored.restore(e.snapshot())
    restart = T0 + 900 * S
    alerts = []
    for i in range(300, 900):  # ten minutes of backlog, processed at the restart
        arrived = T0 + i * S
        alerts += restored.process(event("m", arrived - S, i), restart, arrived).alerts
    for i in range(900, 1000):
        arrived = T0 + i * S
        alerts += restored.process(event("m", arrived - S, i), arrived, arrived).alerts
    assert [a for a in alerts if a.stream.kind is StreamKind.FRESHNESS] == []


def test_events_from_the_future_are_rejected() -> None:
    e = engine(max_future_seconds=300)
    now = T0
    far = e.process(event("m", now + 301 * S, 0), now)
    assert far.rejection is not None
    assert far.rejection.reason is Reason.FUTURE_TIMESTAMP
    assert far.rejection.model == "m"
    assert "arrival.max_future_seconds=300" in far.rejection.message
    assert e.models == [], "a rejected event leaves no state"
    assert e.process(event("m", now + 299 * S, 1), now).rejection is None
    assert e.process(event("m", now + 3600 * S, 2, ts_given=False), now).rejection is None
    outcome = OutcomeEvent("m", now + 3600 * S, 1.0)
    assert e.process(outcome, now).rejection is not None
    assert engine(enabled=False).process(event("m", now + 3600 * S, 0), now).rejection is None
    replaying = Engine(EngineSettings(), Limits(), arrival=ArrivalSettings(), arrival_clock="event")
    assert replaying.process(event("m", now + 3600 * S, 0), now).rejection is None


def test_snapshots_without_arrival_state_still_restore() -> None:
    old = Engine(EngineSettings(), Limits())
    for i in range(50):
        old.process(event("m", T0 + i * S, i), T0 + i * S)
    new = engine()
    assert new.restore(old.snapshot()).models == ("m",)
    assert simulate(new, {"m": always}, range(50, 100)) == []
    assert Engine(EngineSettings(), Limits()).restore(new.snapshot()).models == ("m",)


def test_snapshot_and_restore_continue_exactly_with_arrival_state() -> None:
    """On event time (as in replay), where no restart rule intervenes: the state codec is exact."""

    def fresh() -> Engine:
        arrival = ArrivalSettings(rate=RateSettings(bucket_seconds=5))
        return Engine(EngineSettings(), Limits(), arrival=arrival, arrival_clock="event")

    models: dict[str, Sends] = {"a": lambda t: t % 97 < 80, "b": always, "c": lambda t: t < 400}
    reference = fresh()
    expected = simulate(reference, models, range(1000))
    assert {a.stream.kind for a in expected} >= {StreamKind.ARRIVAL}

    first = fresh()
    head = simulate(first, models, range(500))
    second = fresh()
    second.restore(first.snapshot())
    tail = simulate(second, models, range(500, 1000))
    assert [a.alert_id for a in head + tail] == [a.alert_id for a in expected]
    assert second.snapshot() == reference.snapshot()


def test_overrides_fix_the_window_or_turn_monitors_off_per_model_glob() -> None:
    settings = ArrivalSettings(
        overrides=(
            ArrivalOverride(model="batch-*", silence_seconds=600, rate=False),
            ArrivalOverride(model="batch-noisy", silence=False),
        )
    )
    e = Engine(EngineSettings(), Limits(), arrival=settings)
    stops: Sends = lambda t: t < 100  # noqa: E731
    alerts = simulate(e, {"batch-1": stops, "batch-noisy": stops, "online": stops}, range(800))
    found = {(a.stream.model, round((a.detected_at - T0) / S)) for a in alerts}
    assert found == {("online", 160), ("batch-1", 700)}
    assert settings.policy("batch-1").rate is False
    assert settings.policy("online").silence.seconds is None
    assert settings.policy("batch-1").silence.fixed_ms == 600_000


def test_arrival_alerts_follow_the_alert_schema() -> None:
    schema = json.loads(
        resources.files("streamproc").joinpath("schemas/alert.schema.json").read_text()
    )
    alerts = simulate(engine(), {"a": lambda t: t < 100 or t > 300}, range(400))
    alerts += halving_rate() + late_events()
    assert len({(a.stream.kind, a.change.direction) for a in alerts}) == 4
    for alert in alerts:
        jsonschema.validate(orjson.loads(alert.to_json()), schema)


def test_the_pipeline_marks_models_that_fell_silent_for_the_next_checkpoint() -> None:
    pipeline = Pipeline(engine(overrides=(ArrivalOverride(silence_seconds=2),)), Limits())
    body = orjson.dumps({"model": "m", "features": {"x": 1}, "ts": T0})
    pipeline.handle([Record("features", 3, 0, T0, b"m", body, EventKind.FEATURE)], T0)
    pipeline.ledger.dirty.clear()
    assert pipeline.tick(T0 + 1000).alerts == []
    assert pipeline.tick(T0 + 2000).alerts == []
    out = pipeline.tick(T0 + 3000)
    assert [a.stream.kind for a in out.alerts] == [StreamKind.ARRIVAL]
    assert pipeline.ledger.dirty == {3: {"m"}}


def write_events(path: Path, silent: range) -> None:
    with path.open("wb") as out:
        for t in range(1200):
            for model in ("a", "b"):
                if model == "a" and t in silent:
                    continue
                body = {"model": model, "ts": T0 + t * S, "features": {"x": t % 3}}
                out.write(orjson.dumps(body) + b"\n")


def test_replay_runs_arrival_monitoring_on_event_time(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, silent=range(500, 800))

    def run() -> list[Alert]:
        e = Engine(EngineSettings(), Limits(), arrival=ArrivalSettings(), arrival_clock="event")
        alerts: list[Alert] = []
        replay(
            path.read_bytes().splitlines(),
            e,
            Limits(),
            clock=lambda: T0 + 10**9,
            on_alert=alerts.append,
            on_rejection=lambda line, rejection: None,
            tick_ms=1000,
        )
        return [a for a in alerts if a.stream.kind in ARRIVAL_KINDS and a.status is Status.FIRING]

    alerts = run()
    assert [(a.change.direction, a.detected_at) for a in alerts] == [
        ("down", T0 + 560 * S),
        ("up", T0 + 800 * S),
    ]
    assert [a.alert_id for a in run()] == [a.alert_id for a in alerts]


def test_the_demo_has_a_silent_and_a_slowing_model() -> None:
    events = list(itertools.takewhile(lambda e: e.at_seconds < 120, scenario(60)))
    times = {m: [e.at_seconds for e in events if e.model == m] for m in ARRIVAL_MODELS}
    assert not [t for t in times["search-v1"] if SILENT[0] <= t < SILENT[1]]
    assert [t for t in times["search-v1"] if t >= SILENT[1]]
    before = sum(1 for t in times["reco-v2"] if HALVED_AT - 30 <= t < HALVED_AT)
    after = sum(1 for t in times["reco-v2"] if HALVED_AT <= t < HALVED_AT + 30)
    assert after == pytest.approx(before / 2, abs=1)
