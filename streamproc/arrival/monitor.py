"""The arrival monitor: silence, rate and freshness of every model, pure and clock-driven.

The engine owns one and keeps each model's :class:`ModelArrival` next to the model's
drift streams, so arrival state rides in the engine's snapshots and checkpoints. Feature
events feed it (:meth:`ArrivalMonitor.observe`); outcomes do not, since labels arrive on
their own schedule, often hours later. Silence needs time to pass without events, so the
caller also calls :meth:`ArrivalMonitor.tick` now and then.

Which clock: the worker passes processing time (its wall clock). ``replay`` has none and
runs the monitor on event time (``clock="event"``): events without a ``ts`` are not
watched there, freshness and the future check are off (the lag would be zero), and
silence is noticed when event time, advanced by any model's events, passes the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from streamproc import state
from streamproc.alerts import Alert
from streamproc.arrival import alerting
from streamproc.arrival.freshness import Freshness, FreshnessChange
from streamproc.arrival.rate import Rate, RateChange
from streamproc.arrival.silence import Silence
from streamproc.errors import StateError
from streamproc.events import Event, FeatureEvent, Reason, Rejection
from streamproc.settings import ArrivalPolicy, ArrivalSettings, RateSettings, SilenceSettings

ArrivalClock = Literal["processing", "event"]
STATE_FIELDS = ("events", "silence", "rate", "freshness")
"""The keys of a model's arrival state in a snapshot."""
STALL_TICKS = 5
"""A tick this many intervals (and at least 5 s) late means this process itself was stalled:
like after a restart, silence is then measured from that tick, not from before the stall."""


class ModelArrival:
    """Arrival state of one model."""

    __slots__ = ("events", "freshness", "policy", "rate", "silence")

    def __init__(self, policy: ArrivalPolicy) -> None:
        self.policy = policy
        self.events = 0
        """Feature events watched: the position of silence, recovered and freshness alerts."""
        self.silence = Silence()
        self.rate = Rate()
        self.freshness = Freshness()

    def to_state(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "silence": self.silence.to_state(),
            "rate": self.rate.to_state(),
            "freshness": self.freshness.to_state(),
        }


class ArrivalMonitor:
    """Builds, feeds and ticks :class:`ModelArrival` states; holds configuration and the time
    of its last tick, never a model's state."""

    def __init__(self, settings: ArrivalSettings, clock: ArrivalClock = "processing") -> None:
        self._settings = settings
        self._event_time = clock == "event"
        self._max_future_ms = round(settings.max_future_seconds * 1000)
        self._stall_ms = max(5000, STALL_TICKS * max(1, round(settings.tick_seconds * 1000)))
        self._last_tick: int | None = None
        self._rate = settings.rate
        self._freshness = settings.freshness
        self._freshness_described = settings.freshness.describe()

    @property
    def rate_params(self) -> RateSettings:
        return self._rate

    def silence_params(self, model: str) -> SilenceSettings:
        """The silence settings ``model`` gets (for measurements and tests)."""
        return self._policy(model).silence

    def check(self, event: Event, now_ms: int) -> Rejection | None:
        """Refuse an event whose ``ts`` lies too far ahead of processing time.

        Here, not in decoding: the reference must be this process's clock. The Kafka record
        time ``decode`` has is usually set by the producer, whose clock may be the wrong one.
        """
        if self._event_time or not event.ts_given:
            return None
        ahead = event.ts - now_ms
        if ahead <= self._max_future_ms:
            return None
        limit = self._settings.max_future_seconds
        return Rejection(
            Reason.FUTURE_TIMESTAMP,
            f"ts: {ahead / 1000:.0f} s ahead of processing time; the limit is "
            f"arrival.max_future_seconds={limit:g}",
            model=event.model,
        )

    def new(self, model: str) -> ModelArrival:
        return ModelArrival(self._policy(model))

    def observe(
        self, model: ModelArrival, event: FeatureEvent, now_ms: int, arrived_ms: int | None = None
    ) -> list[Alert]:
        """Feed one accepted feature event; returns the alerts it completes (usually none).

        ``arrived_ms`` is when the event reached Kafka (its record timestamp), for freshness;
        without it, the processing time stands in."""
        if self._event_time:
            if not event.ts_given:
                return []
            now_ms = event.ts
        model.events += 1
        policy, ts, silence = model.policy, event.ts, model.silence
        quiet = silence.observe(ts, event.id, now_ms, policy.silence)
        change = model.rate.add(ts, self._rate) if policy.rate else None
        late = None
        if policy.freshness and event.ts_given and not self._event_time:
            arrived = now_ms if arrived_ms is None else arrived_ms
            late = model.freshness.observe(ts, arrived, self._freshness)
        if quiet is None and change is None and late is None:
            return []
        return self._alerts(model, event, now_ms, quiet=quiet, change=change, late=late)

    def _alerts(
        self,
        model: ModelArrival,
        event: FeatureEvent,
        now_ms: int,
        *,
        quiet: int | None,
        change: RateChange | None,
        late: FreshnessChange | None,
    ) -> list[Alert]:
        name, ident, events = event.model, (event.id, event.ts), model.events
        alerts = []
        if quiet is not None:
            silence, params = model.silence, model.policy.silence
            alerts.append(
                alerting.silence(
                    name,
                    model.policy.silence.described,
                    recovered=True,
                    events=events,
                    event=ident,
                    usual_ms=silence.longest_ms(params),
                    quiet_ms=quiet,
                    window_ms=silence.window_ms(params),
                    now=now_ms,
                )
            )
        if change is not None:
            alerts.append(
                alerting.rate(name, change, self._rate, events=events, event=ident, now=now_ms)
            )
        if late is not None:
            described = self._freshness_described
            alerts.append(
                alerting.freshness(name, late, described, events=events, event=ident, now=now_ms)
            )
        return alerts

    def tick(
        self,
        models: Iterable[tuple[str, ModelArrival]],
        now_ms: int,
        failed: list[tuple[str, Exception]] | None = None,
    ) -> list[Alert]:
        """At clock time ``now_ms``: a silence alert for every model that just fell silent.

        With ``failed``, a model whose check raises is listed there instead of stopping the
        check of every later model (the caller resets its state)."""
        if self._stalled(now_ms):
            for _, model in models:
                model.silence.anchor = now_ms
            return []
        alerts = []
        for name, model in models:
            try:
                alert = self._silence(name, model, now_ms)
            except Exception as exc:
                if failed is None:
                    raise
                failed.append((name, exc))
                continue
            if alert is not None:
                alerts.append(alert)
        return alerts

    def farewell(self, name: str, model: ModelArrival, now_ms: int) -> Alert | None:
        """The silence alert of a model about to be forgotten for being idle, unless one is
        already out (or it never sent): whatever its silence settings, since nothing will
        watch it afterwards."""
        silence = model.silence
        if silence.silent or silence.last_ms is None:
            return None
        silence.silent = True
        return self._silence_alert(name, model, now_ms - silence.last_ms, now_ms)

    def _silence(self, name: str, model: ModelArrival, now_ms: int) -> Alert | None:
        policy = model.policy
        if not policy.silence.enabled:
            return None
        quiet = model.silence.check(now_ms, policy.silence)
        if quiet is None:
            return None
        return self._silence_alert(name, model, quiet, now_ms)

    @staticmethod
    def _silence_alert(name: str, model: ModelArrival, quiet_ms: int, now_ms: int) -> Alert:
        policy, silence = model.policy, model.silence
        return alerting.silence(
            name,
            policy.silence.described,
            recovered=False,
            events=model.events,
            event=(silence.last_id, silence.last_ts or 0),
            usual_ms=silence.longest_ms(policy.silence),
            quiet_ms=quiet_ms,
            window_ms=silence.window_ms(policy.silence),
            now=now_ms,
        )

    def _stalled(self, now_ms: int) -> bool:
        """Whether ticks stopped for a while (event loop blocked): the time in between is not
        a time in which this process watched, so it must not count as any model's silence.
        On event time (replay) gaps between ticks are the data's, never a stall."""
        last, self._last_tick = self._last_tick, now_ms
        return not self._event_time and last is not None and now_ms - last > self._stall_ms

    def restore(self, name: str, values: Any) -> ModelArrival:
        """Rebuild a model's state from :meth:`ModelArrival.to_state` output, under the
        current configuration. Not restored: when this process began watching it."""
        where = f"model {name!r}: arrival state"
        events, silence, rate, freshness = state.named(values, STATE_FIELDS, where)
        model = self.new(name)
        model.events = state.count(events, where, "events")
        try:
            model.silence = Silence.from_state(silence)
            model.rate = Rate.from_state(rate)
            model.freshness = Freshness.from_state(freshness)
        except StateError as exc:
            raise StateError(f"{where}: {exc}") from exc
        return model

    def _policy(self, model: str) -> ArrivalPolicy:
        return self._settings.policy(model)
