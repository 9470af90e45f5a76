"""(b) A real ``streamproc worker`` subprocess, sampled from its ``/metrics`` and ``/proc``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bench.throughput.floor import Rate
from streamproc.aggregate import WORKER_LABEL
from streamproc.dev import scrape
from streamproc.dev.processes import child_env, free_ports, spawn, streamproc_command, terminate


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int

    @classmethod
    def start(cls, env: dict[str, str], tmp: Path, name: str, args: Sequence[str] = ()) -> Worker:
        """``streamproc worker ARGS``; with ``--processes N`` the port is the supervisor's,
        whose /metrics sums nothing but labels each child's series, so totals still add up."""
        port = free_ports(1)[0]
        full = child_env(env | {"STREAMPROC_METRICS_PORT": str(port)})
        log_path = tmp / f"{name}.log"
        with log_path.open("wb") as out:
            proc = spawn(streamproc_command("worker", *args), full, out)
        return cls(proc, log_path, port)

    def cpu(self) -> float:
        """CPU seconds of the worker and of its child processes (a supervisor's workers)."""
        total = 0.0
        for pid in process_tree(self.proc.pid):
            with contextlib.suppress(OSError):  # it ended meanwhile
                total += cpu_seconds(pid)
        return total

    def metrics(self) -> dict[str, float]:
        """Sums of streamproc_events_total and streamproc_detector_updates_total, and
        ``consuming``: how many worker processes counted events (a supervisor labels each
        child's series with ``worker``; a single worker is one process)."""
        try:
            samples = scrape.scrape(self.metrics_port)
        except OSError:
            return {"events": 0.0, "updates": 0.0, "consuming": 0.0}
        events = scrape.matching(samples, "streamproc_events_total")
        counted = {s.labels.get(WORKER_LABEL, "") for s in events if s.value > 0}
        return {
            "events": sum(s.value for s in events),
            "updates": scrape.total(samples, "streamproc_detector_updates_total"),
            "consuming": float(len(counted)),
        }

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{self.output()[-3000:]}")

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 90.0) -> None:
        terminate(self.proc, timeout)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Scheduled:
    """Seconds a process's threads spent on a CPU and runnable but waiting for one."""

    ran: float
    waited: float

    def __sub__(self, earlier: Scheduled) -> Scheduled:
        return Scheduled(self.ran - earlier.ran, self.waited - earlier.waited)


def parse_schedstat(text: str) -> Scheduled:
    """One ``/proc/PID/task/TID/schedstat``: nanoseconds on a CPU, nanoseconds runnable on
    a run queue, time slices."""
    ran, waited = text.split()[:2]
    return Scheduled(int(ran) / 1e9, int(waited) / 1e9)


def scheduled(pid: int) -> Scheduled:
    """Summed over the threads of ``pid`` and its descendants. CPU seconds alone cannot
    tell a worker that waits on the broker from one that waits for a CPU on a shared
    machine; the run-queue time can (docs/performance.md, Latency)."""
    ran = waited = 0.0
    for process in process_tree(pid):
        with contextlib.suppress(OSError):  # it ended meanwhile
            for task in Path(f"/proc/{process}/task").iterdir():
                one = parse_schedstat((task / "schedstat").read_text())
                ran, waited = ran + one.ran, waited + one.waited
    return Scheduled(ran, waited)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants still running, from /proc."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def machine_busy() -> float:
    """Busy (not idle, not waiting for I/O) CPU seconds of the whole machine so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    at: float
    events: float
    updates: float
    worker_cpu: float
    broker_cpu: float
    machine: float
    consuming: float = 1.0
    """Worker processes that had counted events by then."""


@dataclass
class Run:
    """Samples of one worker run, and the steady part of it: from the first sample in which
    every one of its ``processes`` had counted events to the last one before the end, so
    neither start-up, nor the group's join and rebalance while the processes come up one
    by one, nor the tail is counted."""

    samples: list[Sample]
    total: float
    processes: int = 1

    def steady(self) -> tuple[Sample, Sample]:
        """Too short a run for that (a quick one) falls back to its first sample with
        events, then to its first sample, and the last."""
        counting = [x for x in self.samples if x.events > 0]
        started = [x for x in counting if x.consuming >= self.processes]
        inside = [x for x in started if x.events < self.total]
        if len(inside) >= 2:
            return inside[0], inside[-1]
        first = next((x for x in (*started, *counting) if x is not self.samples[-1]), None)
        return first or self.samples[0], self.samples[-1]

    def rate(self) -> Rate:
        a, b = self.steady()
        return Rate(
            int(b.events - a.events),
            int(b.updates - a.updates),
            b.at - a.at,
            b.worker_cpu - a.worker_cpu,
        )

    def peak(self) -> float:
        """The best rate between two scrapes at least 1 s apart (short ones are noise)."""
        return max(
            (
                (y.events - x.events) / (y.at - x.at)
                for x, y in itertools.pairwise(self.samples)
                if y.at - x.at >= 1.0
            ),
            default=0.0,
        )

    def cpu(self) -> tuple[float, float, float]:
        """(worker, broker, whole machine) CPU use over the steady part, in cores."""
        a, b = self.steady()
        wall = b.at - a.at
        busy = (b.machine - a.machine) / wall
        return (b.worker_cpu - a.worker_cpu) / wall, (b.broker_cpu - a.broker_cpu) / wall, busy


async def wait_for_events(
    worker: Worker,
    broker_pid: int,
    total: float,
    desc: str,
    every: float,
    limit_s: float = 900.0,
    processes: int = 1,
) -> Run:
    """Sample /metrics (and CPU use) until ``total`` events are counted: every 0.2 s until
    the first event, then every ``every`` seconds, since each scrape costs the worker CPU
    (its exposition holds up to 1,000 per-stream series)."""
    run = Run([], total, processes)
    deadline = time.monotonic() + limit_s
    with tqdm(total=int(total), desc=desc, unit="ev", file=sys.stderr, mininterval=1.0) as bar:
        while True:
            worker.check()
            at = time.perf_counter()
            counts = worker.metrics()
            sample = Sample(
                at,
                counts["events"],
                counts["updates"],
                worker.cpu(),
                cpu_seconds(broker_pid),
                machine_busy(),
                counts["consuming"],
            )
            run.samples.append(sample)
            bar.n = int(sample.events)
            bar.refresh()
            if sample.events >= total:
                return run
            if time.monotonic() > deadline:
                raise RuntimeError(f"{desc}: only {sample.events:.0f} of {total:.0f} events")
            await asyncio.sleep(every if sample.events > 0 else 0.2)
