"""One /metrics, /healthz and /readyz for a supervisor's children, with their answers
injected (a fetch function), so no child and no socket is needed."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamproc.aggregate import ChildMetrics, ChildProbes, ChildStatus
from streamproc.metrics import BatchHistogram


def child_exposition(events: float) -> bytes:
    registry = CollectorRegistry()
    Counter("streamproc_events", "Events.", ["model"], registry=registry).labels("m").inc(events)
    Gauge("streamproc_ready", "Ready.", registry=registry).set(1)
    BatchHistogram("streamproc_lag_seconds", "Lag.", (0.1, 1.0), registry).observe_many([0.5])
    return generate_latest(registry)


@dataclass
class Answers:
    """What each port answers per path; a port without answers refuses the connection."""

    by_port: dict[int, dict[str, tuple[int, bytes]]] = field(default_factory=dict)
    asked: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, port: int, path: str) -> tuple[int, bytes]:
        self.asked.append((port, path))
        if port not in self.by_port:
            raise ConnectionRefusedError(port)
        return self.by_port[port][path]


def running(worker: int, seconds: float = 100.0) -> ChildStatus:
    return ChildStatus(worker, 9000 + worker, running=True, seconds=seconds)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_each_childs_samples_carry_a_worker_label() -> None:
    answers = Answers({9000: {"/metrics": (200, child_exposition(3))}})
    answers.by_port[9001] = {"/metrics": (200, child_exposition(5))}
    registry = CollectorRegistry()
    registry.register(ChildMetrics(lambda: [running(0), running(1)], answers))
    got = samples(registry)
    assert got[("streamproc_events_total", (("model", "m"), ("worker", "0")))] == 3
    assert got[("streamproc_events_total", (("model", "m"), ("worker", "1")))] == 5
    bucket = ("streamproc_lag_seconds_bucket", (("le", "1.0"), ("worker", "1")))
    assert got[bucket] == 1
    assert got[("streamproc_supervisor_worker_up", (("worker", "0"),))] == 1


def test_a_child_that_does_not_answer_is_left_out_and_marked_down() -> None:
    answers = Answers({9000: {"/metrics": (200, child_exposition(3))}})
    registry = CollectorRegistry()
    children = [running(0), running(1), ChildStatus(2, 9002, running=False, seconds=1.0)]
    registry.register(ChildMetrics(lambda: children, answers))
    got = samples(registry)
    assert ("streamproc_events_total", (("model", "m"), ("worker", "1"))) not in got
    assert got[("streamproc_supervisor_worker_up", (("worker", "1"),))] == 0
    assert got[("streamproc_supervisor_worker_up", (("worker", "2"),))] == 0
    assert (9002, "/metrics") not in answers.asked, "a restarting slot is not scraped"


def json_answer(status: int, body: dict[str, object]) -> tuple[int, bytes]:
    return status, orjson.dumps(body)


def probes(answers: Answers, children: list[ChildStatus]) -> ChildProbes:
    return ChildProbes(lambda: children, answers, startup_grace=60.0)


def test_ready_only_when_every_child_is_ready() -> None:
    ready, not_ready = json_answer(200, {"status": "ready"}), json_answer(503, {"status": "no"})
    answers = Answers({9000: {"/readyz": ready}, 9001: {"/readyz": not_ready}})
    ok, body = probes(answers, [running(0), running(1)]).readiness()
    assert not ok and body["workers"]["1"] == {"status": "no"}
    answers.by_port[9001]["/readyz"] = ready
    assert probes(answers, [running(0), running(1)]).readiness()[0]
    restarting = ChildStatus(1, 9001, running=False, seconds=0.5)
    assert not probes(answers, [running(0), restarting]).readiness()[0]


def test_alive_while_children_beat_start_or_wait_for_their_restart() -> None:
    alive = json_answer(200, {"status": "ok"})
    answers = Answers({9000: {"/healthz": alive}})
    restarting = ChildStatus(1, 9001, running=False, seconds=3.0)
    ok, body = probes(answers, [running(0), restarting]).liveness()
    assert ok and body["workers"]["1"]["status"] == "restarting"
    starting = running(1, seconds=10.0)
    assert probes(answers, [running(0), starting]).liveness()[0]


def test_not_alive_when_a_child_is_stuck_or_never_answers() -> None:
    stale = json_answer(503, {"status": "stale"})
    answers = Answers({9000: {"/healthz": stale}})
    assert not probes(answers, [running(0)]).liveness()[0]
    silent = running(1, seconds=61.0)
    ok, body = probes(Answers(), [silent]).liveness()
    assert not ok and body["workers"]["1"]["status"] == "unreachable"
