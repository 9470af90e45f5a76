"""Alerts in words, one line each, for people: the ``alerts`` and ``replay`` commands.

Kept apart from :mod:`streamproc.alerts` (the record and its wire format) so that the
record's module knows nothing of the kinds of alert built on it, such as
:mod:`streamproc.arrival.alerting`'s.
"""

from __future__ import annotations

from streamproc.alerts import Alert, Status
from streamproc.domain import StreamKind
from streamproc.logs import one_line

_ARRIVAL_KINDS = frozenset({StreamKind.ARRIVAL, StreamKind.RATE, StreamKind.FRESHNESS})


def summarize(alert: Alert) -> str:
    """One human-readable line per alert, its names escaped so none can break the line."""
    change = alert.change
    if alert.stream.kind in _ARRIVAL_KINDS:
        what = _arrival_what(alert)
    elif change.categories:
        what = "shares " + ", ".join(
            f"{c.category} {c.share_before:.1%} -> {c.share_after:.1%}"
            for c in change.categories[:3]
        )
    elif change.mean_before is not None and change.mean_after is not None:
        what = f"mean {change.mean_before:.4g} -> {change.mean_after:.4g}"
        if change.magnitude is not None and change.scale is None:  # a rate: points
            what += f" ({100 * change.magnitude:+.1f} pp)"
        elif change.magnitude is not None:
            what += f" ({change.magnitude:+.2f} sd)"
    else:
        what = f"direction {change.direction}"
    stream = alert.stream
    if alert.members is not None:
        what = f"{len(alert.members)} streams drifted together: " + ", ".join(
            f"{m.stream.kind.value}:{m.stream.name}" for m in alert.members[:5]
        )
    done = "RESOLVED " if alert.status is Status.RESOLVED else ""
    return one_line(
        f"{done}[{alert.severity.value.upper()}] model={stream.model} "
        f"{stream.kind.value}:{stream.name} "
        f"detector={alert.detector.get('type')} {what} after {alert.events_seen} events "
        f"(event {alert.event_id or '-'}, id {alert.alert_id[:8]})"
    )


def _arrival_what(alert: Alert) -> str:
    """The change of an arrival alert in words, for :func:`summarize`."""
    c = alert.change
    before, after = c.mean_before or 0.0, c.mean_after or 0.0
    kind = alert.stream.kind
    if kind is StreamKind.ARRIVAL and c.direction == "up":
        return f"recovered: sending again after {after:.0f} s of silence"
    if kind is StreamKind.ARRIVAL:
        return f"silent: no events for {after:.0f} s (window {c.window} s)"
    if kind is StreamKind.RATE:
        return f"rate {before:.3g} -> {after:.3g} events/s"
    return f"lag {before:.3g} s -> {after:.3g} s"
