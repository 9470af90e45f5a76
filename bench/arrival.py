"""Arrival monitoring of the default configuration on simulated traffic with a daily cycle.

Traffic follows a sinusoidal daily cycle between 30% and 100% of its peak, with Poisson
noise (optionally over-dispersed), on a simulated clock: a week takes a fraction of a
second. Measured: rate false alarms per week, how fast a halving is caught at each hour of
the day, and silence false alarms per week with the window they leave. Seeded: the same
command prints the same numbers (docs/arrival.md quotes them).

    python bench/arrival.py
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from streamproc.arrival.monitor import ArrivalMonitor
from streamproc.arrival.rate import Rate
from streamproc.arrival.silence import Silence
from streamproc.settings import ArrivalSettings, RateSettings, SilenceSettings

DAY = 1440
"""One-minute buckets per day (the default bucket)."""
WEEKS = 8


def cycle(peak: float, buckets: int, rng: np.random.Generator) -> np.ndarray:
    phase = rng.uniform(0, 2 * math.pi)
    return peak * (0.65 + 0.35 * np.sin(2 * math.pi * np.arange(buckets) / DAY + phase))


def rate_alerts(counts: np.ndarray, p: RateSettings) -> list[tuple[int, str]]:
    rate, found = Rate(), []
    for bucket, count in enumerate(counts.tolist()):
        if count:
            change = rate.add(bucket * p.bucket_ms, p, n=count)
            if change is not None:
                found.append((change.bucket, change.direction))
    return found


def rate_false_alarms(peak: float, p: RateSettings, dispersion: float = 0.0) -> float:
    total = 0
    for seed in range(WEEKS):
        rng = np.random.default_rng(seed)
        mean = cycle(peak, 7 * DAY, rng)
        if dispersion:
            mean = mean * rng.gamma(1 / dispersion**2, dispersion**2, len(mean))
        total += len(rate_alerts(rng.poisson(mean), p))
    return total / WEEKS


def halving_delays(peak: float, p: RateSettings) -> list[int | None]:
    delays: list[int | None] = []
    for seed, hour in enumerate(list(range(24)) * 2):
        rng = np.random.default_rng(1000 + seed)
        at = 2 * DAY + hour * 60
        mean = cycle(peak, at + DAY, rng)
        mean[at:] *= 0.5
        found = [b - at for b, d in rate_alerts(rng.poisson(mean), p) if b >= at and d == "down"]
        delays.append(found[0] if found and found[0] <= 10 else None)
    return delays


def arrivals(peak_per_second: float, rng: np.random.Generator, days: int = 7) -> list[int]:
    phase = rng.uniform(0, 2 * math.pi)
    span = days * 86_400
    times = np.cumsum(rng.exponential(1 / peak_per_second, int(peak_per_second * span * 1.1)))
    times = times[times < span]
    keep = rng.uniform(size=len(times)) < 0.65 + 0.35 * np.sin(2 * math.pi * times / 86_400 + phase)
    return (times[keep] * 1000).astype(np.int64).tolist()


def silence_measure(peak_per_second: float, p: SilenceSettings) -> tuple[float, float]:
    """(false silences per week, median window in seconds)."""
    false, windows = 0, []
    for seed in range(WEEKS):
        silence = Silence()
        for i, t in enumerate(arrivals(peak_per_second, np.random.default_rng(seed))):
            if silence.last_ms is not None and t - silence.last_ms > silence.window_ms(p):
                false += 1
            silence.observe(t, None, t, p)
            if i % 25 == 0:
                windows.append(silence.window_ms(p) / 1000)
    return false / WEEKS, statistics.median(windows)


def main() -> None:
    monitor = ArrivalMonitor(ArrivalSettings())
    rate_p = monitor.rate_params
    silence_p = monitor.silence_params("any")
    print(f"## Rate: false alarms per simulated week ({WEEKS} weeks each)\n")
    print("| peak events/min | Poisson | over-dispersed (10%) |\n|---|---|---|")
    for peak in (30, 100, 1_000, 10_000, 100_000):
        plain, over = rate_false_alarms(peak, rate_p), rate_false_alarms(peak, rate_p, 0.1)
        print(f"| {peak:,} | {plain:.2f} | {over:.2f} |")
    print("\n## Rate: halvings at every hour of the day (48 each)\n")
    print("| peak events/min | caught within 10 buckets | median delay | 90th pct | max |")
    print("|---|---|---|---|---|")
    for peak in (30, 100, 300, 1_000):
        delays = halving_delays(peak, rate_p)
        caught = sorted(d for d in delays if d is not None)
        p90 = caught[int(0.9 * (len(caught) - 1))] if caught else None
        median = f"{statistics.median(caught):g}" if caught else "-"
        print(
            f"| {peak:,} | {len(caught)}/{len(delays)} | {median} | {p90} | "
            f"{max(caught, default=None)} |"
        )
    print(f"\n## Silence: false alarms per simulated week ({WEEKS} weeks each)\n")
    print("| peak events | false alarms/week | median window (s) |\n|---|---|---|")
    for label, peak in (("1/s", 1.0), ("12/min", 0.2), ("1/min", 1 / 60), ("1/2 min", 1 / 120)):
        false, window = silence_measure(peak, silence_p)
        print(f"| {label} | {false:.2f} | {window:.0f} |")


if __name__ == "__main__":
    main()
