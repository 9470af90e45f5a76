"""Rate: a model's events per event-time bucket, judged against its own recent buckets.

Why it is built this way (docs/arrival.md has the measurements):

- Buckets are on **event time** (``ts``, or the Kafka record time when an event has
  none), never on processing time: consumer lag, rebalances and restarts bunch up
  processing and must not look like rate changes. The worker and ``replay`` therefore
  bucket identically, and a rate alert has the same id in both.
- Counts are compared on a **log scale** with a short-horizon baseline: Holt's linear
  smoothing of log(count) over recent buckets. A daily cycle moves the log rate by a few
  thousandths per one-minute bucket, which the baseline (level and slope) follows; a
  halving moves it by 0.69 at once, which it does not.
- The standardized log ratio feeds a two-sided **CUSUM**, so one noisy bucket does not
  alert but a sustained change does, within a few buckets. The spread is the larger of
  the observed residual spread and Poisson noise (``1 / expected count``), and a model is
  only judged while it expects at least ``min_count`` events per bucket.
- An **empty bucket is a gap**, not a rate: no arrivals at all is the silence monitor's
  business. Gaps are skipped, and so are the partial buckets on both sides of a gap and a
  model's first bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streamproc import state
from streamproc.settings import RateSettings

STATE_FIELDS = (
    "bucket",
    "count",
    "partial",
    "judged",
    "level",
    "trend",
    "var",
    "low",
    "high",
    "quiet",
)
"""The keys of :meth:`Rate.to_state`: the attributes, by name, in the order they are checked."""
_MAX_LOG = 350.0
"""Bound on a restored level or trend: exp(level + trend) stays finite."""


@dataclass(frozen=True, slots=True)
class RateChange:
    """A judged bucket that tipped the CUSUM."""

    bucket: int
    """Index of the bucket (event time // bucket length): the alert's position."""
    direction: str
    """``up`` or ``down``."""
    expected: float
    """Events the baseline expected in this bucket."""
    count: int
    """Events in this bucket."""


_MIN_VAR = 0.05**2
"""No rate is more regular than 5% from bucket to bucket in practice; at tens of thousands
of events per bucket, Poisson noise alone would claim it is, and every wobble would count."""
_CLIP = 2.0
_VAR_SLOWER = 0.5
"""Residuals beyond this many standard deviations move the baseline and its spread only
this far: a burst neither drags the baseline along nor blinds the detector, while a real
change, being sustained, still tips the CUSUM within a few buckets."""


class Rate:
    """Bucket counts and change detection of one model; its state is plain values."""

    __slots__ = (
        "bucket",
        "count",
        "high",
        "judged",
        "level",
        "low",
        "partial",
        "quiet",
        "trend",
        "var",
    )

    def __init__(self) -> None:
        self.bucket: int | None = None
        """The open bucket's index."""
        self.count = 0
        """Events in the open bucket."""
        self.partial = True
        """The open bucket began after a gap (or with the model), so it is not judged."""
        self.judged = 0
        """Buckets the baseline has seen."""
        self.level = 0.0
        """Baseline log(count)."""
        self.trend = 0.0
        """Baseline change of log(count) per bucket."""
        self.var = 0.0
        """Weighted variance of log(count) around the baseline's forecast."""
        self.low = 0.0
        """CUSUM of downward deviations."""
        self.high = 0.0
        """CUSUM of upward deviations."""
        self.quiet = 0
        """Buckets left before the rate is judged again (cooldown after an alert)."""

    def add(self, ts: int, p: RateSettings, n: int = 1) -> RateChange | None:
        """Count ``n`` events at event time ``ts``; returns the change, when the bucket this
        closes tipped the CUSUM."""
        bucket = ts // p.bucket_ms
        current = self.bucket
        if current is not None and bucket <= current:
            self.count += n  # a late event counts in the open bucket: totals stay right
            return None
        change = None
        if current is not None:
            adjacent = bucket == current + 1
            if adjacent and not self.partial:
                change = self._judge(current, self.count, p)
            if not adjacent:
                self.low = self.high = 0.0
            self.partial = not adjacent
        self.bucket, self.count = bucket, n
        return change

    def _judge(self, bucket: int, count: int, p: RateSettings) -> RateChange | None:
        x = math.log(count)
        if not self.judged:
            self.level, self.judged = x, 1
            return None
        forecast = self.level + self.trend
        expected = math.exp(forecast)
        sd = math.sqrt(max(self.var, 1.0 / expected, _MIN_VAR))
        residual = x - forecast
        change = self._cusum(bucket, residual / sd, expected, count, p)
        if change is not None:
            self.level, self.trend = x, 0.0  # the new rate is the new normal
        else:
            clipped = max(-_CLIP * sd, min(_CLIP * sd, residual))
            alpha = p.alpha
            self.level = forecast + alpha * clipped
            self.trend += alpha * alpha * clipped
            beta = alpha * _VAR_SLOWER
            self.var = (1.0 - beta) * (self.var + beta * clipped * clipped)
        self.judged += 1
        return change

    def _cusum(
        self, bucket: int, z: float, expected: float, count: int, p: RateSettings
    ) -> RateChange | None:
        if self.quiet > 0 or self.judged < p.warmup_buckets or expected < p.min_count:
            self.quiet = max(0, self.quiet - 1)
            self.low = self.high = 0.0
            return None
        self.low = max(0.0, self.low - z - p.slack)
        self.high = max(0.0, self.high + z - p.slack)
        if self.low <= p.threshold and self.high <= p.threshold:
            return None
        direction = "down" if self.low > p.threshold else "up"
        self.low = self.high = 0.0
        self.quiet = p.cooldown_buckets
        return RateChange(bucket, direction, expected, count)

    def to_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE_FIELDS}

    @classmethod
    def from_state(cls, values: Any) -> Rate:
        """Checked: ``level`` and ``trend`` are logs of counts, and ``exp`` of their sum must
        not overflow on the next bucket (legitimate values stay below 50)."""
        rate, w = cls(), "rate state"
        bucket, count, partial, judged, level, trend, var, low, high, quiet = state.named(
            values, STATE_FIELDS, w
        )
        rate.bucket = state.optional_count(bucket, w, "bucket")
        rate.count, rate.judged = (
            state.count(count, w, "count"),
            state.count(judged, w, "judged"),
        )
        rate.partial, rate.quiet = (
            state.flag(partial, w, "partial"),
            state.count(quiet, w, "quiet"),
        )
        rate.level = state.number(level, w, "level", -_MAX_LOG, _MAX_LOG)
        rate.trend = state.number(trend, w, "trend", -_MAX_LOG, _MAX_LOG)
        rate.var = state.number(var, w, "var", 0.0)
        rate.low, rate.high = (
            state.number(low, w, "low", 0.0),
            state.number(high, w, "high", 0.0),
        )
        return rate
