"""1b. The hot path paced like live traffic, without Kafka: what the latency phase's events
cost in CPU when they arrive a tick at a time, against the same batches back to back.

Live, the worker is idle between ticks, and on a shared machine its streams' state
leaves the CPU's caches meanwhile: the same ``Pipeline.handle`` on the same batches then
takes more CPU per event. This is why "half of (b)'s rate" loads a live worker more than
half (docs/performance.md, Latency), measured here with no framework, broker or producer
in the process.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

from tqdm import tqdm

from bench.throughput.phases import TICK, schedule, stamped
from bench.throughput.workload import MODELS, make_engine, partition_of
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import Limits, Settings

START_MS = 1_780_000_000_000
WARM_EVENTS = MODELS * 200
"""Back to back first, as the hot path's warm-up: every stream created, every warm-up over."""


@dataclass
class Pacing:
    rate: float
    tick_s: float
    back_to_back_us: list[float] = field(default_factory=list)
    """CPU per event, one per round."""
    paced_us: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """The median over rounds of paced over back to back, measured side by side."""
        return statistics.median(
            p / b for p, b in zip(self.paced_us, self.back_to_back_us, strict=True)
        )


def ticks(rate: float, seconds: float, tick_s: float) -> list[list[list[Record]]]:
    """The latency phase's events (its schedule, its shifts) as the worker would see them:
    per tick, one batch per partition, each event's ``ts`` its due time."""
    offsets: defaultdict[int, int] = defaultdict(int)
    out: list[list[list[Record]]] = []
    for due, _, key, body in schedule(rate, seconds, period=10.0, seed=0, since=0.0):
        index = int(due / tick_s)
        while len(out) <= index:
            out.append([])
        ts = START_MS + int(due * 1000)
        partition = partition_of(key.decode())
        batches = {batch[0].partition: batch for batch in out[index]}
        if partition not in batches:
            batches[partition] = []
            out[index].append(batches[partition])
        record = Record(
            "features", partition, offsets[partition], ts, key, stamped(body, ts), EventKind.FEATURE
        )
        batches[partition].append(record)
        offsets[partition] += 1
    return out


def run(pipeline: Pipeline, rounds: list[list[list[Record]]], tick_s: float | None) -> float:
    """CPU seconds inside ``Pipeline.handle``; with ``tick_s``, each tick starts on its
    schedule, and the process sleeps until then."""
    cpu = 0.0
    started = time.perf_counter()
    for i, batches in enumerate(rounds):
        if tick_s is not None:
            time.sleep(max(0.0, started + i * tick_s - time.perf_counter()))
        before = time.process_time()
        for batch in batches:
            pipeline.handle(batch, batch[0].timestamp_ms)
        cpu += time.process_time() - before
    return cpu


def measure_pacing(rate: float, seconds: float, repeats: int, tick_s: float = TICK) -> Pacing:
    """``repeats`` rounds on one pipeline, warmed up first: in each, the next ``seconds`` of
    the schedule back to back, then the ``seconds`` after them paced."""
    per_round = max(1, int(seconds / tick_s))
    total = WARM_EVENTS / rate + 2 * repeats * per_round * tick_s
    all_ticks = ticks(rate, total, tick_s)
    warm = int(WARM_EVENTS / rate / tick_s)
    pipeline = Pipeline(make_engine(Settings()), Limits())
    run(pipeline, all_ticks[:warm], None)
    result = Pacing(rate, tick_s)
    position = warm
    for _ in tqdm(range(repeats), desc="paced hot path", unit="round", file=sys.stderr):
        for paced in (False, True):
            part = all_ticks[position : position + per_round]
            position += per_round
            events = sum(len(b) for batches in part for b in batches)
            cpu = run(pipeline, part, tick_s if paced else None)
            (result.paced_us if paced else result.back_to_back_us).append(cpu / events * 1e6)
    return result
