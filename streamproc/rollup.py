"""Model rollup: several streams of one model drifting together raise one ``model`` alert.

An upstream change (a join that broke, a unit that changed) moves many features of a
model at once; a person wants one alert that lists them, not one per stream. When a
stream alerts and at least ``needed`` streams of the model are in drift with their
latest alerts within ``window_events`` of the model's feature events, a ``model`` alert
lists them (stream ids and alert ids, in ``members``). One per episode: streams that alert
while it is open join it (the model alert is published again, same id, longer
``members``), and the next episode can only come once every member has resolved, which
resolves the model alert too.

The stream alerts are still published (programs read them); sinks send the model alert
instead of its members' (docs/alerts.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from streamproc.alerts import Alert, Change, Member, Severity, Status, StreamId, alert_id
from streamproc.domain import StreamKind
from streamproc.lifecycle import MAX_MEMBERS, Episode, Episodes, Key, resolved
from streamproc.settings.alerts import RollupSettings

ROLLUP = "rollup"
MODEL_STREAM = "model"
_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Rollup:
    """Raises and resolves a model's rollup alert; state lives in :class:`Episodes`."""

    def __init__(self, settings: RollupSettings) -> None:
        self._settings = settings
        self._params = settings.model_dump(exclude={"enabled"})

    def update(  # noqa: PLR0917  (called by Lifecycle.settle only)
        self,
        episodes: Episodes,
        alerts: Sequence[Alert],
        ended: list[Key],
        event: tuple[str | None, int] | None,
        now_ms: int,
        streams: Callable[[], int],
        out: list[Alert],
    ) -> None:
        """Append to ``out`` the model alert this event raises or resolves, if any."""
        episode = episodes.rollup
        if episode is not None:
            if ended:
                episode.waiting.difference_update(ended)
                if not episode.waiting:
                    episodes.rollup = None
                    out.append(resolved(episode.alert, now_ms))
                    return  # one episode at a time; none starts at the event that ended one
            grown = _joined(episode, alerts)
            if grown is not None:
                out.append(grown)
            return
        if event is None or not any(a.stream.kind in _DRIFT for a in alerts):
            return
        since = episodes.events - self._settings.window_events
        members = [
            (key, entry)
            for key, entry in episodes.active.items()
            if entry.drift and entry.at > since
        ]
        if len(members) < self._settings.needed(streams()):
            return
        members.sort(key=lambda m: m[1].at)
        members = members[:MAX_MEMBERS]
        alert = self._alert(episodes, [e.alerts[-1] for _, e in members], event, now_ms)
        episodes.rollup = Episode(alert, {key for key, _ in members})
        out.append(alert)

    def _alert(
        self,
        episodes: Episodes,
        firing: list[Alert],
        event: tuple[str | None, int],
        now_ms: int,
    ) -> Alert:
        model = firing[0].stream.model
        episodes.serial += 1
        sid = StreamId(model, StreamKind.MODEL, MODEL_STREAM)
        return Alert(
            alert_id=alert_id(sid, 0, ROLLUP, episodes.serial),
            stream=sid,
            detector={"type": ROLLUP, "params": self._params},
            event_id=event[0],
            event_ts=event[1],
            detected_at=now_ms,
            events_seen=max(1, episodes.events),
            change=Change(None, None, None, None, "none", self._settings.window_events),
            severity=max((a.severity for a in firing), key=_RANK.__getitem__),
            members=tuple(Member(a.stream, a.alert_id) for a in firing),
        )


def _joined(episode: Episode, alerts: Sequence[Alert]) -> Alert | None:
    """The model alert again, same id, when streams not yet listed alert during its episode:
    so a flood of 20 streams is one model alert with 20 members, which sinks update in
    place, not one listing the first few followed by each later stream's own page. A member
    that alerts again is waited for again; the model alert is re-sent only for new ones."""
    current = episode.alert
    listed = {(m.stream.kind, m.stream.name) for m in current.members or ()}
    new: list[Alert] = []
    for alert in alerts:
        if alert.stream.kind not in _DRIFT or alert.status is not Status.FIRING:
            continue
        key = (alert.stream.kind, alert.stream.name)
        episode.waiting.add(key)
        if key not in listed and len(listed) < MAX_MEMBERS:
            listed.add(key)
            new.append(alert)
    if not new:
        return None
    episode.alert = dataclasses.replace(
        current,
        members=(*(current.members or ()), *(Member(a.stream, a.alert_id) for a in new)),
        severity=max((current.severity, *(a.severity for a in new)), key=_RANK.__getitem__),
    )
    return episode.alert


_DRIFT = frozenset(
    {
        StreamKind.VALUE,
        StreamKind.PREDICTION,
        StreamKind.MISSING_RATE,
        StreamKind.ERROR,
        StreamKind.CORRECTNESS,
    }
)
