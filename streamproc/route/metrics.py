"""Prometheus metrics of the router, on an injected registry (docs/operations.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class RouteMetrics:
    """Counters per sink, and what the router holds."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "streamproc_route_delivered",
            "Alerts (firing or resolved messages) a sink accepted.",
            ["sink"],
            registry=registry,
        )
        self.failed = Counter(
            "streamproc_route_failed",
            "Delivery attempts that failed (unreachable, timeout, 5xx); each is retried.",
            ["sink"],
            registry=registry,
        )
        self.retried = Counter(
            "streamproc_route_retried",
            "Delivery attempts repeated after a failure and a backoff.",
            ["sink"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "streamproc_route_dead_lettered",
            "Alerts a sink refused (4xx), sent to the dead-letter topic ('' : unroutable).",
            ["sink"],
            registry=registry,
        )
        self.duplicates = Counter(
            "streamproc_route_duplicates",
            "Messages not sent again because their delivery id was already delivered.",
            ["sink"],
            registry=registry,
        )
        self.suppressed = Counter(
            "streamproc_route_suppressed",
            "Stream alerts not delivered because a model alert covers them.",
            registry=registry,
        )
        self.pending = Gauge(
            "streamproc_route_pending_alerts",
            "Alerts read from the topic and not yet delivered (held or in delivery).",
            registry=registry,
        )
