"""Restores continue the lifecycle and the rollup exactly: a snapshot taken anywhere, with
alerts active and a model alert open, restored into a fresh engine, gives the same
messages (firing, resolved, model) as the engine that never stopped."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.alerts import Alert, Status
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import Event, FeatureEvent, OutcomeEvent
from streamproc.settings import EngineSettings, Limits
from streamproc.settings.alerts import LifecycleSettings, RollupSettings

NOW = 1_700_000_000_000
LIMITS = Limits()
SETTINGS = EngineSettings(
    warmup=10,
    cooldown_events=8,
    lifecycle=LifecycleSettings(stable_events=25),
    rollup=RollupSettings(min_streams=2, min_share=None, window_events=40),
)


def events(levels: list[list[float]], seed: int, segment: int = 60) -> list[Event]:
    """Features ``f0..`` whose mean steps through ``levels[feature]``, segment by segment
    (large steps: ADWIN detects them within a few dozen events), with outcomes between."""
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(segment * len(levels[0])):
        values = {f"f{j}": lv[i // segment] + rng.gauss(0, 1) for j, lv in enumerate(levels)}
        out.append(FeatureEvent("m", values, NOW + i, f"e{i}"))
        if i % 3 == 0:
            out.append(OutcomeEvent(model="m", ts=NOW + i, error=rng.random(), id=f"o{i}"))
    return out


def run(engine: Engine, evs: list[Event]) -> list[Alert]:
    alerts: list[Alert] = []
    for event in evs:
        result = engine.process(event, event.ts + 5)
        assert result.rejection is None
        alerts += result.alerts
    return alerts


LEVELS = st.lists(st.sampled_from([0.0, 8.0, -8.0]), min_size=4, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    levels=st.lists(LEVELS, min_size=2, max_size=4),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_a_restore_anywhere_continues_the_lifecycle_and_rollup_exactly(
    levels: list[list[float]], seed: int, data: st.DataObject
) -> None:
    evs = events(levels, seed)
    split = data.draw(st.integers(1, len(evs) - 1), label="split")
    reference = Engine(SETTINGS, LIMITS)
    expected = run(reference, evs)

    first = Engine(SETTINGS, LIMITS)
    before = run(first, evs[:split])
    restored = Engine(SETTINGS, LIMITS)
    assert restored.restore(first.snapshot()).rejected == ()
    assert restored.snapshot() == first.snapshot()
    after = run(restored, evs[split:])

    assert before + after == expected
    assert restored.snapshot() == reference.snapshot()


def test_the_property_sees_resolutions_and_model_alerts_in_flight() -> None:
    """The scenario the property draws from does exercise what it claims to: a split
    between a model alert and its resolution, with stream alerts active at the cut."""
    evs = events([[0.0, 8.0, 8.0, 8.0], [0.0, 8.0, 8.0, 8.0], [0.0, 0.0, 0.0, 0.0]], seed=3)
    alerts = run(Engine(SETTINGS, LIMITS), evs)
    kinds = {(a.stream.kind, a.status) for a in alerts}
    assert {(StreamKind.MODEL, s) for s in Status} <= kinds
    assert (StreamKind.VALUE, Status.RESOLVED) in kinds
    fired = next(i for i, a in enumerate(alerts) if a.stream.kind is StreamKind.MODEL)
    assert any(a.status is Status.RESOLVED for a in alerts[fired:])
