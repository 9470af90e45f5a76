"""The Alertmanager sink: ``POST /api/v2/alerts`` to every configured Alertmanager.

Each alert becomes one Alertmanager alert whose labels identify the stream
(``alertname`` per kind: ``StreamprocDrift``, ``StreamprocArrival``,
``StreamprocModel``), so Alertmanager groups, silences and inhibits on them and
a resolved message (same labels, ``endsAt`` = ``resolved_at``) ends it. A firing
alert ends ``ttl`` seconds after its detection unless resolved earlier: drift
alerts are events, not states, and most are never resolved.

An HA pair gets every alert at every URL, as Prometheus does; the delivery
counts as done once one Alertmanager accepted it (the pair de-duplicates its
notifications), and is retried while none did.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from streamproc.route.delivery import Delivered, Failed, Outcome, Rejected, http_outcome
from streamproc.route.messages import RESOLVED, RoutedAlert
from streamproc.settings.route import RouteSettings

ALERTNAMES = {"model": "StreamprocModel", "arrival": "StreamprocArrival"}
"""``alertname`` per stream kind; every other kind is a drift alert."""
DRIFT_ALERTNAME = "StreamprocDrift"
ARRIVAL_KINDS = frozenset({"arrival", "rate", "freshness"})

LABELS_MEMORY = 100_000
"""Firing alerts whose labels are remembered, so their resolution matches them exactly."""


def alertname(kind: str) -> str:
    if kind in ARRIVAL_KINDS:
        return ALERTNAMES["arrival"]
    return ALERTNAMES.get(kind, DRIFT_ALERTNAME)


def labels(alert: RoutedAlert) -> dict[str, str]:
    """The documented label set (docs/operations.md#routing-alerts)."""
    return {
        "alertname": alertname(alert.kind),
        "model": alert.model,
        "stream_kind": alert.kind,
        "stream": alert.stream,
        "detector": alert.detector,
        "severity": alert.severity,
    }


def rfc3339(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def to_alertmanager(
    alert: RoutedAlert, ttl_seconds: float, now_ms: int, label_set: dict[str, str] | None = None
) -> dict[str, Any]:
    """One entry of the ``POST /api/v2/alerts`` body."""
    if alert.status == RESOLVED:
        ends = alert.resolved_at if alert.resolved_at is not None else now_ms
    else:
        ends = alert.detected_at + int(ttl_seconds * 1000)
    # Alertmanager refuses (400) an alert that ends before it starts: a resolution stamped
    # by a clock behind the detector's must still end the alert, not be dead-lettered.
    ends = max(ends, alert.detected_at + 1)
    return {
        "labels": label_set or labels(alert),
        "annotations": {
            "summary": alert.summary,
            "alert_id": alert.alert_id,
            "change": orjson.dumps(alert.change, option=orjson.OPT_SORT_KEYS).decode(),
        },
        "startsAt": rfc3339(alert.detected_at),
        "endsAt": rfc3339(ends),
    }


def basic_auth(username: str, password: str) -> str:
    """RFC 7617 credentials (aiohttp's BasicAuth is deprecated for this)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def auth_headers(settings: RouteSettings) -> dict[str, str]:
    """The Authorization header for the configured auth (unwrapped here, never logged)."""
    if settings.alertmanager_bearer_token is not None:
        return {"Authorization": f"Bearer {settings.alertmanager_bearer_token.get_secret_value()}"}
    if settings.alertmanager_username and settings.alertmanager_password is not None:
        return {
            "Authorization": basic_auth(
                settings.alertmanager_username, settings.alertmanager_password.get_secret_value()
            )
        }
    return {}


class AlertmanagerSink:
    """Posts alerts to every Alertmanager of ``urls``."""

    name = "alertmanager"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        *,
        headers: dict[str, str],
        timeout: float,
        ttl_seconds: float,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._session = session
        self._urls = tuple(f"{url.rstrip('/')}/api/v2/alerts" for url in urls)
        self._headers = {"Content-Type": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ttl = ttl_seconds
        self._now_ms = now_ms or (lambda: int(datetime.now(UTC).timestamp() * 1000))
        self._labels: OrderedDict[str, dict[str, str]] = OrderedDict()

    @classmethod
    def from_settings(
        cls, session: aiohttp.ClientSession, settings: RouteSettings
    ) -> AlertmanagerSink:
        return cls(
            session,
            settings.alertmanager_url_list,
            headers=auth_headers(settings),
            timeout=settings.request_timeout_seconds,
            ttl_seconds=settings.alert_ttl_seconds,
        )

    async def send(self, alert: RoutedAlert) -> Outcome:
        body = orjson.dumps([to_alertmanager(alert, self._ttl, self._now_ms(), self._known(alert))])
        outcomes = [await self._post(url, body) for url in self._urls]
        if any(isinstance(o, Delivered) for o in outcomes):
            self._remember(alert)
            return Delivered()
        failed = [o for o in outcomes if isinstance(o, Failed)]
        if failed:
            return Failed("; ".join(f.reason for f in failed))
        return next(o for o in outcomes if isinstance(o, Rejected))

    async def _post(self, url: str, body: bytes) -> Outcome:
        try:
            async with self._session.post(
                url, data=body, headers=self._headers, timeout=self._timeout
            ) as response:
                return http_outcome(response.status, await response.text(errors="replace"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Failed(f"{url}: {type(exc).__name__}: {exc}")

    def _known(self, alert: RoutedAlert) -> dict[str, str] | None:
        """A resolution reuses the labels its firing alert was sent with, so it ends that one."""
        return self._labels.get(alert.alert_id) if alert.status == RESOLVED else None

    def _remember(self, alert: RoutedAlert) -> None:
        if alert.status == RESOLVED:
            self._labels.pop(alert.alert_id, None)
            return
        self._labels[alert.alert_id] = labels(alert)
        while len(self._labels) > LABELS_MEMORY:
            self._labels.popitem(last=False)
