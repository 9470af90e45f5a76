"""Offline replay: the production engine run over a file of events.

The worker and replay share :func:`streamproc.events.decode` and
:class:`streamproc.engine.Engine`, so the alert ids a backtest prints are the
ids production would publish for the same events in the same per-model order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from streamproc.alerts import Alert, Status
from streamproc.engine import Engine
from streamproc.events import Event, Rejection, decode, internal_rejection
from streamproc.logs import one_line
from streamproc.settings import Limits, Settings


@dataclass(slots=True)
class Summary:
    """Counts of one replay, for the closing report."""

    lines: int = 0
    events: int = 0
    updates: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Alerts by (model, stream kind)."""
    resolved: int = 0
    """Resolved messages (docs/alerts.md, Lifecycle): not counted as alerts."""

    def render(self) -> str:
        out = [
            f"lines: {self.lines}",
            f"events: {self.events}",
            f"detector updates: {self.updates}",
            f"rejections: {sum(self.rejections.values())}",
        ]
        out += [f"  {reason}: {n}" for reason, n in sorted(self.rejections.items())]
        out.append(f"resolved: {self.resolved}")
        out.append(f"alerts: {sum(self.alerts.values())}")
        out += [
            f"  {one_line(model)} {kind}: {n}" for (model, kind), n in sorted(self.alerts.items())
        ]
        return "\n".join(out)


def replay_engine(settings: Settings) -> Engine:
    """The engine a replay runs: ``settings``' engine, limits, arrival and labels, with the
    arrival monitor on event time (a file has no processing time; docs/arrival.md)."""
    return Engine(
        settings.engine,
        settings.limits,
        arrival=settings.arrival,
        arrival_clock="event",
        labels=settings.labels,
    )


OnAlert = Callable[[Alert], None]
OnRejection = Callable[[int, Rejection], None]


def replay(
    lines: Iterable[bytes],
    engine: Engine,
    limits: Limits,
    *,
    clock: Callable[[], int],
    on_alert: OnAlert,
    on_rejection: OnRejection,
    tick_ms: int | None = None,
) -> Summary:
    """Feed JSON lines through decode and the engine.

    ``clock`` gives the processing time in epoch ms (used for events without
    ``ts`` and as the alerts' detection time). Blank lines are skipped; every
    other line counts, and a bad one is passed to ``on_rejection`` with its
    1-based line number, never aborting the run. An exception while processing an event
    costs that event and its model's state (``internal_error``), as in the worker.

    With ``tick_ms``, the engine's arrival monitor runs on event time: whenever the
    latest ``ts`` seen has advanced by ``tick_ms``, the engine is ticked with it, so a
    model that falls silent is reported once other models' events carry time past its
    window (docs/arrival.md).
    """
    summary = Summary()
    ticks = _Ticks(engine, tick_ms)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        summary.lines += 1
        now = clock()
        decoded = decode(line, kind=None, received_ms=now, limits=limits)
        for rejection in decoded.rejections:
            _reject(summary, number, rejection, on_rejection)
        for event in decoded.events:
            for alert in ticks.advance(event):
                _alert(summary, alert, on_alert)
            try:
                result = engine.process(event, now, source=number)
            except Exception as exc:  # as in the worker: the event is refused, its model reset
                engine.forget([event.model])
                _reject(summary, number, internal_rejection(exc, event.model), on_rejection)
                continue
            for dead in result.dead_labels:  # reported at the label's own line
                rejection = Rejection(dead.reason, dead.message, model=dead.model)
                _reject(summary, dead.source, rejection, on_rejection)
            if result.rejection is not None:
                _reject(summary, number, result.rejection, on_rejection)
                continue
            summary.events += 1
            summary.updates += result.updates
            for alert in result.alerts:
                _alert(summary, alert, on_alert)
    return summary


class _Ticks:
    """Event time as replay's clock for the arrival monitor: the latest ``ts`` seen."""

    def __init__(self, engine: Engine, every_ms: int | None) -> None:
        self._engine = engine
        self._every = every_ms
        self._next: int | None = None

    def advance(self, event: Event) -> list[Alert]:
        if self._every is None or not event.ts_given:
            return []
        if self._next is None:
            self._next = event.ts + self._every
            return []
        if event.ts < self._next:
            return []
        self._next = event.ts + self._every
        return self._engine.tick(event.ts) + self._engine.evict_idle(event.ts).alerts


def _alert(summary: Summary, alert: Alert, on_alert: OnAlert) -> None:
    if alert.status is Status.RESOLVED:
        summary.resolved += 1
    else:
        summary.alerts[(alert.stream.model, alert.stream.kind.value)] += 1
    on_alert(alert)


def _reject(summary: Summary, number: int, rejection: Rejection, on_rejection: OnRejection) -> None:
    summary.rejections[rejection.reason.value] += 1
    on_rejection(number, rejection)
