"""6-8. The phases against the broker: (b) the worker, the profile, no detectors, restart
and (c) latency, run in order on one local broker.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer
from tqdm import tqdm

from bench.throughput.floor import BatchProducer, Rate, all_partitions, bench_env, produce
from bench.throughput.worker import Worker, cpu_seconds, scheduled, wait_for_events
from bench.throughput.workload import (
    FEATURES,
    MODELS,
    RECOVERY_LINE,
    SHIFT,
    bench_models,
    feature_body,
)
from streamproc.dev.localkafka import LocalKafka
from streamproc.events import EventKind
from streamproc.settings import Settings

NO_DETECTORS = """\
engine:
  detectors: {value: [], prediction: [], missing_rate: [], error: [], correctness: []}
"""


async def framework_ceiling(kafka: LocalKafka, tmp: Path, total: int, every: float) -> Rate:
    """(b) with no detectors configured: streams keep their bookkeeping, River does nothing,
    so what remains is decode, engine bookkeeping and the framework around them."""
    config = tmp / "no-detectors.yaml"
    config.write_text(NO_DETECTORS)
    env = bench_env(kafka, tmp, "bench-no-detectors") | {"STREAMPROC_CONFIG": str(config)}
    worker = Worker.start(env, tmp, "worker-no-detectors")
    try:
        run = await wait_for_events(worker, kafka.pid or 0, total, "(b) no detectors", every)
        return run.rate()
    finally:
        await asyncio.to_thread(worker.stop)


@dataclass
class Restart:
    models: int = 0
    streams: int = 0
    state_bytes: int = 0
    seconds: float = 0.0
    """Sum over partitions of the restore times the worker logged."""
    wall: float = 0.0
    """Worker start to every model restored."""


def restarts(text: str) -> Restart:
    found = Restart()
    for match in RECOVERY_LINE.finditer(text):
        found.models += int(match[2])
        found.streams += int(match[3])
        found.state_bytes += int(match[4])
        found.seconds += float(match[6])
    return found


@dataclass
class Latency:
    rate: float
    seconds: float
    produced: int = 0
    alerts: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    delivery_ms: list[float] = field(default_factory=list)
    """Per timed alert: consumed - its ``detected_at``, the worker's clock when it took up
    the alert's batch: the rest of that batch's processing, then its producer, the broker
    and this benchmark's consumer; the rest of the latency is the wait before it."""
    kinds: Counter[str] = field(default_factory=Counter)
    worker_cores: float = 0.0
    """The worker's CPU use while events were produced."""
    worker_waiting: float = 0.0
    """Cores' worth of time the worker's threads were runnable but waited for a CPU while
    events were produced: more than ``worker_cores`` means the machine, not the worker, set
    the pace."""
    bench_cores: float = 0.0
    """The benchmark's own CPU use meanwhile (producer, alert consumer)."""
    behind: int = 0
    """Events not yet processed when production ended."""

    timed: set[str] = field(default_factory=set)
    """Alert ids already timed."""

    def take(self, alert: dict[str, Any], now_ms: float, due_ms: dict[str, int]) -> None:
        """Count a consumed alert; time it when it is the first with its id and its event is
        one this phase produced. A model alert is re-sent with its id and first event when
        more streams join it (streamproc/rollup.py): an update, not a detection, so timing
        it against that first event would add the time until the stream joined (a whole
        shift period, 5 s, in this workload)."""
        self.alerts += 1
        produced = due_ms.get(alert.get("event_id") or "")
        if produced is None or alert["alert_id"] in self.timed:
            return
        self.timed.add(alert["alert_id"])
        self.latencies_ms.append(now_ms - produced)
        self.delivery_ms.append(now_ms - alert["detected_at"])
        self.kinds[alert["stream"]["kind"]] += 1

    def quantile(self, q: float, of: list[float] | None = None) -> float:
        """Of ``latencies_ms``, or of ``of`` (``delivery_ms``, say)."""
        values = self.latencies_ms if of is None else of
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def shifted_events(
    rate: float, seconds: float, period: float, seed: int, since: float
) -> Iterator[tuple[float, str, str, list[float]]]:
    """(due time, model, id, values): each model's mean shifts by SHIFT on a new feature
    every ``period`` seconds, models staggered evenly over the period; ``since`` is the
    time already spent in earlier latency phases, so that shifts carry on, not reset."""
    rng = np.random.default_rng(seed)
    models = bench_models()
    total = int(rate * seconds)
    chunk = 5_000
    for first in range(0, total, chunk):
        rows = rng.normal(size=(min(chunk, total - first), FEATURES)).tolist()
        for k, row in enumerate(rows):
            i = first + k
            due = i / rate
            m = i % MODELS
            clock = since + due - period * m / MODELS
            shifts = int(clock // period) + 1 if clock >= 0 else 0
            for s in range(min(shifts, FEATURES)):
                row[s] += SHIFT
            yield due, models[m], f"L{seed}-{i}", row


def schedule(
    rate: float, seconds: float, period: float, seed: int, since: float
) -> list[tuple[float, str, bytes, bytes]]:
    """(due time, event id, key, body with ``ts`` 0) of every event, built before the clock
    starts: the worker shares the machine (and its scheduling group) with this producer,
    so the producer's work while it is measured is a list walk and :func:`stamped`."""
    return [
        (due, event_id, model.encode(), feature_body(model, event_id, 0, row))
        for due, model, event_id, row in shifted_events(rate, seconds, period, seed, since)
    ]


def stamped(body: bytes, ts: int) -> bytes:
    """``body`` from :func:`schedule` with its ``ts`` set to when it fell due."""
    return body.replace(b'"ts":0,', b'"ts":%d,' % ts, 1)


LOAD_FRACTIONS = (0.5, 0.25)
"""Latency phases: production at these fractions of (b)'s steady rate; the target is at half."""
TICK = 0.01
"""The latency phase's producer sends what fell due every 10 ms, as batches."""


async def latency(
    kafka: LocalKafka,
    settings: Settings,
    worker: Worker,
    rate: float,
    seconds: float,
    period: float,
    phase: int,
    since: float,
) -> Latency:
    """Produce at ``rate`` on a fixed schedule; latency = alert consumed - the triggering
    event's due time (its ``ts``; the producer's own 10 ms batching is counted against us)."""
    result = Latency(rate, seconds)
    due_ms: dict[str, int] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            now_ms = time.time() * 1000
            for batch in batches.values():
                for message in batch:
                    result.take(orjson.loads(message.value), now_ms, due_ms)

    try:
        consumer.assign(all_partitions([settings.topics.alerts]))
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)
        reader = asyncio.create_task(consume())
        base = worker.metrics()["events"]
        topic = settings.topics.features
        planned = schedule(rate, seconds, period, phase, since)
        cpu_started, wall_started = cpu_seconds(worker.proc.pid), time.perf_counter()
        sched_started, bench_started = scheduled(worker.proc.pid), time.process_time()
        async with BatchProducer(kafka.bootstrap_servers) as producer:
            with tqdm(total=len(planned), desc="(c) latency", unit="ev", file=sys.stderr) as bar:
                started, i = time.time(), 0
                while i < len(planned):
                    await asyncio.sleep(
                        max(
                            0.0,
                            started
                            + TICK * (1 + int((time.time() - started) / TICK))
                            - time.time(),
                        )
                    )
                    elapsed = time.time() - started
                    chunk = []
                    while i < len(planned) and planned[i][0] <= elapsed:
                        due, event_id, key, body = planned[i]
                        ts = int((started + due) * 1000)
                        due_ms[event_id] = ts
                        chunk.append((topic, key, stamped(body, ts)))
                        i += 1
                    if chunk:
                        await producer.send(chunk)
                        result.produced += len(chunk)
                        bar.update(len(chunk))
                    if len(producer.pending) > 1_000:
                        await producer.flush()
        wall = time.perf_counter() - wall_started
        result.worker_cores = (cpu_seconds(worker.proc.pid) - cpu_started) / wall
        result.worker_waiting = (scheduled(worker.proc.pid) - sched_started).waited / wall
        result.bench_cores = (time.process_time() - bench_started) / wall
        result.behind = int(base + result.produced - worker.metrics()["events"])
        await wait_for_events(
            worker, kafka.pid or 0, base + result.produced, "(c) draining", every=0.5, limit_s=300
        )
        await asyncio.sleep(2.0)
        stop.set()
        await reader
    finally:
        await consumer.stop()
    return result


async def restart_worker(
    kafka: LocalKafka, settings: Settings, tmp: Path, env: dict[str, str]
) -> tuple[Worker, Restart]:
    """Start (b)'s group again and wake every model so that every partition is restored."""
    started = time.perf_counter()
    worker = Worker.start(env, tmp, "worker-restart")
    base = 0.0
    wake = (
        (
            EventKind.FEATURE,
            m,
            feature_body(m, f"wake-{m}", int(time.time() * 1000), [0.0] * FEATURES),
        )
        for m in bench_models()
    )
    await produce(kafka.bootstrap_servers, settings, wake, MODELS)
    deadline = time.monotonic() + 180
    while restarts(worker.output()).models < MODELS:
        worker.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"restart: not every model restored:\n{worker.output()[-3000:]}")
        await asyncio.sleep(0.1)
    restart = restarts(worker.output())
    restart.wall = time.perf_counter() - started
    base = worker.metrics()["events"]
    while base < MODELS:
        await asyncio.sleep(0.1)
        base = worker.metrics()["events"]
    return worker, restart
