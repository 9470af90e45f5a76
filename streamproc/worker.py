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

from streamproc.alerts import Status
from streamproc.app import Hooks, StreamprocApp
from streamproc.engine import Engine
from streamproc.events import Reason
from streamproc.health import Health, HealthServer
from streamproc.kafka_errors import TRANSLATED, translate
from streamproc.labels import LabelTally
from streamproc.logs import RejectionLog, TokenBucket
from streamproc.metrics import Metrics
from streamproc.partitioning import FIX, Misrouted
from streamproc.pipeline import Failure, Output
from streamproc.settings import Settings

log = logging.getLogger(__name__)

GAUGE_INTERVAL_SECONDS = 5.0
HARD_STOP_GRACE = 10.0
"""Seconds Faust gets to stop after the final checkpoint's own timeout."""
EXIT_STOP_TIMEOUT = 70
FAILURE_LOG_PER_SECOND = 1.0
FAILURE_LOG_BURST = 10
"""Internal-error lines beyond the dead letters' own: a poison model's every event must not
flood the log (``streamproc_internal_errors_total`` counts them all)."""


class WorkerRuntime:
    """One worker process: app, metrics, health; :meth:`run` blocks until stopped."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        partitions: int | None = None,
        engine: Engine | None = None,
    ) -> None:
        """``partitions``, the source topics' count, turns on the partitioning rule.
        ``engine`` defaults to the one ``settings`` describe; tests pass their own (a
        detector factory that raises, tests/integration/poison_worker.py)."""
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = Metrics.from_settings(settings, self.registry)
        self.label_tally = LabelTally()
        if engine is None:
            engine = Engine(
                settings.engine,
                settings.limits,
                arrival=settings.arrival,
                labels=settings.labels,
                label_observer=self.label_tally,
            )
        self.health = Health(metrics=self.metrics)
        self.rejections = RejectionLog()
        self.misrouted = Misrouted()
        self._misrouted_log = TokenBucket(1.0, 20)
        self._failure_log = TokenBucket(FAILURE_LOG_PER_SECOND, FAILURE_LOG_BURST)
        self._failures_held = 0
        hooks = Hooks(
            on_output=self._on_output,
            on_assigned=self._on_assigned,
            on_recovered=self._on_recovered,
            on_revoked=self._on_revoked,
            on_checkpoint=self._on_checkpoint,
            on_invalid_checkpoint=self.metrics.checkpoint_records_invalid,
        )
        self.app = StreamprocApp(settings, engine=engine, hooks=hooks, partitions=partitions)
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
            if rejection.reason is Reason.WRONG_PARTITION and rejection.model is not None:
                self._wrong_partition(topic, record.partition, rejection.model)
            self.rejections.rejected(
                topic,
                record.partition,
                record.offset,
                rejection.reason.value,
                rejection.message,
                error=dead.error,
            )
        for failure in out.failures:
            m.internal_error(failure.stage, reset=failure.model is not None)
            self._log_failure(failure)
        for alert in out.alerts:
            stream = alert.stream
            if alert.status is Status.FIRING:  # a resolution is not another alert
                m.alert_raised(
                    stream.model, stream.kind.value, str(alert.detector["type"]), stream.name
                )
            log.info("alert %s", alert.alert_id, extra={"alert": alert.to_dict()})
        if out.evicted:
            m.models_evicted(len(out.evicted))
            log.info("forgot %d idle models: %s", len(out.evicted), ", ".join(out.evicted[:20]))
        self._positions.update(out.positions)

    def _wrong_partition(self, topic: str, partition: int, model: str) -> None:
        """A model seen on a partition not its own: counted, and logged at once (first time
        per model and partition, rate-limited), naming both partitions and the fix."""
        self.metrics.wrong_partition(topic, model)
        rule = self.app.pipeline.rule
        if rule is None or not self.misrouted.first(model, partition):
            return
        if not self._misrouted_log.allow():
            return
        expected = rule.expected(model)
        log.warning(
            "model %r arrived on partition %d of %s but belongs on partition %d: its events "
            "there are dead-lettered (wrong_partition) so its state never splits; the "
            "producer must key by model id with Kafka's default partitioner (%s in "
            "librdkafka clients)",
            model,
            partition,
            topic,
            expected,
            FIX,
            extra={"model": model, "partition": partition, "expected_partition": expected},
        )

    def _log_failure(self, failure: Failure) -> None:
        """A rate-limited line per caught exception: its traceback when no dead letter's line
        carries it (the arrival tick, a send, a restore), and the model reset it caused."""
        if failure.stage in ("decode", "event") and failure.model is None:
            return  # the dead letter's line has it all
        if not self._failure_log.allow():
            self._failures_held += 1
            return
        error = None if failure.stage in ("decode", "event") else failure.error
        if failure.model is None:
            log.error("internal error (%s): %s", failure.stage, failure.error, exc_info=error)
        else:
            log.error(
                "internal error (%s): model %r: state reset, it starts afresh: %s",
                failure.stage,
                failure.model,
                failure.error,
                exc_info=error,
                extra={"model": failure.model, "stage": failure.stage},
            )

    async def _gauges(self) -> None:
        """Every few seconds: consumer lag, streams tracked, per-stream state, log summaries."""
        self.rejections.flush()
        self.metrics.labels_counted(self.label_tally.drain())
        if self._failures_held:
            log.error("internal errors: %d more log lines suppressed", self._failures_held)
            self._failures_held = 0
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
        self.metrics.models_tracked(len(self.app.engine.models))
        for kind, count in self.app.engine.stream_counts().items():
            self.metrics.streams_tracked(kind.value, count)
        self.metrics.streams_in_drift(self.app.engine.drifting())
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
        # On failure the next owner re-processes from the last good checkpoint.
        try:
            written = await asyncio.wait_for(self.app.stop_processing(), timeout)
            log.info("final checkpoint: %d records", written)
        except TimeoutError:
            log.warning("final checkpoint did not finish within %.0f s", timeout)
        except TRANSLATED as exc:  # Kafka or the network: the message says which setting
            log.warning("final checkpoint failed: %s", translate(exc, self.settings.kafka))
        except Exception:  # a bug: keep the traceback
            log.exception("final checkpoint failed")

    def run(self) -> int:
        """Serve health and metrics, run Faust until a signal stops it."""
        asyncio.set_event_loop_policy(event_loop_policy(self.settings))
        log.info("event loop: %s", "uvloop" if self.settings.worker.uvloop else "asyncio")
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


def event_loop_policy(settings: Settings) -> asyncio.AbstractEventLoopPolicy:
    """uvloop's unless ``worker.uvloop`` is off. Set before Faust's worker creates its loop
    (the consumer thread's loop follows it); nothing the app builds earlier binds one."""
    if settings.worker.uvloop:
        import uvloop

        policy: asyncio.AbstractEventLoopPolicy = uvloop.EventLoopPolicy()
        return policy
    return asyncio.DefaultEventLoopPolicy()


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
