"""The rate detector, measured: a week of daily cycles gives no alert, a halving gives one.

Traffic is simulated per one-minute bucket (Poisson counts around a sinusoidal daily
cycle between 30% and 100% of the peak) and fed bucket by bucket, so a simulated week
takes milliseconds. docs/arrival.md reports these numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamproc.arrival.monitor import ArrivalMonitor
from streamproc.arrival.rate import Rate, RateChange
from streamproc.settings import ArrivalSettings, RateSettings

BUCKET_MS = 60_000
DAY = 1440
"""One-minute buckets per day."""
WEEK = 7 * DAY


def default_params() -> RateSettings:
    return ArrivalMonitor(ArrivalSettings()).rate_params


def daily_counts(
    peak: float, seed: int, buckets: int = WEEK, change_at: int | None = None, factor: float = 1.0
) -> np.ndarray:
    """Events per minute: 30% to 100% of ``peak`` over each day, times ``factor`` from
    ``change_at`` on, with Poisson noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(buckets)
    phase = rng.uniform(0, 2 * math.pi)
    mean = peak * (0.65 + 0.35 * np.sin(2 * math.pi * k / DAY + phase))
    if change_at is not None:
        mean = np.where(k >= change_at, mean * factor, mean)
    return rng.poisson(mean)


def run(counts: np.ndarray, params: RateSettings) -> list[RateChange]:
    rate, changes = Rate(), []
    for bucket, count in enumerate(counts.tolist()):
        if count:
            change = rate.add(bucket * BUCKET_MS, params, n=count)
            if change is not None:
                changes.append(change)
    return changes


@pytest.mark.parametrize("peak", [30, 100, 1_000, 10_000])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_week_of_daily_cycles_gives_no_rate_alert(peak: int, seed: int) -> None:
    assert run(daily_counts(peak, seed), default_params()) == []


def halving_delays(peak: int, hours: range = range(24)) -> list[int | None]:
    """Per hour of the day: buckets from a halving to its first alert (None: no alert within
    ten buckets); asserts that no other alert is raised around it."""
    delays: list[int | None] = []
    for hour in hours:
        change_at = 2 * DAY + hour * 60
        counts = daily_counts(peak, seed=hour, buckets=change_at + 2 * DAY)
        counts[change_at:] = np.random.default_rng(100 + hour).binomial(counts[change_at:], 0.5)
        changes = run(counts, default_params())
        assert all(c.direction == "down" and c.bucket >= change_at for c in changes), hour
        assert len(changes) <= 1, hour
        delay = changes[0].bucket - change_at if changes else None
        delays.append(delay if delay is not None and delay <= 10 else None)
    return delays


@pytest.mark.parametrize("peak", [300, 1_000])
def test_a_halving_gives_one_alert_within_a_few_buckets(peak: int) -> None:
    """Halvings at every hour of the day, troughs included: each gives one alert."""
    delays = halving_delays(peak)
    assert None not in delays
    assert max(d for d in delays if d is not None) <= 5


def test_at_100_a_minute_most_halvings_are_caught() -> None:
    """At the trough such a model sends 30 a minute, and 15 after a halving: a weak signal
    next to Poisson noise. docs/arrival.md reports how often it is caught."""
    delays = halving_delays(100)
    caught = sorted(d for d in delays if d is not None)
    assert len(caught) >= 21
    assert caught[len(caught) // 2] <= 2


def test_a_doubling_alerts_up() -> None:
    change_at = 3 * DAY
    counts = daily_counts(200, seed=5, buckets=4 * DAY, change_at=change_at, factor=2.0)
    changes = run(counts, default_params())
    assert [c.direction for c in changes] == ["up"]
    assert changes[0].bucket - change_at <= 3


def test_below_min_count_the_rate_is_not_judged() -> None:
    counts = daily_counts(8, seed=1, buckets=2 * DAY, change_at=DAY, factor=0.2)
    assert run(counts, default_params()) == []


def test_gaps_and_the_partial_buckets_around_them_are_not_judged() -> None:
    """A pause is the silence monitor's: the half-empty buckets before and after it, and
    the empty ones in it, must not look like a rate drop."""
    p = default_params()
    rate = Rate()
    for bucket in range(100):
        assert rate.add(bucket * BUCKET_MS, p, n=100) is None
    assert rate.add(100 * BUCKET_MS, p, n=10) is None  # stops early in bucket 100
    assert rate.add(130 * BUCKET_MS + 50_000, p, n=10) is None  # resumes late in bucket 130
    for bucket in range(131, 140):
        assert rate.add(bucket * BUCKET_MS, p, n=100) is None


def test_late_events_count_in_the_open_bucket() -> None:
    p = default_params()
    rate = Rate()
    rate.add(10 * BUCKET_MS, p)
    rate.add(9 * BUCKET_MS, p)
    assert (rate.bucket, rate.count) == (10, 2)


def test_state_round_trips_exactly() -> None:
    p = default_params()
    counts = daily_counts(100, seed=3, buckets=300)
    rate = Rate()
    for bucket, count in enumerate(counts.tolist()):
        rate.add(bucket * BUCKET_MS, p, n=count)
    assert Rate.from_state(rate.to_state()).to_state() == rate.to_state()
