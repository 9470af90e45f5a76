"""The silence window: derived from the model's own gaps, and measured over a simulated week."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamproc.arrival.silence import Silence
from streamproc.settings import SilenceSettings

DAY_MS = 86_400_000


def params(**overrides: float | None) -> SilenceSettings:
    values: dict[str, float | None] = {
        "seconds": None,
        "floor_seconds": 60,
        "ceiling_seconds": 3_600,
        "factor": 4.0,
        "memory_seconds": 10_800,
        "min_gaps": 20,
    }
    values.update(overrides)
    return SilenceSettings(**values)  # type: ignore[arg-type]


def daily_arrivals(peak_per_second: float, seed: int, days: int = 7) -> list[int]:
    """Poisson arrival times (ms) whose rate follows a daily cycle between 30% and 100% of
    the peak (thinning of a peak-rate process)."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * math.pi)
    span_s = days * 86_400
    times = np.cumsum(rng.exponential(1 / peak_per_second, int(peak_per_second * span_s * 1.1)))
    times = times[times < span_s]
    keep = rng.uniform(size=len(times)) < 0.65 + 0.35 * np.sin(2 * math.pi * times / 86_400 + phase)
    return (times[keep] * 1000).astype(np.int64).tolist()


def false_silences(arrivals: list[int], p: SilenceSettings) -> int:
    """Gaps longer than the window in force when they began: each would have been an alert."""
    silence, count = Silence(), 0
    for t in arrivals:
        if silence.last_ms is not None and t - silence.last_ms > silence.window_ms(p):
            count += 1
        silence.observe(t, None, t, p)
    return count


@pytest.mark.parametrize("peak", [1.0, 0.2])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_week_of_daily_cycles_gives_no_silence(peak: float, seed: int) -> None:
    assert false_silences(daily_arrivals(peak, seed), params()) == 0


def test_a_sparse_model_rarely_looks_silent() -> None:
    """One event a minute at the peak, 18 an hour at the trough: docs/arrival.md."""
    assert sum(false_silences(daily_arrivals(1 / 60, seed), params()) for seed in range(4)) <= 1


def test_the_window_follows_the_longest_recent_gap_within_floor_and_ceiling() -> None:
    p = params()
    silence = Silence()
    assert silence.window_ms(p) == 3_600_000, "unknown rhythm: the ceiling"
    for i in range(30):
        silence.observe(i * 1000, None, i * 1000, p)
    assert silence.window_ms(p) == 60_000, "1 s gaps: the floor"
    for i in range(30):
        t = 30_000 + i * 100_000
        silence.observe(t, None, t, p)
    assert silence.window_ms(p) == pytest.approx(400_000, rel=0.01), "4 x 100 s"
    assert params(seconds=5).fixed_ms == 5_000
    assert silence.window_ms(params(seconds=5)) == 5_000


def test_batches_set_the_window_by_their_pauses_not_their_mean_gap() -> None:
    p, silence, t = params(), Silence(), 0
    for _ in range(10):
        for _ in range(100):
            t += 10
            silence.observe(t, None, t, p)
        t += 300_000
    assert silence.window_ms(p) >= 4 * 290_000


def test_one_alert_per_silence_and_the_outage_is_not_remembered_as_rhythm() -> None:
    p, silence = params(), Silence()
    for i in range(100):
        silence.observe(i * 1000, None, i * 1000, p)
    assert silence.check(150_000, p) is None
    assert silence.check(160_000, p) == 61_000
    assert silence.check(170_000, p) is None, "one alert per silence"
    assert silence.observe(3_700_000, None, 3_700_000, p) == 3_601_000, "recovered"
    assert silence.window_ms(p) == 60_000, "the hour-long outage did not become the rhythm"


def test_silence_counts_from_when_this_process_began_watching() -> None:
    p, before = params(), Silence()
    for i in range(100):
        before.observe(i * 1000, None, i * 1000, p)
    after = Silence.from_state(before.to_state())  # restored two hours later
    assert after.check(7_300_000, p) is None, "first look: only sets the starting point"
    assert after.check(7_350_000, p) is None
    assert after.check(7_361_000, p) == 7_262_000, "silent for the window since then"
