"""The alert lifecycle: which alerts of a model are active, and when each is over.

A drift alert stays active until its stream has seen ``stable_events`` more events
without alerting again; the event that completes that span publishes a ``resolved``
message with the firing alert's id. So resolution depends only on the order of the
model's events, like detection, and ``replay`` resolves exactly where the worker does.

A stream that alerts again while active restarts its span: all its alerts since it
became active resolve together, when it has been stable for the span after the last
(at most :data:`MAX_ALERTS_PER_ENTRY` are held; beyond, the oldest resolve first). A silence
alert is active until the model sends again: its ``recovered`` alert (its own id, a
notice) comes with the silence alert's resolution. Rate and freshness alerts count
the model's feature events instead of a stream's.

Pure and per model, with no I/O; :mod:`streamproc.rollup` builds the model alert on top.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from streamproc import state
from streamproc.alerts import Alert, Status, StreamId, from_dict
from streamproc.domain import StreamKind
from streamproc.errors import StateError
from streamproc.settings.alerts import LifecycleSettings
from streamproc.streams import Stream

Key = tuple[StreamKind, str]
StreamOf = Callable[[StreamId], Stream | None]
"""The model's :class:`Stream` of an alert's stream id; None for arrival kinds."""

NEVER = -1
"""The span of an entry that only a later alert ends (silence: its ``recovered``)."""
MAX_MEMBERS = 64
"""Streams a model alert lists (the first to alert in its window)."""
MAX_ALERTS_PER_ENTRY = 4
"""Alerts a stream holds active (its re-fires since it became active; one per detector
with cooldown 0): beyond, the oldest resolve, so checkpoints stay bounded."""
_DRIFT_KINDS = frozenset(
    {
        StreamKind.VALUE,
        StreamKind.PREDICTION,
        StreamKind.MISSING_RATE,
        StreamKind.ERROR,
        StreamKind.CORRECTNESS,
    }
)


class Active:
    """One stream's active alerts: from its first alert until it is stable again."""

    __slots__ = ("alerts", "at", "since", "span", "stream")

    def __init__(
        self, alerts: tuple[Alert, ...], stream: Stream | None, since: int, span: int, at: int
    ) -> None:
        self.alerts = alerts
        """Its alerts since it became active, oldest first, as published."""
        self.stream = stream
        """Whose events count the span; None: the model's feature events."""
        self.since = since
        """The position (the stream's ``n``, or the model's events) of its last alert."""
        self.span = span
        """Events to stay stable for; :data:`NEVER` for silence."""
        self.at = at
        """The model's feature events at its last alert (for rollup windows)."""

    @property
    def drift(self) -> bool:
        """A drift stream's detection (what the rollup and the in-drift gauge count)."""
        return self.stream is not None


class Episode:
    """A model rollup alert and the members it waits for."""

    __slots__ = ("alert", "waiting")

    def __init__(self, alert: Alert, waiting: set[Key]) -> None:
        self.alert = alert
        self.waiting = waiting
        """Members not resolved yet: the model alert resolves when none is left."""


class Episodes:
    """A model's active alerts; created at its first alert, checkpointed with it."""

    __slots__ = ("active", "events", "rollup", "serial")

    def __init__(self) -> None:
        self.events = 0
        """Feature events of the model since this object was created (windows are relative)."""
        self.active: dict[Key, Active] = {}
        self.rollup: Episode | None = None
        self.serial = 0
        """Rollup alerts raised: the position in their ids."""

    def drifting(self) -> int:
        """Streams in drift now (for the gauge)."""
        return sum(1 for a in self.active.values() if a.stream is not None)


def close(episodes: Episodes, now_ms: int) -> list[Alert]:
    """Resolve the active alerts of a model about to be forgotten (idle): nothing will
    watch it afterwards, and an alert left firing would stay open in every sink. Its
    silence stays firing: the model is silent, and gone (its farewell alert says so)."""
    out = [
        resolved(a, now_ms)
        for key, entry in episodes.active.items()
        if key[0] is not StreamKind.ARRIVAL
        for a in entry.alerts
    ]
    if episodes.rollup is not None:
        out.append(resolved(episodes.rollup.alert, now_ms))
    episodes.active.clear()
    episodes.rollup = None
    return out


def resolved(alert: Alert, now_ms: int) -> Alert:
    """The resolution of ``alert``: the same message, ``resolved`` at ``now_ms``."""
    return dataclasses.replace(alert, status=Status.RESOLVED, resolved_at=now_ms)


class RollupHook(Protocol):
    """What :class:`Lifecycle` asks of the rollup (:class:`streamproc.rollup.Rollup`)."""

    def update(  # noqa: PLR0917
        self,
        episodes: Episodes,
        alerts: Sequence[Alert],
        ended: list[Key],
        event: tuple[str | None, int] | None,
        now_ms: int,
        streams: Callable[[], int],
        out: list[Alert],
    ) -> None: ...


class Lifecycle:
    """Applies the lifecycle (and the rollup on top) to one model's alerts."""

    def __init__(
        self, settings: LifecycleSettings, cooldown_events: int, rollup: RollupHook | None
    ) -> None:
        """``cooldown_events`` (the engine's) sets the span of rate and freshness alerts."""
        self._settings = settings
        self._publish = settings.enabled
        self._model_span = settings.span(cooldown_events)
        self.rollup = rollup

    def settle(  # noqa: PLR0917  (once per event with alerts or active ones)
        self,
        episodes: Episodes,
        alerts: Sequence[Alert],
        event: tuple[str | None, int] | None,
        now_ms: int,
        stream_of: StreamOf,
        streams: Callable[[], int],
    ) -> list[Alert]:
        """The messages for one event (``event`` is its id and time; None for a tick):
        its alerts, then resolutions, then a model alert or its resolution."""
        out = list(alerts)
        ended: list[Key] = []
        if alerts:
            self._register(episodes, alerts, now_ms, stream_of, out)
        if episodes.active:
            self._expire(episodes, now_ms, out, ended)
        rollup = self.rollup
        if rollup is not None:
            rollup.update(episodes, alerts, ended, event, now_ms, streams, out)
        return out if self._publish else [a for a in out if a.status is Status.FIRING]

    @staticmethod
    def due(episodes: Episodes) -> bool:
        """Whether an active alert's span is complete now: O(active alerts), no allocation."""
        events = episodes.events
        for entry in episodes.active.values():
            span = entry.span
            if span != NEVER:
                stream = entry.stream
                if (events if stream is None else stream.n) - entry.since >= span:
                    return True
        return False

    def _register(
        self,
        episodes: Episodes,
        alerts: Sequence[Alert],
        now_ms: int,
        stream_of: StreamOf,
        out: list[Alert],
    ) -> None:
        for key, group in _by_stream(alerts):
            kind = key[0]
            old = episodes.active.pop(key, None)
            if kind is StreamKind.ARRIVAL and group[0].change.direction == "up":
                if old is not None:  # recovered: the silence is over
                    out.extend(resolved(a, now_ms) for a in old.alerts)
                continue  # a notice, never active itself
            held = () if old is None else old.alerts
            if len(held) + len(group) > MAX_ALERTS_PER_ENTRY:  # bounded: the oldest give way
                cut = len(held) + len(group) - MAX_ALERTS_PER_ENTRY
                out.extend(resolved(a, now_ms) for a in held[:cut])
                held = held[cut:]
            stream = stream_of(group[0].stream) if kind in _DRIFT_KINDS else None
            if stream is not None:
                since, span = stream.n, self._settings.span(stream.cooldown)
            elif kind is StreamKind.ARRIVAL:
                since, span = episodes.events, NEVER
            else:
                since, span = episodes.events, self._model_span
            alerts_now = (*held, *group[-MAX_ALERTS_PER_ENTRY:])
            episodes.active[key] = Active(alerts_now, stream, since, span, episodes.events)

    @staticmethod
    def _expire(episodes: Episodes, now_ms: int, out: list[Alert], ended: list[Key]) -> None:
        """Resolve the entries whose span this event completed: O(active entries)."""
        events = episodes.events
        for key, entry in episodes.active.items():
            span = entry.span
            if span == NEVER:
                continue
            stream = entry.stream
            position = events if stream is None else stream.n
            if position - entry.since >= span:
                ended.append(key)
        for key in ended:
            entry = episodes.active.pop(key)
            out.extend(resolved(a, now_ms) for a in entry.alerts)


def _by_stream(alerts: Sequence[Alert]) -> list[tuple[Key, list[Alert]]]:
    """Alerts grouped by stream, in first-seen order (one group per detection)."""
    groups: dict[Key, list[Alert]] = {}
    for alert in alerts:
        if alert.status is Status.FIRING and alert.stream.kind is not StreamKind.MODEL:
            groups.setdefault((alert.stream.kind, alert.stream.name), []).append(alert)
    return list(groups.items())


# ---------------------------------------------------------------------------------------
# Checkpoints


def encode(episodes: Episodes) -> dict[str, Any]:
    """Named values from which :func:`decode` rebuilds ``episodes``."""
    rollup = episodes.rollup
    waiting = set() if rollup is None else rollup.waiting
    return {
        "events": episodes.events,
        "serial": episodes.serial,
        "active": [
            {
                "alerts": [a.to_dict() for a in e.alerts],
                "since": e.since,
                "span": e.span,
                "at": e.at,
            }
            for e in episodes.active.values()
        ],
        "rollup": None
        if rollup is None
        else {
            "alert": rollup.alert.to_dict(),
            "waiting": [
                i for i, m in enumerate(rollup.alert.members or ()) if _key(m.stream) in waiting
            ],
        },
    }


_FIELDS = ("events", "serial", "active", "rollup")
_ENTRY_FIELDS = ("alerts", "since", "span", "at")


def decode(model: str, values: object, stream_of: StreamOf, max_entries: int) -> Episodes:
    """Rebuild a model's episodes, checked throughout (StateError names the first fault):
    alerts of this model only, entries on streams it has, counts within range."""
    where = f"model {model!r}, lifecycle"
    events, serial, active, rollup = state.named(values, _FIELDS, where)
    episodes = Episodes()
    episodes.events = state.count(events, where, "events")
    episodes.serial = state.count(serial, where, "serial")
    if type(active) is not list or len(active) > max_entries:
        raise StateError(f"{where}: active must be a list of at most {max_entries}")
    for item in active:
        key, entry = _decode_entry(model, item, stream_of, episodes.events, where)
        if key in episodes.active:
            raise StateError(f"{where}: two entries for {key[0]}:{key[1][:40]!r}")
        episodes.active[key] = entry
    if rollup is not None:
        episodes.rollup = _decode_rollup(model, rollup, where)
    return episodes


def _decode_entry(
    model: str, item: object, stream_of: StreamOf, events: int, where: str
) -> tuple[Key, Active]:
    encoded, since, span, at = state.named(item, _ENTRY_FIELDS, where)
    if type(encoded) is not list or not 0 < len(encoded) <= MAX_ALERTS_PER_ENTRY:
        raise StateError(f"{where}: an entry needs 1 to {MAX_ALERTS_PER_ENTRY} alerts")
    alerts = tuple(decode_alert(model, a, where) for a in encoded)
    key = _key(alerts[0].stream)
    if any(_key(a.stream) != key for a in alerts) or key[0] is StreamKind.MODEL:
        raise StateError(f"{where}: an entry's alerts must share one drift or arrival stream")
    since = state.count(since, where, "since")
    at = state.count(at, where, "at")
    if type(span) is not int or span < NEVER or at > events:
        raise StateError(f"{where}: bad span {span!r} or position {at}")
    stream = stream_of(alerts[0].stream) if key[0] in _DRIFT_KINDS else None
    if key[0] in _DRIFT_KINDS and (stream is None or since > stream.n):
        raise StateError(f"{where}: no stream {key[0]}:{key[1][:40]!r} at position {since}")
    return key, Active(alerts, stream, since, span, at)


def _decode_rollup(model: str, values: object, where: str) -> Episode:
    encoded, waiting = state.named(values, ("alert", "waiting"), where)
    alert = decode_alert(model, encoded, where)
    members = alert.members
    if alert.stream.kind is not StreamKind.MODEL or members is None or len(members) > MAX_MEMBERS:
        raise StateError(f"{where}: the rollup must be a model alert with members")
    if type(waiting) is not list or not all(
        type(i) is int and 0 <= i < len(members) for i in waiting
    ):
        raise StateError(f"{where}: waiting must list member indices")
    return Episode(alert, {_key(members[i].stream) for i in waiting})


def decode_alert(model: str, body: object, where: str) -> Alert:
    """An alert of ``model`` from :meth:`Alert.to_dict` output, its numbers checked."""
    if type(body) is not dict:
        raise StateError(f"{where}: an alert must be a mapping")
    try:
        alert = from_dict(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"{where}: not an alert ({type(exc).__name__})") from exc
    if not _well_typed(alert):
        raise StateError(f"{where}: an alert field has the wrong type")
    if alert.stream.model != model or alert.status is not Status.FIRING:
        raise StateError(f"{where}: a firing alert of another model or state")
    for name in ("event_ts", "detected_at", "events_seen"):
        value = getattr(alert, name)
        if type(value) is not int or abs(value) > 2**63:
            raise StateError(f"{where}: {name} must be an integer")
    change = alert.change
    for name in ("mean_before", "mean_after", "scale", "magnitude"):
        state.optional_number(getattr(change, name), where, name)
    if not isinstance(alert.alert_id, str) or len(alert.alert_id) > 64:
        raise StateError(f"{where}: alert_id must be a short string")
    return alert


def _well_typed(alert: Alert) -> bool:
    """The types :func:`from_dict` leaves unchecked (it builds records, it does not validate)."""
    sids = [alert.stream, *(m.stream for m in alert.members or ())]
    texts = [alert.alert_id, *(m.alert_id for m in alert.members or ())]
    window = alert.change.window
    return (
        all(type(s.model) is str and type(s.name) is str for s in sids)
        and all(type(t) is str for t in texts)
        and (alert.event_id is None or type(alert.event_id) is str)
        and type(alert.detector) is dict
        and alert.change.direction in ("up", "down", "none")
        and (window is None or type(window) in (int, float))
        and type(alert.schema_version) is int
        and (alert.members is None or type(alert.members) is tuple)
    )


def _key(sid: StreamId) -> Key:
    return (sid.kind, sid.name)
