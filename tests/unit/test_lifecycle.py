"""The alert lifecycle and the model rollup (issue #16, items 2 and 3): a resolution comes
exactly after the stable span, with the firing alert's id; several streams of one model
alerting together give one model alert that lists them and resolves after them."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import orjson

from streamproc.alerts import Alert, Severity, Status, from_json
from streamproc.detectors import DetectorSpec
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import FeatureEvent
from streamproc.settings import ArrivalSettings, EngineSettings, Limits
from streamproc.settings.alerts import LifecycleSettings, RollupSettings
from tests.unit.test_arrival import LAG_MS, T0, S
from tests.unit.test_arrival import event as arrival_event

NOW = 1_700_000_000_000
SPIKE = 100.0
SCHEMA = json.loads(resources.files("streamproc").joinpath("schemas/alert.schema.json").read_text())


class Spike:
    """A detector that fires on every value above 50: detections exactly where a test says."""

    drift_detected = False

    def update(self, x: float) -> None:
        self.drift_detected = x > SPIKE / 2


def spike_factory(spec: DetectorSpec, standardized: bool) -> Spike:
    return Spike()


def engine(
    *, cooldown: int = 10, stable: int | None = 20, rollup: RollupSettings | None = None
) -> Engine:
    settings = EngineSettings(
        standardize=False,
        warmup=2,
        cooldown_events=cooldown,
        detectors={"value": [{"type": "adwin"}]},  # type: ignore[arg-type]
        lifecycle=LifecycleSettings(stable_events=stable),
        rollup=rollup or RollupSettings(enabled=False),
    )
    return Engine(settings, Limits(), spike_factory)


def feed(e: Engine, rows: list[dict[str, float]], start: int = 0) -> list[tuple[int, Alert]]:
    """(event index, message) for every message of ``rows``, one feature event each."""
    out = []
    for i, features in enumerate(rows, start):
        result = e.process(FeatureEvent("m", dict(features), NOW + i, f"e{i}"), NOW + i)
        assert result.rejection is None
        out += [(i, a) for a in result.alerts]
    return out


def rows(n: int, spikes: dict[int, tuple[str, ...]], features: int = 1) -> list[dict[str, float]]:
    names = [f"f{j}" for j in range(features)]
    return [{f: SPIKE if f in spikes.get(i, ()) else 0.0 for f in names} for i in range(n)]


def test_a_drift_alert_resolves_exactly_when_its_stream_was_stable_for_the_span() -> None:
    messages = feed(engine(), rows(60, {5: ("f0",)}))
    (fired_at, fired), (resolved_at, done) = messages
    assert (fired_at, fired.status, fired.events_seen) == (5, Status.FIRING, 6)
    assert resolved_at == 5 + 20, "the 20th event after the alert completes the span"
    assert done.status is Status.RESOLVED and done.resolved_at == NOW + resolved_at
    assert done.alert_id == fired.alert_id
    assert done.stream == fired.stream and done.severity is fired.severity
    assert {**done.to_dict(), "status": "firing"} == {**fired.to_dict(), "resolved_at": NOW + 25}


def test_a_refire_during_the_span_restarts_it_and_both_alerts_resolve_together() -> None:
    messages = feed(engine(), rows(80, {5: ("f0",), 18: ("f0",)}))
    assert [(i, a.status) for i, a in messages] == [
        (5, Status.FIRING),
        (18, Status.FIRING),
        (38, Status.RESOLVED),
        (38, Status.RESOLVED),
    ]
    assert [a.alert_id for _, a in messages[2:]] == [a.alert_id for _, a in messages[:2]]


def test_a_detection_within_the_cooldown_neither_alerts_nor_restarts_the_span() -> None:
    messages = feed(engine(), rows(60, {5: ("f0",), 9: ("f0",)}))
    assert [(i, a.status) for i, a in messages] == [(5, Status.FIRING), (25, Status.RESOLVED)]


def test_a_stream_holds_a_bounded_number_of_active_alerts() -> None:
    spikes = {i: ("f0",) for i in range(5, 11)}  # cooldown 0: six alerts in a row
    messages = feed(engine(cooldown=0, stable=3), rows(20, spikes))
    fired = [a for _, a in messages if a.status is Status.FIRING]
    done = [(i, a) for i, a in messages if a.status is Status.RESOLVED]
    assert len(fired) == 6
    assert [(i, a.alert_id) for i, a in done[:2]] == [
        (9, fired[0].alert_id),
        (10, fired[1].alert_id),
    ]
    assert [i for i, _ in done[2:]] == [13] * 4, "the four held resolve together"


def test_the_default_span_is_twice_the_cooldown() -> None:
    messages = feed(engine(cooldown=7, stable=None), rows(40, {3: ("f0",)}))
    assert [i for i, _ in messages] == [3, 3 + 14]


def test_with_the_lifecycle_off_nothing_resolves() -> None:
    settings = EngineSettings(
        standardize=False,
        warmup=2,
        cooldown_events=10,
        lifecycle=LifecycleSettings(enabled=False, stable_events=5),
        rollup=RollupSettings(enabled=False),
    )
    e = Engine(settings, Limits(), spike_factory)
    assert [a.status for _, a in feed(e, rows(60, {5: ("f0",)}))] == [Status.FIRING]


def test_resolved_messages_follow_the_schema_and_parse_back() -> None:
    rollup = RollupSettings(min_streams=2, min_share=None)
    messages = feed(engine(rollup=rollup), rows(60, {5: ("f0", "f1")}, features=2))
    assert {(a.stream.kind, a.status) for _, a in messages} == {
        (k, s) for k in (StreamKind.VALUE, StreamKind.MODEL) for s in Status
    }
    for _, alert in messages:
        body = orjson.loads(alert.to_json())
        jsonschema.validate(body, SCHEMA)
        assert from_json(alert.to_json()) == alert
        assert ("resolved_at" in body) is (alert.status is Status.RESOLVED)


def test_a_message_without_status_parses_as_firing() -> None:
    (_, fired), _ = feed(engine(), rows(30, {5: ("f0",)}))
    body = fired.to_dict()
    del body["status"]
    assert from_json(orjson.dumps(body)).status is Status.FIRING


# ---------------------------------------------------------------------------------------
# Arrival


def test_recovered_resolves_the_silence_alert_with_its_id() -> None:
    e = Engine(EngineSettings(), Limits(), arrival=ArrivalSettings())
    out: list[Alert] = []
    for t in range(1200):
        now = T0 + t * S
        if t < 600 or t >= 900:
            out += e.process(arrival_event("a", now - LAG_MS, t), now).alerts
        out += e.tick(now)
    arrival = [a for a in out if a.stream.kind is StreamKind.ARRIVAL]
    silence, recovered, done = arrival
    assert silence.change.direction == "down" and recovered.change.direction == "up"
    assert recovered.alert_id != silence.alert_id, "recovered keeps its own id: a notice"
    assert (done.status, done.alert_id) == (Status.RESOLVED, silence.alert_id)
    assert done.resolved_at == recovered.detected_at == T0 + 900 * S


# ---------------------------------------------------------------------------------------
# Rollup


def models(messages: list[tuple[int, Alert]]) -> list[tuple[int, Alert]]:
    return [(i, a) for i, a in messages if a.stream.kind is StreamKind.MODEL]


def test_k_streams_within_the_window_raise_one_model_alert_that_lists_them() -> None:
    rollup = RollupSettings(min_streams=3, min_share=None, window_events=50)
    spikes = {10: ("f0",), 30: ("f1",), 40: ("f2", "f3")}
    messages = feed(engine(stable=100, rollup=rollup), rows(160, spikes, features=5))
    (at, alert), (end, done) = models(messages)
    streams = {a.alert_id: a.stream for _, a in messages if a.stream.kind is StreamKind.VALUE}
    assert at == 40 and alert.status is Status.FIRING
    assert alert.stream.kind is StreamKind.MODEL and alert.stream.name == "model"
    assert alert.members is not None
    assert [m.stream.name for m in alert.members] == ["f0", "f1", "f2", "f3"]
    assert all(streams[m.alert_id] == m.stream for m in alert.members)
    assert alert.severity is Severity.CRITICAL or alert.severity is Severity.WARNING
    assert end == 40 + 100, "resolved with its last members"
    assert (done.status, done.alert_id, done.members) == (
        Status.RESOLVED,
        alert.alert_id,
        alert.members,
    )


def test_fewer_streams_or_alerts_spread_beyond_the_window_raise_none() -> None:
    rollup = RollupSettings(min_streams=3, min_share=None, window_events=50)
    assert not models(feed(engine(rollup=rollup), rows(120, {10: ("f0", "f1")}, features=5)))
    spread = {10: ("f0",), 30: ("f1",), 61: ("f2",)}  # f0's alert is 51 events before f2's
    assert not models(feed(engine(stable=100, rollup=rollup), rows(120, spread, features=5)))


def test_the_share_rule_rolls_up_fewer_than_k_streams_of_a_small_model() -> None:
    # 3 features: 3 missing-rate and 3 value streams; 30% of 6 is 2 streams.
    rollup = RollupSettings(min_streams=5, min_share=0.3, window_events=50)
    messages = feed(engine(rollup=rollup), rows(60, {10: ("f0", "f1")}, features=3))
    ((at, alert),) = [m for m in models(messages) if m[1].status is Status.FIRING]
    assert at == 10 and alert.members is not None and len(alert.members) == 2
    assert not models(feed(engine(rollup=rollup), rows(60, {10: ("f0",)}, features=3)))


def test_one_model_alert_per_episode_until_its_members_resolve() -> None:
    rollup = RollupSettings(min_streams=2, min_share=None, window_events=50)
    spikes = {5: ("f0", "f1"), 12: ("f2", "f3"), 60: ("f0", "f1")}
    messages = models(feed(engine(rollup=rollup), rows(120, spikes, features=4)))
    assert [(i, a.status) for i, a in messages] == [
        (5, Status.FIRING),
        (12, Status.FIRING),  # f2 and f3 join the open episode: the same alert, updated
        (32, Status.RESOLVED),  # once its last members (f2, f3) are stable
        (60, Status.FIRING),
        (80, Status.RESOLVED),
    ]
    first, grown, resolved, second, _ = (a for _, a in messages)
    assert grown.alert_id == first.alert_id == resolved.alert_id != second.alert_id
    assert [m.stream.name for m in first.members or ()] == ["f0", "f1"]
    assert [m.stream.name for m in grown.members or ()] == ["f0", "f1", "f2", "f3"]
    assert resolved.members == grown.members


def test_a_flood_of_streams_is_one_model_alert_listing_them_all() -> None:
    rollup = RollupSettings(min_streams=3, min_share=None, window_events=500)
    spikes = {10 + i: (f"f{i}",) for i in range(20)}  # 20 streams, one after another
    messages = models(feed(engine(rollup=rollup), rows(60, spikes, features=20)))
    firing = [a for _, a in messages if a.status is Status.FIRING]
    assert len({a.alert_id for a in firing}) == 1, "one model alert, re-sent as it grows"
    assert [m.stream.name for m in firing[-1].members or ()] == [f"f{i}" for i in range(20)]


def test_a_forgotten_model_resolves_its_active_alerts() -> None:
    settings = EngineSettings(
        standardize=False,
        warmup=2,
        cooldown_events=10,
        rollup=RollupSettings(min_streams=2, min_share=None),
    )
    e = Engine(settings, Limits(model_idle_seconds=60), spike_factory)
    fired = [a for _, a in feed(e, rows(8, {5: ("f0", "f1")}, features=2))]
    evicted = e.evict_idle(NOW + 61_000)
    assert evicted.models == ["m"]
    assert [(a.alert_id, a.status) for a in evicted.alerts] == [
        (a.alert_id, Status.RESOLVED) for a in fired
    ]
    assert {a.resolved_at for a in evicted.alerts} == {NOW + 61_000}


def test_the_gauge_counts_the_streams_in_drift() -> None:
    e = engine()
    feed(e, rows(8, {5: ("f0", "f1")}, features=3))
    assert e.drifting() == {"m": 2}
    feed(e, rows(30, {}, features=3), start=8)
    assert e.drifting() == {}
