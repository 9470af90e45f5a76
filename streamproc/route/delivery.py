"""Delivering one alert to one sink: retry while the sink is down, give up only on a refusal.

A sink answers each attempt with an :data:`Outcome`: :class:`Delivered`,
:class:`Failed` (the sink is unreachable, timed out or answered 5xx/408/429:
it may take the alert later, so :func:`deliver` waits and tries again, for as
long as it takes) or :class:`Rejected` (a 4xx: this alert will never be
accepted, so it is dead-lettered with the response instead of retried).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from streamproc.logs import one_line
from streamproc.route.messages import RoutedAlert
from streamproc.route.metrics import RouteMetrics

log = logging.getLogger(__name__)

RESPONSE_LIMIT = 1000
"""Characters of a sink's response kept for a dead letter or a log line."""

RETRYABLE_STATUS = frozenset({408, 425, 429})
"""4xx answers that mean "later", not "never"."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """The sink accepted the alert."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The sink could not take the alert now; try again."""

    reason: str
    """What went wrong (no secret: URLs carry no credentials, headers are not quoted)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The sink refused the alert for good."""

    status: int
    """HTTP status of the refusal."""
    response: str
    """The start of the response body."""


Outcome = Delivered | Failed | Rejected


class Sink(Protocol):
    """Where alerts go; one attempt per :meth:`send`."""

    @property
    def name(self) -> str: ...

    async def send(self, alert: RoutedAlert) -> Outcome: ...


def http_outcome(status: int, text: str) -> Outcome:
    """The outcome an HTTP answer means for a delivery."""
    if 200 <= status < 300:
        return Delivered()
    if status >= 500 or status in RETRYABLE_STATUS:
        return Failed(f"HTTP {status}: {text[:RESPONSE_LIMIT]}")
    return Rejected(status, text[:RESPONSE_LIMIT])


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``initial``, doubling, capped at ``maximum`` seconds."""

    initial: float
    maximum: float

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * 2, self.maximum)


async def deliver(
    sink: Sink,
    alert: RoutedAlert,
    backoff: Backoff,
    metrics: RouteMetrics,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Delivered | Rejected:
    """Send until the sink accepts or refuses; counts each failure and retry."""
    delays = backoff.delays()
    while True:
        outcome = await sink.send(alert)
        if isinstance(outcome, Delivered):
            metrics.delivered.labels(sink.name).inc()
            return outcome
        if isinstance(outcome, Rejected):
            return outcome
        metrics.failed.labels(sink.name).inc()
        delay = next(delays)
        log.warning(
            "%s: delivering alert %s failed (%s); retrying in %.1f s",
            sink.name,
            alert.alert_id,
            one_line(outcome.reason),
            delay,
        )
        await sleep(delay)
        metrics.retried.labels(sink.name).inc()
