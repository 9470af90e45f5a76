"""Arrival alerts: the same :class:`~streamproc.alerts.Alert` record as drift alerts.

Ids stay deterministic: each is the UUIDv5 of the stream, a fixed detector slot, and a
position that the same input gives again. Silence and ``recovered`` use the model's
count of feature events at the time (they need their own slot names, since a model can
fall silent again at the count at which it recovered); rate alerts use the bucket index,
which depends on event time only, so the worker and ``replay`` agree on them.
"""

from __future__ import annotations

import math
from typing import Any

from streamproc.alerts import Alert, Change, Severity, StreamId, alert_id
from streamproc.arrival.freshness import FreshnessChange
from streamproc.arrival.rate import RateChange
from streamproc.domain import StreamKind
from streamproc.settings import RateSettings

SILENCE, RECOVERED, RATE, FRESHNESS = "silence", "recovered", "rate", "freshness"
EVENTS_STREAM, LAG_STREAM = "events", "lag"
_CRITICAL_LOG_RATIO = math.log(1.5)
"""A rate alert is critical when its bucket is off by a factor of 1.5 or more (a halving,
seen against a baseline that already started to follow it, is about 0.55)."""


def silence(
    model: str,
    params: dict[str, Any],
    *,
    recovered: bool,
    events: int,
    event: tuple[str | None, int],
    usual_ms: float,
    quiet_ms: int,
    window_ms: int,
    now: int,
) -> Alert:
    """The model has sent nothing for ``quiet_ms``, longer than its window (``event`` is its
    last one); or, ``recovered``, a model reported silent sent ``event`` after ``quiet_ms``."""
    stream = StreamId(model, StreamKind.ARRIVAL, EVENTS_STREAM)
    direction = "up" if recovered else "down"
    return Alert(
        alert_id=alert_id(stream, 0, RECOVERED if recovered else SILENCE, events),
        stream=stream,
        detector={"type": SILENCE, "params": params},
        event_id=event[0],
        event_ts=event[1],
        detected_at=now,
        events_seen=events,
        change=Change(
            usual_ms / 1000, quiet_ms / 1000, None, None, direction, round(window_ms / 1000)
        ),
        severity=Severity.INFO if recovered else Severity.CRITICAL,
    )


def rate(
    model: str,
    change: RateChange,
    p: RateSettings,
    *,
    events: int,
    event: tuple[str | None, int],
    now: int,
) -> Alert:
    """A bucket tipped the rate CUSUM; rates are reported in events per second."""
    stream = StreamId(model, StreamKind.RATE, EVENTS_STREAM)
    seconds = p.bucket_ms / 1000
    before, after = change.expected / seconds, change.count / seconds
    ratio = change.count / change.expected
    return Alert(
        alert_id=alert_id(stream, 0, RATE, change.bucket),
        stream=stream,
        detector={"type": RATE, "params": p.describe()},
        event_id=event[0],
        event_ts=event[1],
        detected_at=now,
        events_seen=events,
        change=Change(before, after, None, None, change.direction, None),
        severity=Severity.CRITICAL
        if abs(math.log(ratio)) >= _CRITICAL_LOG_RATIO
        else Severity.WARNING,
    )


def freshness(
    model: str,
    change: FreshnessChange,
    params: dict[str, Any],
    *,
    events: int,
    event: tuple[str | None, int],
    now: int,
) -> Alert:
    """The model's recent events arrive much later after their event time than usual."""
    stream = StreamId(model, StreamKind.FRESHNESS, LAG_STREAM)
    return Alert(
        alert_id=alert_id(stream, 0, FRESHNESS, events),
        stream=stream,
        detector={"type": FRESHNESS, "params": params},
        event_id=event[0],
        event_ts=event[1],
        detected_at=now,
        events_seen=events,
        change=Change(change.usual_seconds, change.recent_seconds, None, None, "up", None),
        severity=Severity.WARNING,
    )
