"""The Faust app: the one place that wires the pure core to Kafka.

Two agents (features, outcomes) take batches of raw records, hand them to
:class:`~streamproc.pipeline.Pipeline` and send what comes back: alerts to the
alerts topic keyed by model, rejections to the dead-letter topic with their
reason in headers. Faust acks a batch only after the agent returns, and
flushes the producer before it commits offsets, so every alert and dead letter
is on the broker before its source offset is committed (at-least-once; alert
ids are deterministic, so a repeat is recognisable).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from streamproc.connection import faust_broker, faust_credentials
from streamproc.engine import Engine
from streamproc.events import EventKind
from streamproc.pipeline import Output, Pipeline, Record
from streamproc.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 1_000
BATCH_WITHIN_SECONDS = 0.05
"""A batch waits at most this long to fill: bounds the latency added by batching."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the app reports to, beyond Kafka (metrics, logs); injected for tests."""

    on_output: Callable[[str, Output, float], None] = lambda topic, out, seconds: None
    """Called per batch with the source topic, its output and the processing seconds."""


class StreamprocApp:
    """A Faust app running one :class:`Engine` over the feature and outcome topics."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        hooks: Hooks | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine or Engine(settings.engine, settings.limits)
        self.pipeline = Pipeline(self.engine, settings.limits)
        self.clock = clock
        self.hooks = hooks or Hooks()
        self.faust = self._make_faust_app()
        topics = settings.topics
        self.features_topic = self._source(topics.features)
        self.outcomes_topic = self._source(topics.outcomes)
        self.alerts_topic = self.faust.topic(topics.alerts, key_type=bytes, value_type=bytes)
        self.dead_letter_topic = self.faust.topic(
            topics.dead_letters, key_type=bytes, value_type=bytes
        )
        self._kinds = {topics.features: EventKind.FEATURE, topics.outcomes: EventKind.OUTCOME}
        self.faust.agent(self.features_topic, name="features", concurrency=1)(self._agent)
        self.faust.agent(self.outcomes_topic, name="outcomes", concurrency=1)(self._agent)

    def _make_faust_app(self) -> faust.App:
        s = self.settings
        return faust.App(
            s.kafka.group_id,
            broker=faust_broker(s.kafka),
            broker_credentials=faust_credentials(s.kafka),
            broker_client_id=s.kafka.client_id,
            key_serializer="raw",
            value_serializer="raw",
            store="memory://",
            datadir=str(s.worker.data_dir),
            topic_partitions=s.topics.partitions,
            topic_replication_factor=s.topics.replication_factor,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            web_enabled=False,
            web_tables_enabled=False,
        )

    def _source(self, name: str) -> Any:
        return self.faust.topic(name, key_type=bytes, value_type=bytes, allow_empty=True)

    async def _agent(self, stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS):
            await self.handle([self._record(e.message) for e in events])

    def _record(self, message: Any) -> Record:
        return Record(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=round(message.timestamp * 1000),
            key=message.key,
            value=message.value,
            kind=self._kinds[message.topic],
        )

    async def handle(self, records: Sequence[Record]) -> Output:
        """Run one batch through the core and send its alerts and dead letters."""
        if not records:
            return Output()
        started = time.perf_counter()
        out = self.pipeline.handle(records, self.clock())
        for alert in out.alerts:
            await self.alerts_topic.send(key=alert.model.encode(), value=alert.to_json())
        for dead in out.dead_letters:
            await self.dead_letter_topic.send(
                key=dead.record.key, value=dead.value, headers=dead.headers()
            )
        self.hooks.on_output(records[0].topic, out, time.perf_counter() - started)
        return out
