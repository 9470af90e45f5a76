"""Freshness: events of a model start arriving much later after their event time than usual.

The lag (processing time minus ``ts``, only for events whose producer sent a ``ts``) is
followed on a log scale, ``log(1 + seconds)``, by two exponentially weighted means: a
recent one (a few dozen events) and a baseline (about a thousand). An alert fires when
the recent lag is ``factor`` times the usual one (in ``1 + seconds``) and at least
``min_lag``, so a lag going from 10 ms to 200 ms, or one straggler, says nothing. It
clears, ready for the next incident, once the recent lag is back within half of that (on
the log scale); the baseline keeps learning, so a lateness that persists becomes the new
usual instead of a reason to alert again.

The lag is measured when the event *reached Kafka* (the record's timestamp, set by the
producer or the broker), not when the worker processed it: that is the upstream's
lateness, which a stuck batch job changes, and which a worker's own restart or backlog
does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from streamproc import state
from streamproc.settings import FreshnessSettings

STATE_FIELDS = ("n", "baseline", "recent", "late")
"""The keys of :meth:`Freshness.to_state`: its attributes, by name."""
_MAX_LOG_LAG = 700.0
"""Bound on restored lag means: expm1 of them stays finite."""


@dataclass(frozen=True, slots=True)
class FreshnessChange:
    usual_seconds: float
    recent_seconds: float


class Freshness:
    """Lag statistics of one model."""

    __slots__ = ("baseline", "late", "n", "recent")

    def __init__(self) -> None:
        self.n = 0
        """Lags measured."""
        self.baseline = 0.0
        """Weighted mean of log(1 + lag seconds) over the long span."""
        self.recent = 0.0
        """...over the short span."""
        self.late = False
        """An alert is out and the lag has not come back down."""

    def observe(self, ts: int, arrived: int, p: FreshnessSettings) -> FreshnessChange | None:
        """Measure one event's lag (``arrived`` - ``ts``); a change when the model just
        became late."""
        lag = arrived - ts
        y = math.log1p(lag / 1000.0) if lag > 0 else 0.0
        if not self.n:
            self.baseline = self.recent = y
        recent = self.recent = self.recent + p.recent_alpha * (y - self.recent)
        usual = self.baseline
        self.baseline = usual + p.baseline_alpha * (y - usual)
        self.n += 1
        excess = recent - usual
        if self.late:
            if excess < p.limit / 2 or recent < p.floor / 2:
                self.late = False
            return None
        if excess < p.limit or recent < p.floor or self.n < p.warmup_events:
            return None
        self.late = True
        return FreshnessChange(math.expm1(usual), math.expm1(recent))

    def to_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE_FIELDS}

    @classmethod
    def from_state(cls, values: Any) -> Freshness:
        """Checked: the means are of log(1 + seconds) >= 0, and an alert takes ``expm1`` of
        them, which must not overflow (legitimate values stay below 45)."""
        freshness, w = cls(), "freshness state"
        n, baseline, recent, late = state.named(values, STATE_FIELDS, w)
        freshness.n, freshness.late = state.count(n, w, "n"), state.flag(late, w, "late")
        freshness.baseline = state.number(baseline, w, "baseline", 0.0, _MAX_LOG_LAG)
        freshness.recent = state.number(recent, w, "recent", 0.0, _MAX_LOG_LAG)
        return freshness
