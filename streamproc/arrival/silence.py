"""Silence: a model that was sending has sent nothing for longer than its silence window.

The window comes from the model's own rhythm: ``factor`` times the longest gap between
its events recently (a maximum that halves every ``memory``, so yesterday's outage does
not set today's window), kept between a floor and a ceiling, unless configured outright.
A longest gap rather than a mean, because producers often send in batches: a model that
sends 100 events every five minutes has a mean gap of three seconds and is not silent
after ten.

The clock is the caller's (the worker's wall clock; event time in ``replay``). Silence is
measured from the later of the model's last event and ``anchor``, the moment this
process began watching the model (restored it from a checkpoint, or saw it first): after
the worker itself was down, a model that is still sending produces an event within its
window, so only the models that really stopped alert.
"""

from __future__ import annotations

from typing import Any

from streamproc import state
from streamproc.settings import SilenceSettings

STATE_FIELDS = ("last_ms", "last_ts", "last_id", "longest", "longest_at", "gaps", "silent")
"""The keys of :meth:`Silence.to_state`: its attributes, by name."""


class Silence:
    """When a model last sent and how long it may stay quiet. Not persisted: ``anchor``."""

    __slots__ = (
        "anchor",
        "gaps",
        "last_id",
        "last_ms",
        "last_ts",
        "longest",
        "longest_at",
        "silent",
    )

    def __init__(self) -> None:
        self.anchor: int | None = None
        """Clock time at which this process began watching the model (not persisted)."""
        self.last_ms: int | None = None
        """Clock time of the model's last event."""
        self.last_ts: int | None = None
        """Latest event time seen (gaps are measured on event time, immune to lag)."""
        self.last_id: str | None = None
        """Id of the model's last event, named in a silence alert."""
        self.longest = 0.0
        """Longest recent gap in ms as of ``longest_at``; it decays from there with the
        configured half-life (computed when needed, not per event)."""
        self.longest_at = 0
        """Event time at which ``longest`` was taken."""
        self.gaps = 0
        """Gaps measured so far."""
        self.silent = False
        """A silence alert is out and the model has not sent since."""

    def window_ms(self, p: SilenceSettings) -> int:
        """How long the model may stay quiet before it counts as silent."""
        if p.fixed_ms is not None:
            return p.fixed_ms
        if self.gaps < p.min_gaps:
            return p.ceiling_ms
        return int(min(p.ceiling_ms, max(p.floor_ms, p.factor * self.longest_ms(p))))

    def longest_ms(self, p: SilenceSettings) -> float:
        """The longest recent gap, decayed to the latest event time."""
        age = (self.last_ts or 0) - self.longest_at
        return self.longest * 0.5 ** (age / p.memory_ms) if age > 0 else self.longest

    def observe(self, ts: int, event_id: str | None, now: int, p: SilenceSettings) -> int | None:
        """Record an event; returns how long the model had been quiet when it ends an alerted
        silence (then a ``recovered`` alert is due), else None."""
        if self.anchor is None:
            self.anchor = now
        last_ts = self.last_ts
        if last_ts is None or ts > last_ts:
            if last_ts is not None and not self.silent:  # an outage is not the model's rhythm
                gap = ts - last_ts
                self.gaps += 1
                if 2 * gap > self.longest or ts - self.longest_at > p.memory_ms:
                    self._remember(gap, ts, p)
                # else: decayed by less than half, the longest is still longer (the usual case)
            self.last_ts = ts
        quiet = None
        if self.silent:
            self.silent = False
            quiet = now - (self.last_ms if self.last_ms is not None else now)
        self.last_ms, self.last_id = now, event_id
        return quiet

    def _remember(self, gap: int, ts: int, p: SilenceSettings) -> None:
        current = self.longest * 0.5 ** ((ts - self.longest_at) / p.memory_ms)
        self.longest, self.longest_at = max(float(gap), current), ts

    def check(self, now: int, p: SilenceSettings) -> int | None:
        """At clock time ``now``: how long since the model's last event, when its silence just
        exceeded the window (it is then marked silent, so one silence gives one alert)."""
        if self.anchor is None:
            self.anchor = now  # first look after a restore: the restart rule's starting point
            return None
        if self.silent or self.last_ms is None:
            return None
        quiet = now - max(self.last_ms, self.anchor)
        if quiet <= self.window_ms(p):
            return None
        self.silent = True
        return now - self.last_ms

    def to_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE_FIELDS}

    @classmethod
    def from_state(cls, values: Any) -> Silence:
        """Checked: times are non-negative integers, the longest gap a finite duration."""
        silence, w = cls(), "silence state"
        last_ms, last_ts, last_id, longest, longest_at, gaps, silent = state.named(
            values, STATE_FIELDS, w
        )
        silence.last_ms = state.optional_count(last_ms, w, "last_ms")
        silence.last_ts = state.optional_count(last_ts, w, "last_ts")
        silence.last_id = state.optional_text(last_id, w, "last_id")
        silence.longest = state.number(longest, w, "longest", 0.0)
        silence.longest_at = state.count(longest_at, w, "longest_at")
        silence.gaps, silence.silent = (
            state.count(gaps, w, "gaps"),
            state.flag(silent, w, "silent"),
        )
        return silence
