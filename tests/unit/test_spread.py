"""Spread changes: the CUSUMs on squared differences find variance changes, stay quiet on
stationary and mean-shifted streams, and restore mid-stream exactly."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc import budget, spread
from streamproc.alerts import Alert, StreamId
from streamproc.domain import StreamKind
from streamproc.settings import EngineSettings, Override
from streamproc.stream_detectors import default_factory
from streamproc.streams import Stream

SID = StreamId("m", StreamKind.VALUE, "x")
DEFAULTS = EngineSettings()


def stream(threshold: float | None = None, cooldown: int = 1000) -> Stream:
    base = DEFAULTS.policy("m", StreamKind.VALUE, "x")
    policy = base.model_copy(
        update={
            "cooldown_events": cooldown,
            "spread_threshold": threshold or base.spread_threshold,
        }
    )
    return Stream(SID, policy, default_factory)


def feed(s: Stream, values: list[float], start: int = 0) -> list[Alert]:
    return [a for i, v in enumerate(values, start) for a in s.update(v, None, i, i)]


def gaussian(n: int, seed: int, change_at: int, sd_after: float, mean_after: float = 0.0):
    rng = random.Random(seed)
    return [
        rng.gauss(mean_after, sd_after) if i >= change_at else rng.gauss(0.0, 1.0) for i in range(n)
    ]


def first_spread(alerts: list[Alert]) -> Alert | None:
    return next((a for a in alerts if a.detector["type"] == "spread"), None)


def test_the_default_threshold_is_the_budget_shared_by_a_models_streams_and_tests() -> None:
    policy = DEFAULTS.policy("m", StreamKind.VALUE, "x")
    arl0 = 100_000 * 150 * (len(policy.detectors) + spread.SOURCES)
    assert policy.spread_threshold == math.log(arl0)
    assert budget.cusum_delay(100_000, 0.5**2 / 2) == math.log(100_000) * 8


def test_raw_and_0_1_streams_have_no_spread_test() -> None:
    assert (
        EngineSettings(standardize=False).policy("m", StreamKind.VALUE, "x").spread_threshold
        is None
    )
    assert EngineSettings(spread=False).policy("m", StreamKind.VALUE, "x").spread_threshold is None
    rate = Stream(
        StreamId("m", StreamKind.MISSING_RATE, "x"),
        DEFAULTS.policy("m", StreamKind.MISSING_RATE, "x"),
        default_factory,
    )
    assert rate.to_state()["spread_up"] == 0.0
    assert not any(
        a.detector["type"] == "spread" for a in feed(rate, [float(i % 2) for i in range(3000)])
    )


def test_a_variance_doubling_is_found_in_18_of_20_runs_within_2000_events() -> None:
    delays = []
    for seed in range(20):
        alert = first_spread(feed(stream(), gaussian(3000, seed, 1000, math.sqrt(2.0))))
        if alert is not None and alert.change.direction == "up":
            delays.append(alert.events_seen - 1000)
    assert len(delays) >= 18 and all(0 < d <= 2000 for d in delays)


def test_a_variance_halving_is_found_and_said_to_be_down() -> None:
    found = 0
    for seed in range(20):
        alert = first_spread(feed(stream(), gaussian(3000, seed, 1000, math.sqrt(0.5))))
        if alert is not None and 1000 < alert.events_seen <= 3000:
            assert alert.change.direction == "down"
            assert alert.change.magnitude is not None and alert.change.magnitude < 1.0
            found += 1
    assert found >= 18


def test_the_alert_gives_the_spread_before_and_after() -> None:
    alert = first_spread(feed(stream(), gaussian(3000, 1, 1000, 3.0)))
    assert alert is not None and alert.change.direction == "up"
    assert alert.change.scale is not None and 0.8 < alert.change.scale < 1.2
    # after: from the recent (span 50) squared differences, mostly pre-change this early
    assert alert.change.magnitude is not None and 1.5 < alert.change.magnitude < 4.5
    threshold = DEFAULTS.policy("m", StreamKind.VALUE, "x").spread_threshold
    assert threshold is not None
    params = alert.detector["params"]
    assert threshold <= params["threshold"] < 2 * threshold  # times the stream's tail factor
    assert params["std_after"] / params["std_before"] == alert.change.magnitude


def test_stationary_and_mean_shifted_streams_raise_no_spread_alert() -> None:
    assert first_spread(feed(stream(), gaussian(100_000, 5, 10**9, 1.0))) is None
    assert first_spread(feed(stream(), gaussian(5000, 6, 1000, 1.0, mean_after=3.0))) is None


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    split=st.integers(1, 799),
    sd_after=st.sampled_from([0.3, 1.0, 3.0]),
)
def test_a_stream_restored_mid_stream_continues_exactly(
    seed: int, split: int, sd_after: float
) -> None:
    values = gaussian(800, seed, 300, sd_after)
    reference = stream(threshold=3.0, cooldown=5)
    expected = feed(reference, values)
    first = stream(threshold=3.0, cooldown=5)
    before = feed(first, values[:split])
    restored = stream(threshold=3.0, cooldown=5)
    restored.restore(first.to_state())
    after = feed(restored, values[split:], split)
    assert before + after == expected
    assert restored.to_state() == reference.to_state()


def test_restore_refuses_spread_statistics_out_of_range() -> None:
    import pytest

    from streamproc.errors import StateError

    s = stream()
    feed(s, gaussian(300, 1, 10**9, 1.0))
    bad_values = (
        ("spread_up", -1.0),
        ("recent_sq", 17.0),
        ("previous", math.inf),
        ("previous", 1e300),
        ("spread_ref", 0.0),
    )
    for field, bad in bad_values:
        values = dict(s.to_state())
        values[field] = bad
        with pytest.raises(StateError, match=field):
            stream().restore(values)


def test_a_heavy_tailed_stream_gets_a_wider_threshold_and_a_gaussian_one_does_not() -> None:
    rng = random.Random(3)
    heavy, plain = stream(), stream()
    feed(heavy, [rng.gauss(0.0, 1.0) / max(rng.random(), 1e-9) ** (1 / 3) for _ in range(700)])
    feed(plain, gaussian(700, 3, 10**9, 1.0))
    assert heavy.spread_tail > 2.0
    assert 1.0 <= plain.spread_tail < 1.6
    assert spread.tail_factor(1.0 + spread.GAUSSIAN_VARIANCE) == 1.0
    assert spread.tail_factor(1.0 + 4 * spread.GAUSSIAN_VARIANCE) == 4.0


def test_an_override_switches_the_spread_test_off_per_stream() -> None:
    settings = EngineSettings(overrides=(Override(stream="id_*", spread=False),))
    assert settings.policy("m", StreamKind.VALUE, "id_user").spread_threshold is None
    assert settings.policy("m", StreamKind.VALUE, "amount").spread_threshold is not None


def test_a_smaller_budget_or_more_streams_raise_the_threshold_logarithmically() -> None:
    base = EngineSettings().spread_threshold(2)
    assert EngineSettings(false_alarms_per_100k=0.1).spread_threshold(2) == base + math.log(10)
    assert EngineSettings(streams_per_model=1500).spread_threshold(2) == base + math.log(10)
