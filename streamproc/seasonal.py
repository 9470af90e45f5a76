"""Daily and weekly cycles in event time: a profile per stream, whose residuals are watched.

Change detectors on raw seasonal data fire on the cycle; practice removes the seasonal
component first and detects on residuals (docs/detectors.md, "Seasonality"). The component
here is the simplest one event time allows: the mean of the stream by hour of day (24
bins) and by half-day of the week (14 bins), both learned online from the event ``ts``,
read between bin centres by linear interpolation (a daily sine of 1.5 sigma is then off by
about 0.01 sigma), and centred, so that the residual ``x - component`` keeps the stream's
level: a level shift moves the residuals, a cycle does not.

Each profile is switched on by a test of its significance once it has seen one full
cycle (bins with at least :data:`MIN_BIN` values count): the share of variance its bin means
explain, as an F statistic against the within-bin variance, at level :data:`ALPHA`: the
daily one after a day and an hour of event time, the weekly one a week and twelve hours
after that. Until a profile is decided its alerts are held whenever the part learned so far is
significant: during the first day (and for the weekly profile, the first week), a change
between hours cannot be told from a cycle. When a profile switches on, the stream learns
its scale and detectors afresh on the residuals (a cold start of one warm-up).

The bins are plain means, weighted ``1/n`` for the first :data:`DAY_MEMORY` (resp.
:data:`WEEK_MEMORY`) cycles and then like an exponential average with that memory, so the
profile follows a slow drift of the cycle while a change within a cycle or two still shows
in the residuals. The weekly bins learn from what the daily profile leaves, from the day it
is decided on: the weekly component is what the week adds to the day.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist
from typing import Any, Final, Literal

from streamproc.errors import StateError

Mode = Literal["auto", "on", "off"]
"""``auto``: each profile switched on by its test; ``on``: without the test; ``off``: none."""
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
WEEK_MS: Final = 7 * DAY_MS
DAY_BINS: Final = 24
WEEK_BINS: Final = 14
"""Twelve hours each: a weekly sine is then read within 0.04 sigma, and the profile fits the
4 KB a stream may take."""
DAY_BIN_MS: Final = DAY_MS // DAY_BINS
WEEK_BIN_MS: Final = WEEK_MS // WEEK_BINS
MIN_BIN: Final = 10
"""Values a bin needs to count in a test (the decision, or a hold): fewer say little."""
HOLD_SPAN_MS: Final = HOUR_MS
"""Event time a learning profile must span before it can hold alerts: a stream that spans
less (a demo, a test) is never held."""
DAY_MEMORY: Final = 8.0
"""Cycles after which daily bins forget like an exponential average of this memory."""
WEEK_MEMORY: Final = 4.0
_DAY_MEMORY_MS: Final = DAY_MS * DAY_MEMORY
_WEEK_MEMORY_MS: Final = WEEK_MS * WEEK_MEMORY
ALWAYS: Final = -(2**63)
NEVER: Final = 2**63
"""Event times before and after any (``ts`` is a 64-bit millisecond count)."""
LEARN_STEP_MS: Final = 1_000
"""A profile learns from at most one value per second of event time: a bin then holds up to
3,600 values an hour, plenty for its mean, and a stream of 1,000 events a second pays for
learning once in 1,000 values (its residuals are still read for every value)."""
ALPHA: Final = 1e-3
"""Level of the F tests. A wrong "on" costs little (residuals against a flat profile carry
its noise, ~1/sqrt(values per bin)); a wrong "off" lets the cycle alert."""
LEARNING, ON, OFF = 0, 1, 2
"""Where a profile is: learning (not yet a full cycle), switched on, or off."""
_NAMES: Final = ("learning", "on", "off")
"""The states as a snapshot names them."""
FIELDS: Final = (
    "day_start",
    "week_start",
    "daily",
    "weekly",
    "day_n",
    "day_mean",
    "week_n",
    "week_mean",
    "day_level",
    "week_level",
    "n",
    "mean",
    "m2",
    "next_learn",
)
"""Keys of :meth:`Seasonal.to_state`."""


@functools.lru_cache(maxsize=64)
def critical_f(df: int) -> float:
    """F statistic (numerator ``df``, denominator large) exceeded with probability
    :data:`ALPHA` under no cycle: ``chi2(df) / df`` by Wilson and Hilferty's cube root."""
    z = NormalDist().inv_cdf(1.0 - ALPHA)
    c = 2.0 / (9.0 * df)
    return float((1.0 - c + z * math.sqrt(c)) ** 3)


class Seasonal:
    """The seasonal profile of one stream. Not thread-safe; its stream owns it."""

    __slots__ = (
        "active",
        "changed",
        "daily",
        "day_level",
        "day_mean",
        "day_n",
        "day_start",
        "m2",
        "mean",
        "mode",
        "n",
        "next_learn",
        "week_level",
        "week_mean",
        "week_n",
        "week_start",
        "weekly",
    )

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.changed = False
        """Set when a profile switched on: the stream relearns on the new residuals."""
        self.active = False
        """Whether a profile is on (values are then read less it)."""
        self.next_learn = ALWAYS
        """Event time from which the next value is learned."""
        self.day_start: int | None = None
        self.week_start: int | None = None
        self.daily = LEARNING
        self.weekly = LEARNING
        self.day_n = [0] * DAY_BINS
        self.day_mean = [0.0] * DAY_BINS
        self.week_n = [0] * WEEK_BINS
        self.week_mean = [0.0] * WEEK_BINS
        self.day_level = 0.0
        """The mean of the daily bins once on (kept up to date bin by bin): the profile is
        read less it, so the residual keeps the stream's level."""
        self.week_level = 0.0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def update(self, x: float, ts: int, timed: bool) -> float:
        """Learn from ``x`` (only when the event carried its own ``ts``, and at most once per
        :data:`LEARN_STEP_MS` of event time) and return what the detectors read: the residual
        once a profile is on, else ``x``. The daily bins learn from ``x``; once the daily
        profile is decided, the weekly bins learn from what it leaves (so a week's partial
        bins are not biased by the hours they happen to cover).

        The stream calls this only from :meth:`due`'s time on: a stream without a profile on
        pays one comparison per value."""
        if timed and ts >= self.next_learn:
            self.next_learn = ts + LEARN_STEP_MS
            return self._learn(x, ts)
        return x - self._daily(ts) - self._weekly(ts) if self.active else x

    def due(self) -> int:
        """Event time from which :meth:`update` has something to do for a value: always
        once a profile is on, else the next time to learn."""
        if self.active:
            return ALWAYS
        return self.next_learn if LEARNING in (self.daily, self.weekly) else NEVER

    def _learn(self, x: float, ts: int) -> float:
        daily = self.daily
        if daily == LEARNING:
            self._learn_daily(x, ts)
            return x
        if daily == ON:
            self._learn_daily(x, ts)
            x -= self._daily(ts)
        weekly = self.weekly
        if weekly == OFF:
            return x
        start = self.week_start
        if start is None:
            start = self.week_start = ts
        elapsed = ts - start
        step = _learn(
            self.week_n, self.week_mean, ts % WEEK_MS // WEEK_BIN_MS, x, elapsed / _WEEK_MEMORY_MS
        )
        if weekly == LEARNING:
            self._accumulate(x)
            if elapsed >= WEEK_MS + WEEK_BIN_MS:
                self._decide_weekly()
            return x
        self.week_level += step / WEEK_BINS
        return x - self._weekly(ts)

    def _learn_daily(self, x: float, ts: int) -> None:
        start = self.day_start
        if start is None:
            start = self.day_start = ts
        elapsed = ts - start
        step = _learn(
            self.day_n, self.day_mean, ts % DAY_MS // DAY_BIN_MS, x, elapsed / _DAY_MEMORY_MS
        )
        if self.daily == LEARNING:
            self._accumulate(x)
            if elapsed >= DAY_MS + DAY_BIN_MS:
                self._decide_daily(ts)
        else:
            self.day_level += step / DAY_BINS

    def _accumulate(self, x: float) -> None:
        """Totals of the values the learning profile sees (its test's within variance)."""
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def _decide_daily(self, ts: int) -> None:
        """A day and an hour have passed: every hour seen whole at least once."""
        on = self.mode == "on" or self._f(self.day_n, self.day_mean) > critical_f(
            max(1, _filled(self.day_n) - 1)
        )
        self.daily = ON if on else OFF
        self.changed = self.changed or on
        self.active = self.active or on
        _settle(self.day_n, self.day_mean, on)
        self.day_level = sum(self.day_mean) / DAY_BINS
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.week_start = ts

    def _decide_weekly(self) -> None:
        on = self.mode == "on" or self._f(self.week_n, self.week_mean) > critical_f(
            max(1, _filled(self.week_n) - 1)
        )
        self.weekly = ON if on else OFF
        self.changed = self.changed or on
        self.active = self.active or on
        _settle(self.week_n, self.week_mean, on)
        self.week_level = sum(self.week_mean) / WEEK_BINS
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def holds(self, ts: int) -> bool:
        """Whether an alert at ``ts`` may be the cycle: a profile is still learning, the
        stream has spanned :data:`HOLD_SPAN_MS` of event time, and what the profile has
        learned so far is significant (``on``: the whole first day is held).

        In the first week a change of the daily cycle (its amplitude, its level) cannot be
        told from a weekly pattern: it is held until the week is decided."""
        if self.daily == LEARNING:
            if self.mode == "on":
                return self.day_start is not None
            start, counts, means = self.day_start, self.day_n, self.day_mean
        elif self.weekly == LEARNING:
            start, counts, means = self.week_start, self.week_n, self.week_mean
        else:
            return False
        if start is None or ts - start < HOLD_SPAN_MS:
            return False
        filled = _filled(counts)
        return filled >= 2 and self._f(counts, means) > critical_f(filled - 1)

    def _f(self, counts: list[int], means: list[float]) -> float:
        """Variance between the bins with :data:`MIN_BIN` values or more against the
        variance within bins, of the values the learning profile has seen (its bins are
        then plain means of those values)."""
        between, bins, values = _between(counts, means)
        within = (self.m2 - between) / max(1, self.n - bins)
        if bins < 2 or within <= 0.0 or values > self.n:
            return 0.0
        return between / (bins - 1) / within

    def _daily(self, ts: int) -> float:
        """The daily part of a value at ``ts``: centred, interpolated between bin centres."""
        if self.daily != ON:
            return 0.0
        day = self.day_mean
        pos = ts % DAY_MS / DAY_BIN_MS + 0.5  # bin centres at whole numbers, pos >= 0
        below = int(pos)
        a, b = day[below - 1], day[below % DAY_BINS]  # day[-1]: the last bin, before the first
        return a + (pos - below) * (b - a) - self.day_level

    def _weekly(self, ts: int) -> float:
        """What the week adds to the daily part."""
        if self.weekly != ON:
            return 0.0
        week = self.week_mean
        pos = ts % WEEK_MS / WEEK_BIN_MS + 0.5
        below = int(pos)
        a, b = week[below - 1], week[below % WEEK_BINS]
        return a + (pos - below) * (b - a) - self.week_level

    def to_state(self) -> dict[str, Any]:
        return {
            "day_start": self.day_start,
            "week_start": self.week_start,
            "daily": _NAMES[self.daily],
            "weekly": _NAMES[self.weekly],
            "day_n": list(self.day_n) if self.daily != OFF else [],
            "day_mean": list(self.day_mean) if self.daily != OFF else [],
            "week_n": list(self.week_n) if self.weekly != OFF else [],
            "week_mean": list(self.week_mean) if self.weekly != OFF else [],
            "day_level": self.day_level,
            "week_level": self.week_level,
            "n": self.n,
            "mean": self.mean,
            "m2": self.m2,
            "next_learn": self.next_learn,
        }

    def restore(self, values: object, where: str, bound: float) -> None:
        """Continue from :meth:`to_state` output; StateError names the first bad field and
        leaves the profile unchanged. ``bound`` bounds every mean (the stream's)."""
        if type(values) is not dict or values.keys() != set(FIELDS):
            raise StateError(f"{where}: seasonal: expected a mapping with keys {', '.join(FIELDS)}")
        starts = values["day_start"], values["week_start"]
        if any(s is not None and type(s) is not int for s in starts):
            raise StateError(f"{where}: seasonal: day_start, week_start: integers or null")
        next_learn = values["next_learn"]
        if type(next_learn) is not int:
            raise StateError(f"{where}: seasonal.next_learn: expected an integer")
        daily, weekly = values["daily"], values["weekly"]
        if daily not in _NAMES or weekly not in _NAMES:
            raise StateError(f"{where}: seasonal: daily and weekly must be learning, on or off")
        days = 0 if daily == "off" else DAY_BINS
        weeks = 0 if weekly == "off" else WEEK_BINS
        day_n = _counts(values["day_n"], days, f"{where}: seasonal.day_n") or [0] * DAY_BINS
        week_n = _counts(values["week_n"], weeks, f"{where}: seasonal.week_n") or [0] * WEEK_BINS
        day_mean = _means(values["day_mean"], days, bound, f"{where}: seasonal.day_mean")
        week_mean = _means(values["week_mean"], weeks, bound, f"{where}: seasonal.week_mean")
        day_mean = day_mean or [0.0] * DAY_BINS
        week_mean = week_mean or [0.0] * WEEK_BINS
        levels = _means([values["day_level"], values["week_level"]], 2, bound, f"{where}: seasonal")
        n = _counts([values["n"]], 1, f"{where}: seasonal.n")[0]
        mean = _means([values["mean"]], 1, bound, f"{where}: seasonal.mean")[0]
        m2 = _means([values["m2"]], 1, math.inf, f"{where}: seasonal.m2")[0]
        if m2 < 0.0:
            raise StateError(f"{where}: seasonal.m2: must not be negative")
        self.day_start, self.week_start = starts
        self.daily, self.weekly = _NAMES.index(daily), _NAMES.index(weekly)
        self.active = ON in (self.daily, self.weekly)
        self.next_learn = next_learn
        self.day_n, self.day_mean, self.week_n, self.week_mean = day_n, day_mean, week_n, week_mean
        self.n, self.mean, self.m2 = n, mean, m2
        self.day_level, self.week_level = levels
        self.changed = False


def _filled(counts: list[int]) -> int:
    return sum(1 for c in counts if c >= MIN_BIN)


def _between(counts: list[int], means: list[float]) -> tuple[float, int, int]:
    """Sum of squares of the means of bins with :data:`MIN_BIN` values or more about their
    weighted mean, those bins, and their values."""
    pairs = [(c, m) for c, m in zip(counts, means, strict=True) if c >= MIN_BIN]
    total = sum(c for c, _ in pairs)
    if total == 0:
        return 0.0, 0, 0
    grand = sum(c * m for c, m in pairs) / total
    return sum(c * (m - grand) ** 2 for c, m in pairs), len(pairs), total


def _settle(counts: list[int], means: list[float], on: bool) -> None:
    """A decided profile: off, its bins are cleared (they are never read again, and a
    snapshot omits them); on, bins a whole cycle left empty (no traffic at night) read as
    the profile's mean."""
    if not on:
        counts[:] = [0] * len(counts)
        means[:] = [0.0] * len(means)
        return
    seen = [m for c, m in zip(counts, means, strict=True) if c]
    level = sum(seen) / len(seen) if seen else 0.0
    for i, c in enumerate(counts):
        if not c:
            means[i] = level


def _counts(value: object, size: int, where: str) -> list[int]:
    if (
        type(value) is not list
        or len(value) != size
        or not all(type(c) is int and 0 <= c <= 2**53 for c in value)
    ):
        raise StateError(f"{where}: expected {size} non-negative integers")
    return list(value)


def _means(value: object, size: int, bound: float, where: str) -> list[float]:
    if (
        type(value) is not list
        or len(value) != size
        or not all(
            (type(m) is float or type(m) is int) and math.isfinite(m) and -bound <= m <= bound
            for m in value
        )
    ):
        raise StateError(f"{where}: expected {size} finite numbers within +/-{bound:g}")
    return [float(m) for m in value]


def _learn(counts: list[int], means: list[float], b: int, x: float, memories: float) -> float:
    """Move bin ``b``'s mean toward ``x`` and return the step: a plain mean while the
    profile has seen at most one memory span, then an exponential average with that memory."""
    n = counts[b] = counts[b] + 1
    step = (x - means[b]) * (1.0 / n if memories <= 1.0 else min(1.0, memories / n))
    means[b] += step
    return step
