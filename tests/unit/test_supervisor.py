"""The supervisor's policy: restarts with capped exponential backoff, a stop that forwards
SIGTERM then SIGKILLs at the deadline. Clock, pause and launcher are injected: no process
starts and nothing waits."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from streamproc.cli import build_parser
from streamproc.errors import ConfigError
from streamproc.settings import load_settings
from streamproc.supervisor import (
    Backoff,
    Child,
    Supervisor,
    SupervisorMetrics,
    cores,
    describe_exit,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: object) -> None:
        assert isinstance(seconds, float)
        self.now += seconds


@dataclass
class FakeChild:
    pid: int
    code: int | None = None
    signals: list[int] = field(default_factory=list)
    exit_on_term: int | None = 0
    """The code it exits with on SIGTERM; None: it ignores SIGTERM."""

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGTERM and self.exit_on_term is not None:
            self.code = self.exit_on_term

    def kill(self) -> None:
        self.signals.append(signal.SIGKILL)
        self.code = -signal.SIGKILL


@dataclass
class Launcher:
    launched: list[tuple[int, int, FakeChild]] = field(default_factory=list)
    exit_on_term: int | None = 0
    fail: bool = False

    def __call__(self, index: int, port: int) -> Child:
        if self.fail:
            raise OSError("no such file")
        child = FakeChild(pid=100 + len(self.launched), exit_on_term=self.exit_on_term)
        self.launched.append((index, port, child))
        return child

    def current(self, index: int) -> FakeChild:
        return [c for i, _, c in self.launched if i == index][-1]


BACKOFF = Backoff(initial_seconds=1.0, max_seconds=8.0, factor=2.0, reset_after_seconds=60.0)


def make(
    launcher: Launcher, clock: FakeClock, registry: CollectorRegistry, timeout: float = 30.0
) -> Supervisor:
    return Supervisor(
        [9001, 9002],
        launcher,
        SupervisorMetrics(registry, 2),
        shutdown_timeout=timeout,
        backoff=BACKOFF,
        clock=clock,
        pause=clock.advance,
    )


def test_backoff_doubles_per_death_and_stops_at_the_cap() -> None:
    assert [BACKOFF.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert Backoff(max_seconds=30.0).delay(10_000) == 30.0


def test_backoff_refuses_a_cap_below_the_first_delay() -> None:
    with pytest.raises(ValueError, match="max_seconds"):
        Backoff(initial_seconds=5.0, max_seconds=1.0)


def test_every_child_gets_its_own_port() -> None:
    launcher, clock = Launcher(), FakeClock()
    make(launcher, clock, CollectorRegistry()).start()
    assert [(i, port) for i, port, _ in launcher.launched] == [(0, 9001), (1, 9002)]


def test_a_dead_child_is_restarted_after_its_backoff_and_counted() -> None:
    launcher, clock, registry = Launcher(), FakeClock(), CollectorRegistry()
    sup = make(launcher, clock, registry)
    sup.start()
    clock.now += 5.0
    launcher.current(1).code = -signal.SIGKILL
    sup.poll()
    assert [s.running for s in sup.statuses()] == [True, False]
    clock.now += 0.9
    sup.poll()
    assert len(launcher.launched) == 2, "not before the backoff is over"
    clock.now += 0.1
    sup.poll()
    assert launcher.launched[-1][:2] == (1, 9002), "restarted on the same port"
    assert [s.running for s in sup.statuses()] == [True, True]
    value = registry.get_sample_value
    assert value("streamproc_supervisor_restarts_total", {"worker": "1"}) == 1
    exits = {"worker": "1", "exit": "SIGKILL"}
    assert value("streamproc_supervisor_worker_exits_total", exits) == 1
    assert value("streamproc_supervisor_workers_running") == 2


def test_deaths_in_a_row_back_off_exponentially_and_a_long_run_resets() -> None:
    launcher, clock = Launcher(), FakeClock()
    sup = make(launcher, clock, CollectorRegistry())
    sup.start()
    waits = []
    for _ in range(5):
        launcher.current(0).code = 1
        sup.poll()
        died = clock.now
        while launcher.current(0).code is not None:
            clock.now += 0.5
            sup.poll()
        waits.append(clock.now - died)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]
    clock.now += 60.0  # this one ran long enough: the next death starts afresh
    launcher.current(0).code = 1
    sup.poll()
    assert sup.statuses()[0].running is False
    clock.now += 1.0
    sup.poll()
    assert sup.statuses()[0].running is True


def test_a_launch_that_fails_is_retried_with_backoff() -> None:
    launcher, clock = Launcher(fail=True), FakeClock()
    sup = make(launcher, clock, CollectorRegistry())
    sup.start()
    assert [s.running for s in sup.statuses()] == [False, False]
    launcher.fail = False
    clock.now += 1.0
    sup.poll()
    assert [s.running for s in sup.statuses()] == [True, True]


def test_stop_forwards_sigterm_and_is_clean_when_all_exit_0() -> None:
    launcher, clock = Launcher(), FakeClock()
    sup = make(launcher, clock, CollectorRegistry())
    sup.start()
    assert sup.stop() is True
    assert [c.signals for _, _, c in launcher.launched] == [[signal.SIGTERM]] * 2


def test_stop_kills_a_child_still_there_at_the_shutdown_timeout() -> None:
    launcher, clock = Launcher(exit_on_term=None), FakeClock()
    sup = make(launcher, clock, CollectorRegistry(), timeout=30.0)
    sup.start()
    stopped_at = clock.now
    assert sup.stop() is False
    assert clock.now - stopped_at == pytest.approx(30.0, abs=0.25)
    assert [c.signals for _, _, c in launcher.launched] == [[signal.SIGTERM, signal.SIGKILL]] * 2


def test_stop_is_not_clean_when_a_child_fails_its_graceful_stop() -> None:
    launcher, clock = Launcher(exit_on_term=70), FakeClock()
    sup = make(launcher, clock, CollectorRegistry())
    sup.start()
    assert sup.stop() is False


def test_no_restart_after_stop() -> None:
    launcher, clock = Launcher(), FakeClock()
    sup = make(launcher, clock, CollectorRegistry())
    sup.start()
    launcher.current(0).code = 1
    sup.poll()
    sup.stop()
    clock.now += 100.0
    sup.poll()
    assert len(launcher.launched) == 2


def test_exits_are_described_by_signal_or_code() -> None:
    assert describe_exit(-signal.SIGKILL) == "SIGKILL"
    assert describe_exit(3) == "code 3"


def test_processes_option_takes_a_count_or_auto() -> None:
    parser = build_parser()
    assert parser.parse_args(["worker", "--processes", "3"]).processes == 3
    assert parser.parse_args(["worker", "--processes", "auto"]).processes == "auto"
    assert parser.parse_args(["worker"]).processes is None, "the setting decides"
    for bad in ("0", "-2", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["worker", "--processes", bad])


def test_processes_setting_takes_a_count_or_auto_and_names_the_key() -> None:
    assert load_settings(environ={"STREAMPROC_WORKER_PROCESSES": "auto"}).worker.processes == (
        "auto"
    )
    assert load_settings(environ={"STREAMPROC_WORKER_PROCESSES": "4"}).worker.processes == 4
    with pytest.raises(ConfigError, match=r"STREAMPROC_WORKER_PROCESSES.*worker\.processes"):
        load_settings(environ={"STREAMPROC_WORKER_PROCESSES": "0"})


def test_auto_is_the_cores_this_process_may_use() -> None:
    assert cores() == len(os.sched_getaffinity(0))
