"""3-4. The preload (keyed by model, as the worker sees it) and (a) the raw-client floor."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from bench.throughput.workload import BATCH, PARTITIONS, make_engine, partition_for
from streamproc.dev.localkafka import LocalKafka
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import Settings


def bench_env(kafka: LocalKafka, tmp: Path, group: str) -> dict[str, str]:
    return {
        "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMPROC_KAFKA_GROUP_ID": group,
        "STREAMPROC_TOPICS_PARTITIONS": str(PARTITIONS),
        "STREAMPROC_WORKER_DATA_DIR": str(tmp / f"worker-{group}"),
        "STREAMPROC_METRICS_HOST": "127.0.0.1",
    }


class BatchProducer:
    """Sends (topic, key, value) records as per-partition batches: a benchmark's producer
    must not spend more CPU per event than the worker it measures."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1)
        self.pending: list[asyncio.Future[Any]] = []
        self._partitions: dict[bytes, int] = {}

    async def __aenter__(self) -> BatchProducer:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.flush()
        finally:
            await self.producer.stop()

    async def send(self, records: list[tuple[str, bytes, bytes]]) -> None:
        batches: dict[tuple[str, int], Any] = {}
        for topic, key, value in records:
            partition = self._partitions.get(key)
            if partition is None:
                partition = self._partitions[key] = partition_for(key)
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                self.pending.append(
                    await self.producer.send_batch(batch, topic, partition=partition)
                )
                batch = batches[(topic, partition)] = self.producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for (topic, partition), batch in batches.items():
            self.pending.append(await self.producer.send_batch(batch, topic, partition=partition))

    async def flush(self) -> None:
        await asyncio.gather(*self.pending)
        self.pending = []


async def produce(
    bootstrap: str, settings: Settings, items: Iterator[tuple[EventKind, str, bytes]], total: int
) -> int:
    topics = {
        EventKind.FEATURE: settings.topics.features,
        EventKind.OUTCOME: settings.topics.outcomes,
    }
    sent = 0
    chunk: list[tuple[str, bytes, bytes]] = []
    async with BatchProducer(bootstrap) as producer:
        with tqdm(total=total, desc="preload", unit="ev", file=sys.stderr, mininterval=1.0) as bar:
            for kind, model, payload in items:
                chunk.append((topics[kind], model.encode(), payload))
                if len(chunk) == 5_000:
                    await producer.send(chunk)
                    await producer.flush()
                    sent, chunk = sent + len(chunk), []
                    bar.update(5_000)
            await producer.send(chunk)
            sent += len(chunk)
            bar.update(len(chunk))
    return sent


def all_partitions(topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``: the run's own broker, where ensure_topics created them."""
    return [TopicPartition(topic, p) for topic in topics for p in range(PARTITIONS)]


@dataclass
class Rate:
    events: int
    updates: int
    seconds: float
    cpu_seconds: float
    """CPU time the consuming process spent meanwhile (all its threads)."""

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.seconds


async def floor(bootstrap: str, settings: Settings, total: int) -> Rate:
    """The raw-client floor: getmany batches -> Records -> the same Pipeline, no Faust."""
    topics = [settings.topics.features, settings.topics.outcomes]
    kinds = {
        settings.topics.features: EventKind.FEATURE,
        settings.topics.outcomes: EventKind.OUTCOME,
    }
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    pipeline = Pipeline(make_engine(settings), settings.limits)
    done = updates = 0
    started: float | None = None
    cpu_started = 0.0
    try:
        consumer.assign(all_partitions(topics))
        await consumer.seek_to_beginning()
        with tqdm(
            total=total, desc="(a) floor", unit="ev", file=sys.stderr, mininterval=1.0
        ) as bar:
            while done < total:
                batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
                if not batches:
                    continue
                if started is None:
                    started, cpu_started = time.perf_counter(), time.process_time()
                records = [
                    Record(
                        m.topic, m.partition, m.offset, m.timestamp, m.key, m.value, kinds[m.topic]
                    )
                    for batch in batches.values()
                    for m in batch
                ]
                out = pipeline.handle(records, time.time_ns() // 1_000_000)
                count = sum(out.events.values())
                done += count
                updates += out.updates
                bar.update(count)
    finally:
        await consumer.stop()
    assert started is not None
    return Rate(done, updates, time.perf_counter() - started, time.process_time() - cpu_started)
