"""What a drift alert says changed, and how severe that is: one rule per stream kind.

Kept out of :mod:`streamproc.streams` (which detects) so that the wording of an alert,
pinned by tests and tabulated in docs/alerts.md, lives in one small place.

Rates (``missing_rate``, ``correctness``, and the ``error`` stream, whose values are
0/1 misclassifications or an error rate) speak in rate units: their ``magnitude`` is
``mean_after - mean_before`` (0.19 is 19 percentage points) and their ``scale`` is null,
because a warm-up standard deviation of a 0/1 stream (or the 1.0 put in place of a zero
one) says nothing a reader can use. Other numeric streams speak in warm-up standard
deviations.
"""

from __future__ import annotations

from streamproc.alerts import Change, Severity, StreamId
from streamproc.domain import StreamKind

CRITICAL_SD = 2.0
"""A shift of this many warm-up standard deviations or more is critical."""
CRITICAL_RATIO = 2.0
"""A bad rate (missing, error, 1 - correctness) that grows by this factor is critical."""


def is_rate(sid: StreamId) -> bool:
    """Whether the stream's values are a 0/1 rate (docs/alerts.md, Severity)."""
    kind = sid.kind
    return kind in (StreamKind.MISSING_RATE, StreamKind.CORRECTNESS) or (
        kind is StreamKind.ERROR and sid.name == "error"
    )


def summarize(
    sid: StreamId, before: float | None, after: float | None, sd: float | None, window: int | None
) -> Change:
    """The change from ``before`` (the reference regime) to ``after`` (the recent one)."""
    direction = "none"
    if before is not None and after is not None and after != before:
        direction = "up" if after > before else "down"
    if is_rate(sid):
        magnitude = after - before if before is not None and after is not None else None
        return Change(before, after, None, magnitude, direction, window)
    magnitude = None
    if before is not None and after is not None and sd:
        magnitude = (after - before) / sd
    return Change(before, after, sd, magnitude, direction, window)


def severity(sid: StreamId, change: Change) -> Severity:
    """One rule per stream kind (the table in docs/alerts.md):

    - a rate: ``info`` when the bad rate fell, ``critical`` when it at least doubled (from
      zero: any rise), else ``warning``; the bad rate is the missing or error rate, and
      ``1 - correctness``;
    - ``loss``: ``info`` when it fell, else by size as for values;
    - ``value`` and ``prediction``: ``critical`` from 2 standard deviations either way,
      else ``warning``.
    """
    kind = sid.kind
    if is_rate(sid):
        if change.mean_before is None or change.mean_after is None:
            return Severity.WARNING
        flip = kind is StreamKind.CORRECTNESS
        base = 1.0 - change.mean_before if flip else change.mean_before
        worse = 1.0 - change.mean_after if flip else change.mean_after
        if worse < base:
            return Severity.INFO
        return (
            Severity.CRITICAL
            if worse > base and worse >= CRITICAL_RATIO * base
            else (Severity.WARNING)
        )
    if kind is StreamKind.ERROR and change.direction == "down":
        return Severity.INFO
    if change.magnitude is not None and abs(change.magnitude) >= CRITICAL_SD:
        return Severity.CRITICAL
    return Severity.WARNING
