"""The Faust app: the one place that wires the pure core to Kafka.

One agent takes what the consumer fetched, a partition's records at a time
(:mod:`streamproc.batches`), hands them to :class:`~streamproc.pipeline.Pipeline`
and sends what comes back: alerts to the alerts topic keyed by model, rejections
to the dead-letter topic with their reason in headers. A batch is acked only
after its outputs are handed to the producer, and Faust flushes the producer
before it commits offsets, so every alert and dead letter is on the broker
before its source offset is committed (at-least-once; alert ids are
deterministic, so a repeat is recognisable). A batch fetched before a
rebalance is neither processed nor acked: its partition's next owner
re-processes it from the checkpoint.

Detector state is checkpointed per partition to a compacted topic and
restored on assignment (:mod:`streamproc.recovery`); a lock keeps checkpoint
snapshots between batches, so state and offsets always agree. What the state
covers (offsets, skip marks, dirty models, ownership, resume points) is the
pipeline's :class:`~streamproc.ledger.Ledger`: this module only tells it what
Kafka did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import faust

from streamproc.batches import BatchConsumer, Fetch, FetchedBatch, install
from streamproc.checkpoints import Offsets, PartitionCheckpoint, rebase
from streamproc.connection import faust_broker, faust_credentials
from streamproc.engine import Engine
from streamproc.errors import CheckpointError
from streamproc.events import EventKind
from streamproc.ledger import CheckpointRecord, Ledger, Round
from streamproc.pipeline import Failure, Output, Pipeline, Record
from streamproc.recovery import Recovery, RestoreReport
from streamproc.settings import Settings
from streamproc.topics import CHECKPOINT_MAX_BYTES

log = logging.getLogger(__name__)

HANDOVER_SHARE = 3
"""A revoked partitions' handover checkpoint may take this share of the session timeout: the
rest is left for the group to finish the rebalance before it gives up on this member."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _ignore(*args: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the app reports to, beyond Kafka (metrics, logs, health); injected for tests."""

    on_output: Callable[[str, Output, float], None] = _ignore
    """Per batch: the source topic, its output and the processing seconds."""
    on_assigned: Callable[[set[int]], None] = _ignore
    """After a rebalance assigned partitions (their state is restored in the background)."""
    on_restored: Callable[[RestoreReport], None] = _ignore
    """After a partition's checkpoint was loaded."""
    on_recovered: Callable[[], None] = _ignore
    """After every partition of the latest assignment was restored."""
    on_revoked: Callable[[set[int]], None] = _ignore
    """After partitions were revoked and their state dropped."""
    on_checkpoint: Callable[[float, int], None] = _ignore
    """After a checkpoint round: its duration in seconds and the records it wrote."""
    on_invalid_checkpoint: Callable[[int], None] = _ignore
    """After a restore that set checkpoint records aside as invalid: how many."""


class _Superseded(Exception):
    """A rebalance since a background restore began made its work moot."""


class StreamprocApp:
    """A Faust app running one :class:`Engine` over the feature and outcome topics."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        hooks: Hooks | None = None,
        partitions: int | None = None,
    ) -> None:
        """``partitions`` (the source topics' count) turns on the partitioning rule."""
        self.settings = settings
        self.engine = engine or Engine(
            settings.engine, settings.limits, arrival=settings.arrival, labels=settings.labels
        )
        self.pipeline = Pipeline(
            self.engine, settings.limits, partitions, outcome_topic=settings.topics.outcomes
        )
        self.recovery = Recovery(settings)
        self.clock = clock
        self.hooks = hooks or Hooks()
        self.ledger: Ledger = self.pipeline.ledger
        self._lock = asyncio.Lock()
        self._checkpointing = asyncio.Lock()
        self._stopped = False
        self._restoring: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        """Per partition: one restore at a time; partitions restore side by side."""
        self._generation = 0
        """Bumped by every rebalance: restores started before it are abandoned."""
        self._background: asyncio.Future[None] | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        """The checkpoint :meth:`take` started after ``checkpoint_events`` events."""
        self.faust = self._make_faust_app()
        worker = settings.worker
        install(self.faust, Fetch(worker.fetch_max_wait_ms, worker.fetch_min_bytes))
        topics = settings.topics
        self.features_topic = self._source(topics.features)
        self.outcomes_topic = self._source(topics.outcomes)
        self.alerts_topic = self._sink(topics.alerts)
        self.dead_letter_topic = self._sink(topics.dead_letters)
        self.checkpoint_topic = self._sink(settings.checkpoint_topic)
        self._kinds = {topics.features: EventKind.FEATURE, topics.outcomes: EventKind.OUTCOME}
        self.faust.topics.add(self.features_topic)
        self.faust.topics.add(self.outcomes_topic)
        self.faust.task(self._agent)
        # mode annotates receivers as a union of callable types, which mypy cannot match.
        self.faust.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]
        self.faust.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        self.faust.timer(settings.worker.checkpoint_interval_seconds)(self._periodic_checkpoint)
        if settings.arrival.enabled or settings.limits.model_idle_seconds:
            self.faust.timer(settings.arrival.tick_seconds)(self._periodic_tick)

    @property
    def owned(self) -> set[int]:
        """The partitions whose state this process holds (the ledger's)."""
        return self.ledger.owned

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
            producer_max_request_size=CHECKPOINT_MAX_BYTES,
            broker_session_timeout=s.worker.session_timeout_seconds,
            broker_heartbeat_interval=s.worker.session_timeout_seconds / 5,
            web_enabled=False,
            web_tables_enabled=False,
        )

    def _source(self, name: str) -> Any:
        return self.faust.topic(name, key_type=bytes, value_type=bytes, allow_empty=True)

    def _sink(self, name: str) -> Any:
        return self.faust.topic(name, key_type=bytes, value_type=bytes)

    async def _agent(self) -> None:
        """Both source topics' batches, one at a time: per-partition order is the fetch's.

        It yields to the loop after each batch: taking a batch from a non-empty queue,
        the lock and the sends do not suspend, so a worker behind by a queue of batches
        kept the producer's sender from sending the first batch's alerts until the last
        was done (p99 230 and 646 ms after the batch was taken up, in two live runs at
        12,500 events/s, against 137 and 125 ms yielding; docs/performance.md, Latency)."""
        consumer = self.faust.consumer
        assert isinstance(consumer, BatchConsumer), "install() sets the consumer class"
        while True:
            await self.take(consumer, await consumer.batches.get())
            await asyncio.sleep(0)

    async def take(self, consumer: BatchConsumer, batch: FetchedBatch) -> bool:
        """Process one fetched batch and ack it; False when it was stale or failed (then it
        is not acked, so Faust's commit stays below it and it is processed again after a
        restart, as when Faust restarted a crashed agent)."""
        if not consumer.current(batch):
            return False
        try:
            out = await self.handle(self._records(batch), self._generation)
        except Exception:
            log.exception("a batch of %s failed; its offsets stay uncommitted", batch.tp)
            return False
        if not out.messages and not self._stopped:
            return False  # a rebalance overtook it before it was applied: not processed
        acked = consumer.ack_batch(batch)
        if self.ledger.since_checkpoint >= self.settings.worker.checkpoint_events:
            self._start_checkpoint()
        return acked

    def _start_checkpoint(self) -> None:
        """Checkpoint beside the agent, as the timer does: the agent waits only while a
        partition's round is built (under the lock), not for the writes (a flush, then two
        awaited sends per partition with acks=-1), which held every partition's events back for
        the whole round, about 1 s a round on the loaded benchmark machine
        (docs/performance.md, Checkpoints). One round at a time: while one is
        writing, the events go on counting toward the next."""
        if self._checkpoint_task is None or self._checkpoint_task.done():
            self._checkpoint_task = asyncio.create_task(self._periodic_checkpoint())

    def _records(self, batch: FetchedBatch) -> list[Record]:
        kind = self._kinds[batch.tp.topic]
        return [
            Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, kind)
            for r in batch.records
        ]

    async def handle(self, records: Sequence[Record], generation: int | None = None) -> Output:
        """Run one batch through the core and hand its alerts and dead letters to the producer.

        Partitions seen for the first time are restored first (see :meth:`_prepare`). With
        ``generation``, a batch that a rebalance since overtook is dropped unprocessed.
        """
        if not records or self._stopped:
            return Output()
        try:
            await self._prepare(records, generation)
        except _Superseded:
            return Output()
        return await self._process(records, generation)

    async def _process(self, records: Sequence[Record], generation: int | None = None) -> Output:
        """Holds the lock until every send is enqueued, so a checkpoint taken after it (which
        flushes the producer first) never claims an event whose alerts could still be lost.
        Nothing is applied once a rebalance since ``generation`` may have moved the partition
        (the revocation forgets its state at once, synchronously)."""
        started = time.perf_counter()
        async with self._lock:
            if self._stopped or generation not in (None, self._generation):
                return Output()
            out = self.pipeline.handle(records, self.clock())
            await self._send(out)
            self.ledger.applied(out.messages)
        self.hooks.on_output(records[0].topic, out, time.perf_counter() - started)
        return out

    async def _send(self, out: Output) -> None:
        """Hand alerts (keyed by model) and dead letters (reason in headers) to the producer.

        One that cannot be serialized is left out and reported as a failure; the producer's
        own errors (the broker) propagate, since retrying them is Faust's job."""
        for alert in out.alerts:
            try:
                value = alert.to_json()
            except Exception as exc:  # one alert's bug must not lose the batch's other output
                out.failures.append(Failure("send", exc))
                continue
            await self.alerts_topic.send(key=alert.model.encode(), value=value)
        for dead in out.dead_letters:
            try:
                headers = dead.headers()
            except Exception as exc:
                out.failures.append(Failure("send", exc))
                continue
            await self.dead_letter_topic.send(key=dead.key, value=dead.value, headers=headers)

    async def _periodic_tick(self) -> None:
        try:
            await self.tick()
        except Exception as exc:  # a failing timer would stop every later silence check
            log.warning("arrival tick failed: %s", exc)

    async def tick(self) -> Output:
        """From a timer: let the engine see time pass (silence alerts, docs/arrival.md) and
        send what it raised, under the lock like a batch; reported with no source topic."""
        started = time.perf_counter()
        async with self._lock:
            if self._stopped:
                return Output()
            out = self.pipeline.tick(self.clock())
            await self._send(out)
        if out.alerts or out.evicted or out.failures:
            self.hooks.on_output("", out, time.perf_counter() - started)
        return out

    async def _prepare(self, records: Sequence[Record], generation: int | None = None) -> None:
        """Restore partitions this process does not hold yet, and re-process what lies
        between their checkpoint and where Faust resumed (the first offset it delivers).

        This runs in the agent, not in Faust's rebalance callbacks, so nothing it awaits
        can be cut short by a rebalance; Faust has already positioned the consumer.
        """
        firsts: dict[tuple[int, EventKind], int] = {}
        for r in records:
            firsts.setdefault((r.partition, r.kind), r.offset)
        for (partition, kind), first in firsts.items():
            if not self.ledger.owns(partition) or self.ledger.pending(partition, kind) is not None:
                async with self._restoring[partition]:
                    if (
                        not self.ledger.owns(partition)
                        and await self.restore(partition, generation) is None
                    ):
                        raise _Superseded
                    start = self.ledger.take_pending(partition, kind)
                    if start is not None and first > start:
                        caught_up = await self._catch_up(partition, kind, start, first, generation)
                        log.info(
                            "recovery: partition %d %s: re-processed %d records [%d, %d)",
                            partition,
                            kind.value,
                            caught_up,
                            start,
                            first,
                        )

    async def checkpoint(self, partitions: Iterable[int]) -> int:
        """Write the changed state of ``partitions``; returns the records written.

        Each partition's round is built under the lock on its own, and a batch waiting for
        the lock goes between two of them: the agent waits for one partition's snapshots
        (about 4 ms for 6 models of 40 streams), not for every partition's (30-100 ms a
        round on the benchmark, a step in the live p99, docs/performance.md). A round is
        consistent on its own (its models' state at its own offsets), and every round is
        built before the producer flush that precedes the writes, so none claims an event
        whose outputs could still be lost. A partition revoked in between is skipped:
        its handover writes it."""
        async with self._checkpointing:
            self.ledger.checkpoint_started()
            rounds = []
            for partition in partitions:
                async with self._lock:
                    if partition in self.ledger.owned:
                        rounds.append(self.pipeline.round(partition, self.clock()))
            return await self._write_rounds(rounds)

    async def stop_processing(self) -> int:
        """Stop applying batches, then checkpoint every owned partition.

        Batches Faust still delivers while it shuts down are dropped unprocessed (and
        acked, so Faust commits past them): the next owner re-processes them from this
        checkpoint's watermark, so each of their alerts is produced exactly once.
        """
        if self._checkpoint_task is not None:
            await self._checkpoint_task  # it logs its own failure
        async with self._checkpointing:
            async with self._lock:
                self._stopped = True
                rounds = self.pipeline.rounds(sorted(self.ledger.owned), self.clock())
            return await self._write_rounds(rounds)

    async def _write_rounds(self, rounds: list[Round]) -> int:
        """Write each partition's round on its own: one that fails (its models stay dirty,
        its manifest unwritten, so its watermark stays where it was) does not keep the
        others from being written. Raises :class:`CheckpointError` naming the failed ones."""
        started = time.perf_counter()
        try:
            await self.faust.producer.flush()
        except Exception:
            for round_ in rounds:
                self.ledger.unwritten(round_)
            raise
        written = await self._write_each(rounds)
        self.hooks.on_checkpoint(time.perf_counter() - started, written)
        return written

    async def _write_each(self, rounds: list[Round]) -> int:
        """Every partition's writes side by side: the producer has one request in flight
        per broker, one batch per partition in it, so one partition after the other took
        a round trip per record (each ~100 KB, its own batch), 3-4 s a round on a loaded
        worker; side by side, a round trip carries every partition's next record."""
        results = await asyncio.gather(
            *(self._write(r.partition, r.records) for r in rounds), return_exceptions=True
        )
        written = 0
        failed: dict[int, BaseException] = {}
        for round_, result in zip(rounds, results, strict=True):
            if isinstance(result, BaseException):
                self.ledger.unwritten(round_)
                failed[round_.partition] = result
            else:
                written += result
        if failed:
            detail = "; ".join(f"partition {p}: {exc!r}" for p, exc in failed.items())
            raise CheckpointError(f"checkpoint failed for {len(failed)} partition(s): {detail}")
        return written

    async def _write(self, partition: int, records: list[CheckpointRecord]) -> int:
        """Send the model records, await them, then the manifest (last, so it never
        claims records that did not land)."""
        *models, manifest = records
        pending = [
            await self.checkpoint_topic.send(key=key, value=value, partition=partition)
            for key, value in models
        ]
        await asyncio.gather(*pending)
        await (
            await self.checkpoint_topic.send(
                key=manifest[0], value=manifest[1], partition=partition
            )
        )
        return len(records)

    async def _periodic_checkpoint(self) -> None:
        if not self.ledger.owned:
            return
        try:
            await self.checkpoint(sorted(self.ledger.owned))
        except Exception as exc:  # the next round retries; recovery stays exact meanwhile
            log.warning("checkpoint failed, will retry: %s", exc)

    def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", set())
        partitions = sorted({tp.partition for tp in assigned if tp.topic in self._kinds})
        self._generation += 1
        self.hooks.on_assigned(set(partitions))
        self._background = asyncio.ensure_future(self._restore_all(partitions, self._generation))

    async def _restore_all(self, partitions: list[int], generation: int) -> None:
        """Restore newly assigned partitions ahead of their first records, so readiness can
        tell when the state is back, and re-process at once what lies between each
        checkpoint and the group's committed offset, so a quiet partition's tail is not
        left waiting for traffic. Runs as its own task: Faust cancels work awaited inside
        its rebalance callbacks. A rebalance in between makes it stop (``generation``)."""
        try:
            await asyncio.gather(*(self._restore_one(p, generation) for p in partitions))
        except _Superseded:
            return
        except Exception as exc:  # the agents retry when the partition's records arrive
            log.warning("restoring partitions %s failed: %s", partitions, exc)
            return
        if generation == self._generation:
            self.hooks.on_recovered()

    async def _restore_one(self, partition: int, generation: int) -> None:
        """Partitions restore side by side: each one's reads take round trips to the broker
        (fresh clients, the checkpoint, bounds, committed offsets), which one after the
        other kept a newly assigned worker from processing for about a second per
        partition."""
        async with self._restoring[partition]:
            if generation != self._generation:
                raise _Superseded
            if not self.ledger.owns(partition):
                if await self.restore(partition, generation) is None:
                    raise _Superseded
                await self._catch_up_committed(partition, generation)

    async def _catch_up_committed(self, partition: int, generation: int) -> None:
        """Re-process [watermark, committed offset) of both topics. The ledger's pending resume
        point follows the progress batch by batch, so the agents (or a retry) continue where
        this stopped and nothing is applied twice; records Faust delivers below the committed
        offset are skipped. Outputs go through :meth:`_process`, and no offset is committed
        for them: the group's committed offset is already past them."""
        committed = await self.recovery.committed(partition)
        ends = (await self.recovery.bounds(partition))[1]
        for index, kind in enumerate((EventKind.FEATURE, EventKind.OUTCOME)):
            start, stop = self.ledger.pending(partition, kind), committed.get(kind)
            if start is None or stop is None:
                continue
            stop = min(stop, ends[index])  # committed on a log since re-created: not past it
            if stop <= start:
                continue

            done = await self._catch_up(partition, kind, start, stop, generation, track=True)
            self.ledger.caught_up(partition, kind, stop)
            log.info(
                "recovery: partition %d %s: re-processed %d records [%d, %d) up to the "
                "committed offset",
                partition,
                kind.value,
                done,
                start,
                stop,
            )

    async def _catch_up(
        self,
        partition: int,
        kind: EventKind,
        start: int,
        stop: int,
        generation: int | None,
        *,
        track: bool = False,
    ) -> int:
        """Process [start, stop) again; returns how many records. With ``track``, the
        ledger's pending resume point follows the progress batch by batch, so whoever
        continues after an interruption applies nothing twice. A rebalance since
        ``generation`` stops it."""
        done = 0
        async with aclosing(self.recovery.catch_up(partition, kind, start, stop)) as batches:
            async for batch in batches:
                if generation not in (None, self._generation):
                    raise _Superseded
                await self._process(batch, generation)
                if track:
                    self.ledger.progressed(partition, kind, batch[-1].offset + 1)
                done += len(batch)
        return done

    async def restore(self, partition: int, generation: int | None = None) -> RestoreReport | None:
        """Load a partition's checkpoint; records below its watermark will be skipped, and
        those between it and where Faust resumes are re-processed (:meth:`_restore_all`,
        :meth:`_prepare`). Returns None when a rebalance since ``generation`` made the work
        moot."""
        started = time.perf_counter()
        checkpoint = await self.recovery.read_checkpoint(partition)
        starts, ends = await self.recovery.bounds(partition)
        self._rebase(partition, checkpoint, starts, ends)
        async with self._lock:
            if generation is not None and generation != self._generation:
                return None
            self.pipeline.restore(partition, checkpoint, starts)
        self._report_invalid(partition, checkpoint)
        report = RestoreReport(
            partition,
            len(checkpoint.models),
            sum(1 for _ in self.engine.streams(checkpoint.models)),
            checkpoint.bytes,
            time.perf_counter() - started,
        )
        log.info("recovery: %s", report.line())
        self.hooks.on_restored(report)
        return report

    @staticmethod
    def _rebase(
        partition: int, checkpoint: PartitionCheckpoint, starts: Offsets, ends: Offsets
    ) -> None:
        before = checkpoint.resume_offsets()
        for index in rebase(checkpoint, starts, ends):
            kind = ("feature", "outcome")[index]
            log.warning(
                "recovery: partition %d %s: checkpoint offset %d is beyond the end offset %d "
                "(topic re-created or cluster migrated?): keeping the state, re-processing "
                "from the log start %d",
                partition,
                kind,
                before[index],
                ends[index],
                starts[index],
            )

    def _report_invalid(self, partition: int, checkpoint: PartitionCheckpoint) -> None:
        for invalid in checkpoint.invalid:
            log.warning(
                "recovery: partition %d: checkpoint record %r is invalid, %s: %s",
                partition,
                invalid.key[:200],
                "its model starts afresh"
                if invalid.model is not None
                else "the partition resumes from offset 0",
                invalid.reason,
            )
        if checkpoint.invalid:
            self.hooks.on_invalid_checkpoint(len(checkpoint.invalid))

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Hand revoked partitions over: checkpoint them, then forget them.

        Faust calls this after it stopped the flow and flushed the producer, and the group
        assigns nobody the partitions before every member returned from here. So the next
        owner restores exactly where this process stopped, and re-processes nothing it
        already sent: a rebalance (a worker joining or leaving) repeats no alert. If the
        handover checkpoint fails or takes too long, the next owner starts from the
        previous checkpoint and repeats that span (at least once, as after a crash). The
        partitions are forgotten whatever happens, even when Faust cancels this.
        """
        revoked = args[0] if args else kwargs.get("revoked", set())
        self._generation += 1
        partitions = {tp.partition for tp in revoked if tp.topic in self._kinds} & self.ledger.owned
        try:
            if partitions and not self._stopped:
                await self._hand_over(sorted(partitions))
        finally:
            for p in partitions:
                self.pipeline.forget(p)
            self.hooks.on_revoked(partitions)

    async def _hand_over(self, partitions: list[int]) -> None:
        timeout = self.settings.worker.session_timeout_seconds / HANDOVER_SHARE
        try:
            written = await asyncio.wait_for(self.checkpoint(partitions), timeout)
        except Exception as exc:  # TimeoutError included: the rebalance must go on
            log.warning(
                "handover checkpoint of partitions %s failed, their next owner repeats "
                "what this process did since the previous one: %r",
                partitions,
                exc,
            )
            return
        log.info("handover: partitions %s checkpointed (%d records)", partitions, written)
