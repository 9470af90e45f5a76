"""``streamproc worker --processes N``: N workers of the consumer group under one process.

A worker uses one core (Python, one event loop); a pod or host with more runs more
workers of the same group. The supervisor starts each as an ordinary ``streamproc
worker`` child (own metrics port on localhost, own data directory), restarts one that
dies after an exponential backoff, forwards SIGTERM/SIGINT to all and waits for their
graceful stop, and serves one ``/metrics``, ``/healthz`` and ``/readyz`` for all
(:mod:`streamproc.aggregate`). Children are plain workers, so everything a worker
guarantees (checkpoints, exact recovery, the final checkpoint on SIGTERM) holds for each.

The policy (:class:`Supervisor`) takes its clock, pause and process launcher as
arguments, so tests drive restarts and stops without processes or waiting.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from streamproc.aggregate import ChildMetrics, ChildProbes, ChildStatus
from streamproc.dev.processes import free_ports, spawn, streamproc_command
from streamproc.health import HealthServer
from streamproc.settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
"""How often the supervisor looks at its children (and how late it may see a death)."""


class Child(Protocol):
    """A started child process; :class:`subprocess.Popen` is one."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


Launch = Callable[[int, int], Child]
"""(worker index, metrics port) -> the started child; raises ``OSError`` if it cannot."""


@dataclass(frozen=True)
class Backoff:
    """Delay before restarting a child that died: doubling per death in a row, capped."""

    initial_seconds: float = 1.0
    max_seconds: float = 30.0
    factor: float = 2.0
    reset_after_seconds: float = 60.0
    """A child that ran this long before dying starts again from ``initial_seconds``."""

    def __post_init__(self) -> None:
        if self.initial_seconds < 0 or self.max_seconds < self.initial_seconds:
            raise ValueError("Backoff needs 0 <= initial_seconds <= max_seconds")
        if self.factor < 1:
            raise ValueError(f"Backoff factor must be >= 1, got {self.factor}")

    def delay(self, deaths: int) -> float:
        """Seconds to wait after the ``deaths``-th death in a row (1 for the first)."""
        exponent = min(max(deaths - 1, 0), 64)
        return float(min(self.max_seconds, self.initial_seconds * self.factor**exponent))


class SupervisorMetrics:
    """The supervisor's own series, next to its children's on the one ``/metrics``."""

    def __init__(self, registry: CollectorRegistry, processes: int) -> None:
        self.exits = Counter(
            "streamproc_supervisor_worker_exits",
            "Worker processes that ended while they should have run, by exit.",
            ["worker", "exit"],
            registry=registry,
        )
        self.restarts = Counter(
            "streamproc_supervisor_restarts",
            "Worker processes the supervisor started again after one ended.",
            ["worker"],
            registry=registry,
        )
        self.running = Gauge(
            "streamproc_supervisor_workers_running",
            "Worker processes running now.",
            registry=registry,
        )
        Gauge(
            "streamproc_supervisor_workers",
            "Worker processes the supervisor is configured to run.",
            registry=registry,
        ).set(processes)


@dataclass
class _Slot:
    index: int
    port: int
    child: Child | None = None
    since: float = 0.0
    """When the child was launched, or when it died."""
    deaths: int = 0
    """Deaths in a row, each within ``reset_after_seconds`` of its launch."""
    restart_at: float | None = None


def describe_exit(code: int) -> str:
    """``SIGKILL`` for a child killed by a signal, ``code 3`` for one that exited."""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class Supervisor:
    """Runs one child per port, restarts the ones that die, stops them all on request."""

    def __init__(
        self,
        ports: Sequence[int],
        launch: Launch,
        metrics: SupervisorMetrics,
        *,
        shutdown_timeout: float,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], object] = time.sleep,
    ) -> None:
        self._slots = [_Slot(i, port) for i, port in enumerate(ports)]
        self._launch = launch
        self._metrics = metrics
        self.shutdown_timeout = shutdown_timeout
        self.backoff = backoff
        self._clock = clock
        self._pause = pause
        self._statuses: tuple[ChildStatus, ...] = ()

    def start(self) -> None:
        """Launch every child."""
        now = self._clock()
        for slot in self._slots:
            self._start(slot, now)
        self._publish(now)

    def poll(self) -> None:
        """Notice children that died (log, count, schedule a restart) and restart the ones
        whose backoff is over. Called every :data:`POLL_SECONDS` by :meth:`run`."""
        now = self._clock()
        for slot in self._slots:
            code = slot.child.poll() if slot.child is not None else None
            if slot.child is not None and code is not None:
                self._died(slot, code, now)
            if slot.child is None and slot.restart_at is not None and now >= slot.restart_at:
                self._metrics.restarts.labels(str(slot.index)).inc()
                self._start(slot, now)
        self._publish(now)

    def stop(self) -> bool:
        """SIGTERM every child, wait up to ``shutdown_timeout`` for them, SIGKILL the rest.
        True when every child exited with code 0 (each one stopped gracefully)."""
        for slot in self._slots:
            slot.restart_at = None
            if slot.child is not None and slot.child.poll() is None:
                slot.child.send_signal(signal.SIGTERM)
        deadline = self._clock() + self.shutdown_timeout
        codes = self._wait_all(deadline)
        for slot in self._slots:
            if slot.index not in codes and slot.child is not None:
                log.error(
                    "worker %d (pid %d) did not stop within %.0f s: killing it",
                    slot.index,
                    slot.child.pid,
                    self.shutdown_timeout,
                )
                slot.child.kill()
        codes |= self._wait_all(None)
        self._publish(self._clock())
        return all(code == 0 for code in codes.values())

    def _wait_all(self, deadline: float | None) -> dict[int, int]:
        """Exit codes of the children that ended by ``deadline`` (None: all of them)."""
        codes: dict[int, int] = {}
        while True:
            for slot in self._slots:
                code = slot.child.poll() if slot.child is not None else None
                if code is not None:
                    codes[slot.index] = code
            running = [s for s in self._slots if s.child is not None and s.index not in codes]
            if not running or (deadline is not None and self._clock() >= deadline):
                return codes
            self._pause(POLL_SECONDS)

    def statuses(self) -> tuple[ChildStatus, ...]:
        """The slots as of the last :meth:`poll`; safe to call from the HTTP thread."""
        return self._statuses

    def run(self, stopping: threading.Event) -> int:
        """Start, supervise until ``stopping`` is set, stop; 0 when all stopped cleanly."""
        self.start()
        while not stopping.wait(POLL_SECONDS):
            self.poll()
        log.info("stopping %d worker processes", len(self._slots))
        clean = self.stop()
        log.info("worker processes stopped%s", "" if clean else " (not all cleanly)")
        return 0 if clean else 1

    def _start(self, slot: _Slot, now: float) -> None:
        slot.restart_at = None
        try:
            slot.child = self._launch(slot.index, slot.port)
        except OSError as exc:
            log.error("worker %d could not be started: %s", slot.index, exc)
            slot.child, slot.since = None, now
            self._schedule(slot, now, ran=0.0)
            return
        slot.since = now
        log.info("worker %d started (pid %d)", slot.index, slot.child.pid)

    def _died(self, slot: _Slot, code: int, now: float) -> None:
        assert slot.child is not None
        pid, ran = slot.child.pid, now - slot.since
        slot.child, slot.since = None, now
        how = describe_exit(code)
        self._metrics.exits.labels(str(slot.index), how).inc()
        delay = self._schedule(slot, now, ran)
        log.error(
            "worker %d (pid %d) ended (%s) after %.1f s: restarting it in %.1f s",
            slot.index,
            pid,
            how,
            ran,
            delay,
            extra={"worker": slot.index, "exit": how},
        )

    def _schedule(self, slot: _Slot, now: float, ran: float) -> float:
        slot.deaths = 1 if ran >= self.backoff.reset_after_seconds else slot.deaths + 1
        delay = self.backoff.delay(slot.deaths)
        slot.restart_at = now + delay
        return delay

    def _publish(self, now: float) -> None:
        self._statuses = tuple(
            ChildStatus(s.index, s.port, s.child is not None, now - s.since) for s in self._slots
        )
        self._metrics.running.set(sum(1 for s in self._slots if s.child is not None))


def cores() -> int:
    """The cores this process may run on (its CPU affinity), what ``auto`` means."""
    return len(os.sched_getaffinity(0))


def child_launcher(
    argv: Sequence[str], data_dir: Path, environ: Mapping[str, str] = os.environ
) -> Launch:
    """Children as ``streamproc worker ARGV --processes 1``: the supervisor's environment,
    plus a private metrics port on localhost and a data directory of their own. Their
    output is the supervisor's (one log stream, as a container runtime expects); each runs
    in its own session so that a terminal's Ctrl-C reaches only the supervisor, which
    stops them in order, and dies with the supervisor should it be killed."""

    def launch(index: int, port: int) -> Child:
        own_dir = data_dir / f"process-{index}"
        own_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
        env = {
            **environ,
            "STREAMPROC_METRICS_HOST": "127.0.0.1",
            "STREAMPROC_METRICS_PORT": str(port),
            "STREAMPROC_WORKER_DATA_DIR": str(own_dir),
            "STREAMPROC_WORKER_PROCESSES": "1",
        }
        command = streamproc_command("worker", *argv, "--processes", "1")
        return spawn(
            command,
            env,
            sys.stdout.fileno(),
            err=sys.stderr.fileno(),
            own_session=True,
            die_with_parent=True,
        )

    return launch


def run_supervised(settings: Settings, processes: int, argv: Sequence[str]) -> int:
    """Serve the combined endpoints and supervise ``processes`` children until SIGTERM or
    SIGINT; ``argv`` are the worker options the children get too (``--config``)."""
    registry = CollectorRegistry()
    supervisor = Supervisor(
        free_ports(processes),
        child_launcher(argv, settings.worker.data_dir),
        SupervisorMetrics(registry, processes),
        shutdown_timeout=settings.worker.shutdown_timeout_seconds,
    )
    registry.register(ChildMetrics(supervisor.statuses))
    server = HealthServer.from_settings(
        settings.metrics, ChildProbes(supervisor.statuses), registry
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s received", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    try:
        log.info("supervising %d worker processes", processes)
        return supervisor.run(stopping)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
