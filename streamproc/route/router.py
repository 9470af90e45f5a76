"""The router: alerts topic in, sinks out, offsets committed only behind what is delivered.

One task reads the topic (its own consumer group, ``route.group_id``) into the
:class:`~streamproc.route.grouping.Grouper`; one task per sink delivers what
the grouper releases, one message at a time in release order
(:func:`~streamproc.route.delivery.deliver` retries while the sink is down, and
only that sink waits). A message is *done* once every sink accepted it, refused
it (then it is dead-lettered) or it was suppressed by a model alert; the committed offset of a
partition is its lowest offset not yet done. After a crash the uncommitted
messages are read again and re-sent under the same delivery ids: at least
once, never lost. Within one run a delivery id a sink accepted is never sent
to it again, so duplicates on the topic (the worker is at-least-once too) page
once.

While ``route.max_pending`` messages are read but not done (a sink is down),
reading pauses; the consumer keeps polling, so the group does not evict it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streamproc.logs import one_line
from streamproc.pipeline import HEADER_PREFIX
from streamproc.route.delivery import Backoff, Rejected, Sink, deliver
from streamproc.route.grouping import Grouper
from streamproc.route.messages import RoutedAlert, Unroutable, parse
from streamproc.route.metrics import RouteMetrics
from streamproc.settings.route import RouteSettings

log = logging.getLogger(__name__)

SENT_MEMORY = 100_000
"""Delivery ids remembered per sink, so a repeated message is not sent twice."""

POLL_MS = 200


@dataclass(frozen=True, slots=True)
class Envelope:
    """One record of the alerts topic, and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    alert: RoutedAlert | None
    """None when the value is not a routable alert."""
    problem: str = ""
    """Why it is not routable."""

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def envelope(record: ConsumerRecord[bytes, bytes]) -> Envelope:
    try:
        alert: RoutedAlert | None = parse(record.value)
        problem = ""
    except Unroutable as exc:
        alert, problem = None, str(exc)
    return Envelope(
        record.topic, record.partition, record.offset, record.key, record.value, alert, problem
    )


class Offsets:
    """Per partition, the offsets read and not yet done; commits the lowest gap."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def __len__(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def read(self, tp: TopicPartition, offset: int) -> None:
        self._pending.setdefault(tp, set()).add(offset)
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TopicPartition, offset: int) -> None:
        self._pending.get(tp, set()).discard(offset)

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit now (only those that moved since the last :meth:`committed`)."""
        out = {}
        for tp, nxt in self._next.items():
            pending = self._pending.get(tp)
            offset = min(pending) if pending else nxt
            if offset != self._committed.get(tp):
                out[tp] = offset
        return out

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, tps: Sequence[TopicPartition]) -> None:
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)


class Router:
    """Reads with ``consumer`` (subscribed, auto-commit off), delivers to ``sinks``."""

    def __init__(
        self,
        settings: RouteSettings,
        consumer: AIOKafkaConsumer,
        dead_letters: DeadLetters,
        sinks: Sequence[Sink],
        metrics: RouteMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._dead_letters = dead_letters
        self._sinks = tuple(sinks)
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._backoff = Backoff(settings.retry_initial_seconds, settings.retry_max_seconds)
        self._grouper: Grouper[Envelope] = Grouper(settings.group_delay_seconds)
        self._offsets = Offsets()
        # One queue and task per sink, so a sink that is down holds back only itself;
        # the unroutable go to the dead-letter topic through a queue of their own.
        self._queues: dict[str, asyncio.Queue[Envelope]] = {s.name: asyncio.Queue() for s in sinks}
        self._unroutable: asyncio.Queue[Envelope] = asyncio.Queue()
        self._remaining: dict[tuple[TopicPartition, int], int] = {}
        self._sent: dict[str, OrderedDict[str, None]] = {s.name: OrderedDict() for s in sinks}
        self._paused = False

    async def run(self, stop: asyncio.Event) -> None:
        """Route until ``stop`` is set; then commit what was delivered."""
        tasks = [
            asyncio.create_task(self._sink_forever(sink), name=f"route-{sink.name}")
            for sink in self._sinks
        ]
        tasks.append(asyncio.create_task(self._unroutable_forever(), name="route-unroutable"))
        try:
            while not stop.is_set() and not any(task.done() for task in tasks):
                await self._read_once()
                await self._commit()
            for task in tasks:
                if task.done():
                    task.result()  # a failure (Kafka down for dead letters, a bug) surfaces here
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._commit()

    async def _read_once(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=POLL_MS, max_records=500)
        now = self._clock()
        for records in batches.values():
            for record in records:
                self._accept(envelope(record), now)
        for item in self._grouper.release(self._clock()):
            self._dispatch(item)
        self._metrics.pending.set(len(self._offsets))
        self._pace()

    def _accept(self, item: Envelope, now: float) -> None:
        self._offsets.read(item.tp, item.offset)
        if item.alert is None:
            self._dispatch(item)
            return
        for dropped in self._grouper.add(item, item.alert, now):
            if dropped.alert is not None and not dropped.alert.is_model_alert:
                self._metrics.suppressed.inc()
                log.info("alert %s not delivered: a model alert covers it", dropped.alert.alert_id)
            self._offsets.done(dropped.tp, dropped.offset)

    def _dispatch(self, item: Envelope) -> None:
        """Hand a released message to every sink (or to the dead letters)."""
        queues = list(self._queues.values()) if item.alert is not None else [self._unroutable]
        if not queues:
            self._offsets.done(item.tp, item.offset)
            return
        self._remaining[(item.tp, item.offset)] = len(queues)
        for queue in queues:
            queue.put_nowait(item)

    def _finished(self, item: Envelope) -> None:
        """One sink is done with ``item``; once all are, its offset may be committed."""
        key = (item.tp, item.offset)
        self._remaining[key] -= 1
        if self._remaining[key] == 0:
            del self._remaining[key]
            self._offsets.done(item.tp, item.offset)

    def _pace(self) -> None:
        """Pause reading while too much is pending; resume once half of it is done."""
        pending = len(self._offsets)
        assigned = list(self._consumer.assignment())
        if not self._paused and pending >= self._settings.max_pending:
            self._consumer.pause(*assigned)
            self._paused = True
        elif self._paused and pending <= self._settings.max_pending // 2:
            self._consumer.resume(*assigned)
            self._paused = False

    async def _commit(self) -> None:
        offsets = self._offsets.committable()
        if not offsets:
            return
        assigned = self._consumer.assignment()
        owned = {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items() if tp in assigned}
        if owned:
            await self._consumer.commit(owned)
        self._offsets.committed(offsets)

    async def _sink_forever(self, sink: Sink) -> None:
        queue = self._queues[sink.name]
        while True:
            item = await queue.get()
            await self._deliver(sink, item)
            self._finished(item)

    async def _unroutable_forever(self) -> None:
        while True:
            item = await self._unroutable.get()
            log.warning("message %s@%d is not an alert: %s", item.topic, item.offset, item.problem)
            await self._dead_letters.send(item, "unroutable_alert", item.problem, "")
            self._metrics.dead_lettered.labels("").inc()
            self._finished(item)

    async def _deliver(self, sink: Sink, item: Envelope) -> None:
        alert = item.alert
        assert alert is not None  # the unroutable never reach a sink's queue
        sent = self._sent[sink.name]
        if alert.delivery_id in sent:
            self._metrics.duplicates.labels(sink.name).inc()
            return
        outcome = await deliver(sink, alert, self._backoff, self._metrics, self._sleep)
        if isinstance(outcome, Rejected):
            message = f"{sink.name} answered {outcome.status}: {outcome.response}"
            log.warning("alert %s dead-lettered: %s", alert.alert_id, one_line(message))
            await self._dead_letters.send(item, "sink_rejected", message, sink.name)
            self._metrics.dead_lettered.labels(sink.name).inc()
        sent[alert.delivery_id] = None
        while len(sent) > SENT_MEMORY:
            sent.popitem(last=False)


class DeadLetters:
    """Produces refused and unroutable alerts to the dead-letter topic (docs/dead-letters.md)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def send(self, item: Envelope, reason: str, message: str, sink: str) -> None:
        headers = [
            (f"{HEADER_PREFIX}reason", reason.encode()),
            (f"{HEADER_PREFIX}message", message.encode()),
            (f"{HEADER_PREFIX}source.topic", item.topic.encode()),
            (f"{HEADER_PREFIX}source.partition", str(item.partition).encode()),
            (f"{HEADER_PREFIX}source.offset", str(item.offset).encode()),
        ]
        if sink:
            headers.append((f"{HEADER_PREFIX}sink", sink.encode()))
        await self._producer.send_and_wait(
            self._topic, value=item.value or b"", key=item.key, headers=headers
        )
