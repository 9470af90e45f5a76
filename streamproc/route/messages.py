"""What the router reads from the alerts topic: the alert contract, firing or resolved.

The router parses leniently on purpose. The worker's alerts parse with
:func:`streamproc.alerts.from_json`; messages of newer contracts (a ``model``
rollup alert, a ``resolved`` message, fields added without a version bump)
must still be delivered, so only the fields the sinks need are required here,
and everything else travels on as the original bytes. A message without them
is a :class:`Unroutable` value, dead-lettered, never a crash.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from streamproc.alerts import from_json
from streamproc.summaries import summarize

MODEL_KIND = "model"
"""``stream.kind`` of a model rollup alert, which lists the streams it covers."""

FIRING = "firing"
RESOLVED = "resolved"

_DELIVERY_NAMESPACE = uuid.UUID("0c5b3f2a-7d0e-5a44-8f6b-2e9c41d7a311")
"""UUIDv5 namespace of delivery ids; changing it would change every id."""

_MEMBER_KEYS = ("members", "member_streams", "streams")
"""Where a model alert may list the streams it covers (the first present wins)."""


class Unroutable(ValueError):
    """A message on the alerts topic lacks what a sink needs; it is dead-lettered."""


@dataclass(frozen=True, slots=True)
class StreamRef:
    """One stream of a model, as a model alert lists it."""

    kind: str
    """Stream kind (``value``, ``error``, ...)."""
    name: str
    """Stream name."""


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    """One message of the alerts topic, with what the sinks and the grouping need."""

    alert_id: str
    """The alert's id; a resolved message carries the id of the alert it ends."""
    model: str
    """Model id (the Kafka key)."""
    kind: str
    """Stream kind, ``model`` for a rollup alert."""
    stream: str
    """Stream name."""
    detector: str
    """Detector type, or ``""`` when the message has none."""
    severity: str
    """``info``, ``warning`` or ``critical``."""
    status: str
    """``firing`` or ``resolved`` (absent in the message: firing)."""
    detected_at: int
    """Epoch ms of the detection: Alertmanager's ``startsAt``."""
    resolved_at: int | None
    """Epoch ms of the resolution, for resolved messages."""
    summary: str
    """One human-readable line."""
    change: dict[str, Any]
    """The ``change`` object as published."""
    covers: frozenset[StreamRef]
    """For a model alert: the member streams it stands for."""
    covers_ids: frozenset[str]
    """For a model alert: member alert ids, when it lists them."""
    body: bytes
    """The message exactly as published (what the webhook posts)."""

    @property
    def is_model_alert(self) -> bool:
        return self.kind == MODEL_KIND

    @property
    def delivery_id(self) -> str:
        """The same for every delivery of one alert's firing (or resolved) message. A model
        alert is published again, same id, as streams join its episode: each version (by its
        number of members) is a delivery of its own, so the sinks get the update."""
        parts: list[object] = [self.alert_id, self.status]
        if self.is_model_alert:
            parts.append(len(self.covers))
        return str(uuid.uuid5(_DELIVERY_NAMESPACE, orjson.dumps(parts).decode()))

    def covered_by(self, model_alert: RoutedAlert) -> bool:
        """Whether ``model_alert`` stands for this stream alert."""
        return (
            model_alert.is_model_alert
            and not self.is_model_alert
            and self.model == model_alert.model
            and (
                self.alert_id in model_alert.covers_ids
                or StreamRef(self.kind, self.stream) in model_alert.covers
            )
        )


def parse(payload: bytes | None) -> RoutedAlert:
    """The routed view of one message; raises :class:`Unroutable` saying what is missing."""
    if not payload:
        raise Unroutable("empty message")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Unroutable(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Unroutable("not a JSON object")
    try:
        return _routed(body, payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise Unroutable(f"not an alert: {type(exc).__name__}: {exc}") from None


def _routed(body: dict[str, Any], payload: bytes) -> RoutedAlert:
    stream = body["stream"]
    status = str(body.get("status") or FIRING)
    if status not in (FIRING, RESOLVED):
        raise ValueError(f"status {status!r} is neither firing nor resolved")
    detector = body.get("detector")
    members: list[Any] = next((body[k] for k in _MEMBER_KEYS if isinstance(body.get(k), list)), [])
    refs, ids = _members(members)
    resolved_at = body.get("resolved_at")
    return RoutedAlert(
        alert_id=_text(body, "alert_id"),
        model=str(body.get("model") or stream["model"]),
        kind=str(stream["kind"]),
        stream=str(stream["name"]),
        detector=str(detector.get("type", "")) if isinstance(detector, dict) else "",
        severity=str(body.get("severity") or "warning"),
        status=status,
        detected_at=int(body.get("detected_at") or body.get("event_ts") or 0),
        resolved_at=int(resolved_at) if resolved_at is not None else None,
        summary=_summary(body, payload),
        change=body["change"] if isinstance(body.get("change"), dict) else {},
        covers=frozenset(refs),
        covers_ids=frozenset(ids),
        body=payload,
    )


def _text(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _members(members: list[Any]) -> tuple[list[StreamRef], list[str]]:
    """Member streams as refs, and member alert ids, in whichever form the list uses."""
    refs: list[StreamRef] = []
    ids: list[str] = []
    for member in members:
        if isinstance(member, str):
            ids.append(member)
            continue
        if not isinstance(member, dict):
            continue
        nested = member.get("stream")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else member
        if "kind" in inner and "name" in inner:
            refs.append(StreamRef(str(inner["kind"]), str(inner["name"])))
        if isinstance(member.get("alert_id"), str):
            ids.append(member["alert_id"])
    return refs, ids


def _summary(body: dict[str, Any], payload: bytes) -> str:
    """The worker's one-line summary when the alert parses as one, else a generic line."""
    if isinstance(body.get("summary"), str):
        return str(body["summary"])
    try:
        return summarize(from_json(payload))
    except (KeyError, TypeError, ValueError):
        stream = body["stream"]
        return (
            f"[{str(body.get('severity', 'warning')).upper()}] model={stream['model']} "
            f"{stream['kind']}:{stream['name']} (id {str(body.get('alert_id', ''))[:8]})"
        )
