"""9-10. Side-by-side worker runs, last, on the topics as (c) left them (the preload,
then (c)'s live events): one process against two (``--processes 2``, the supervisor),
and checkpoints as configured against checkpoints effectively off. Each run is a fresh
consumer group reading the same first events of the backlog, right after the other, so
both see the same data and nearly the same machine. A rate is the
steady one, from when every process of the run is consuming: the group's formation (the
broker's 3 s initial delay, ``BROKER_PROPERTIES``) is start-up, not throughput.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.throughput.floor import Rate, bench_env
from bench.throughput.worker import Worker, wait_for_events
from streamproc.dev.localkafka import LocalKafka

CHECKPOINTS_OFF = {
    "STREAMPROC_WORKER_CHECKPOINT_INTERVAL_SECONDS": "1000000000",
    "STREAMPROC_WORKER_CHECKPOINT_EVENTS": "2000000000",
}
"""Intervals no run reaches: only the checkpoints at assignment and at the stop remain."""


@dataclass
class SideBySide:
    """Two runs of the worker over the same backlog, ``base`` first."""

    base: Rate
    other: Rate

    @property
    def ratio(self) -> float:
        """``other``'s events/s over ``base``'s."""
        return self.other.events_per_s / self.base.events_per_s


async def worker_rate(
    kafka: LocalKafka,
    tmp: Path,
    name: str,
    total: int,
    every: float,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    processes: int = 1,
) -> Rate:
    """One worker (``streamproc worker ARGS``) of a new group over the whole backlog, its
    rate measured while all ``processes`` are consuming."""
    worker = Worker.start(bench_env(kafka, tmp, f"bench-{name}") | (env or {}), tmp, name, args)
    try:
        run = await wait_for_events(
            worker, kafka.pid or 0, total, f"({name})", every, processes=processes
        )
        return run.rate()
    finally:
        await asyncio.to_thread(worker.stop)


async def processes_speedup(kafka: LocalKafka, tmp: Path, total: int, every: float) -> SideBySide:
    """One worker process, then two under the supervisor (8 partitions: 4 each), each
    measured from when all its processes consume (the group's join is not throughput)."""
    one = await worker_rate(kafka, tmp, "processes-1", total, every, ("--processes", "1"))
    two = await worker_rate(
        kafka, tmp, "processes-2", total, every, ("--processes", "2"), processes=2
    )
    return SideBySide(one, two)


async def checkpoint_cost(kafka: LocalKafka, tmp: Path, total: int, every: float) -> SideBySide:
    """Checkpoints off first (``base``), then as configured by default (``other``):
    the cost is ``1 - ratio``."""
    off = await worker_rate(kafka, tmp, "checkpoints-off", total, every, env=CHECKPOINTS_OFF)
    normal = await worker_rate(kafka, tmp, "checkpoints-default", total, every)
    return SideBySide(off, normal)
