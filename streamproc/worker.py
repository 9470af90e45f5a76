"""The worker process: the Faust app plus what operators watch it through.

Builds the :class:`~streamproc.app.StreamprocApp`, the Prometheus metrics, the
health server (its own thread, so /healthz still answers, with 503, when the
event loop is stuck), the heartbeat, the rate-limited rejection log and the
periodic gauges (consumer lag, streams tracked), then runs Faust's worker until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
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
HARD_STOP_GRACE = 10.0
"""Seconds Faust gets to stop after the final checkpoint's own timeout."""
EXIT_STOP_TIMEOUT = 70


class WorkerRuntime:
    """One worker process: app, metrics, health; :meth:`run` blocks until stopped."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics.from_settings(settings, self.registry)
        self.health = Health(metrics=self.metrics)
        self.rejections = RejectionLog()
        hooks = Hooks(
            on_output=self._on_output,
            on_assigned=self._on_assigned,
            on_recovered=self._on_recovered,
            on_revoked=self._on_revoked,
            on_checkpoint=self._on_checkpoint,
            on_invalid_checkpoint=self.metrics.checkpoint_records_invalid,
        )
        self.app = StreamprocApp(settings, hooks=hooks)
        self._positions: dict[tuple[str, int], int] = {}
        self._wire(self.app.faust)

    def _wire(self, app: faust.App) -> None:
        app.task(self._heartbeat)
        app.timer(GAUGE_INTERVAL_SECONDS)(self._gauges)

    async def _heartbeat(self) -> None:
        await self.health.heartbeat()

    def _on_assigned(self, partitions: set[int]) -> None:
        log.info("partitions assigned: %s", sorted(partitions) or "none")
        self.health.set_flags(
            partitions_assigned=bool(partitions), state_recovered=False, consuming=True
        )

    def _on_recovered(self) -> None:
        log.info("state recovered for partitions %s", sorted(self.app.owned) or "none")
        self.health.set_flags(state_recovered=True)

    def _on_revoked(self, partitions: set[int]) -> None:
        log.info("partitions revoked: %s", sorted(partitions))
        self.health.set_flags(consuming=False)

    def _on_checkpoint(self, seconds: float, records: int) -> None:
        self.metrics.checkpoint_succeeded(seconds)
        log.debug("checkpoint: %d records in %.3f s", records, seconds)

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

    async def graceful_stop(self) -> None:
        """On SIGTERM: stop processing and checkpoint every owned partition (bounded in time),
        before Faust stops, commits and flushes."""
        timeout = self.settings.worker.shutdown_timeout_seconds
        try:
            written = await asyncio.wait_for(self.app.stop_processing(), timeout)
            log.info("final checkpoint: %d records", written)
        except Exception as exc:  # the next owner re-processes from the last good checkpoint
            log.warning("final checkpoint failed: %s", exc)

    def run(self) -> int:
        """Serve health and metrics, run Faust until a signal stops it."""
        server = HealthServer.from_settings(self.settings.metrics, self.health, self.registry)
        server.start()
        try:
            worker = _Worker(
                self.app.faust,
                on_stop=self.graceful_stop,
                hard_deadline=self.settings.worker.shutdown_timeout_seconds + HARD_STOP_GRACE,
                loglevel=self.settings.log.level,
                quiet=True,
                override_logging=False,
            )
            worker.execute_from_commandline()
        finally:
            server.stop()
        return 0


class _Worker(faust.Worker):
    """Faust's worker, with a checkpoint before it stops on a signal and a hard deadline."""

    def __init__(
        self,
        app: faust.App,
        *,
        on_stop: Callable[[], Awaitable[None]],
        hard_deadline: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._on_stop = on_stop
        self._hard_deadline = hard_deadline

    async def _stop_on_signal(self, signal: signal.Signals) -> None:
        watchdog = threading.Timer(self._hard_deadline, _hard_exit, args=(self._hard_deadline,))
        watchdog.daemon = True
        watchdog.start()
        await self._on_stop()
        await super()._stop_on_signal(signal)


def _hard_exit(seconds: float) -> None:
    log.error("shutdown took longer than %.0f s: exiting now", seconds)
    os._exit(EXIT_STOP_TIMEOUT)
