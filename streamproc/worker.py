"""The worker process: the Faust app plus what operators watch it through.

Builds the :class:`~streamproc.app.StreamprocApp`, the Prometheus metrics, the
health server (its own thread, so /healthz still answers, with 503, when the
event loop is stuck), the heartbeat, the rate-limited rejection log and the
periodic gauges (consumer lag, streams tracked), then runs Faust's worker until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streamproc.app import Hooks, StreamprocApp
from streamproc.health import Health, HealthServer
from streamproc.logs import RejectionLog
from streamproc.metrics import Metrics
from streamproc.pipeline import Output
from streamproc.settings import Settings

log = logging.getLogger(__name__)

GAUGE_INTERVAL_SECONDS = 5.0


class WorkerRuntime:
    """One worker process: app, metrics, health; :meth:`run` blocks until stopped."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics.from_settings(settings, self.registry)
        self.health = Health(metrics=self.metrics)
        self.rejections = RejectionLog()
        self.app = StreamprocApp(settings, hooks=Hooks(on_output=self._on_output))
        self._positions: dict[tuple[str, int], int] = {}
        self._wire(self.app.faust)

    def _wire(self, app: faust.App) -> None:
        # mode annotates receivers as a union of callable types, which mypy cannot match.
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.task(self._heartbeat)
        app.timer(GAUGE_INTERVAL_SECONDS)(self._gauges)

    async def _heartbeat(self) -> None:
        await self.health.heartbeat()

    async def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        log.info("partitions assigned: %s", _partitions(args, kwargs, "assigned"))
        self.health.set_flags(partitions_assigned=True, state_recovered=True, consuming=True)

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        log.info("partitions revoked: %s", _partitions(args, kwargs, "revoked"))
        self.health.set_flags(consuming=False)

    def _on_output(self, topic: str, out: Output, seconds: float) -> None:
        """Per batch: counters and histograms; per rejection: a rate-limited log line."""
        m = self.metrics
        for model, count in out.events.items():
            m.events_consumed(topic, model, count)
        m.detector_updates(out.updates)
        m.event_latencies(ms / 1000.0 for ms in out.latencies_ms)
        m.messages_processed(seconds, out.messages)
        for dead in out.dead_letters:
            record, rejection = dead.record, dead.rejection
            m.message_rejected(topic, rejection.reason.value)
            self.rejections.rejected(
                topic, record.partition, record.offset, rejection.reason.value, rejection.message
            )
        for alert in out.alerts:
            stream = alert.stream
            m.alert_raised(
                stream.model, stream.kind.value, str(alert.detector["type"]), stream.name
            )
            log.info("alert %s", alert.alert_id, extra={"alert": alert.to_dict()})
        self._positions.update(out.positions)

    async def _gauges(self) -> None:
        """Every few seconds: consumer lag, streams tracked, per-stream state, log summary."""
        self.rejections.flush()
        consumer = self.app.faust.consumer
        lags: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            done = self._positions.get((tp.topic, tp.partition))
            lags[(tp.topic, tp.partition)] = max(
                0, highwater - (done + 1 if done is not None else 0)
            )
        self.metrics.consumer_lag(lags)
        for kind, count in self.app.engine.stream_counts().items():
            self.metrics.streams_tracked(kind.value, count)
        for stream in self.app.engine.streams():
            sid = stream.id
            if self.metrics.wants_stream(sid.model, sid.kind.value, sid.name):
                estimate, width = stream.estimate()
                self.metrics.stream_state(
                    sid.model, sid.kind.value, sid.name, estimate=estimate, window_size=width
                )

    def run(self) -> int:
        """Serve health and metrics, run Faust until a signal stops it."""
        server = HealthServer.from_settings(self.settings.metrics, self.health, self.registry)
        server.start()
        try:
            worker = faust.Worker(
                self.app.faust, loglevel=self.settings.log.level, quiet=True, override_logging=False
            )
            worker.execute_from_commandline()
        finally:
            server.stop()
        return 0


def _partitions(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> str:
    """A Faust rebalance signal's partition set, as ``topic[p,...]`` text for the log."""
    tps = args[0] if args else kwargs.get(name, ())
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}{sorted(ps)}" for t, ps in sorted(by_topic.items())) or "none"
