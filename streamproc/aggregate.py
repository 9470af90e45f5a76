"""One ``/metrics``, ``/healthz`` and ``/readyz`` for the worker processes of a supervisor.

Each child worker serves its own endpoints on a private port of localhost, exactly as a
single worker does; the supervisor's server answers for all of them by asking each
child when it is asked. Chosen over prometheus-client's multiprocess mode because that
mode needs every Gauge to pick a ``multiprocess_mode``, a shared directory wiped on every
start, and custom collectors (our :class:`~streamproc.metrics.BatchHistogram`) do not
take part in it at all; here a child stays a plain worker, its metrics unchanged, and
the supervisor only adds a ``worker`` label (docs/deployment.md).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

WORKER_LABEL = "worker"
"""The label the supervisor adds to every sample of a child: its index, ``0`` to N-1."""
FETCH_TIMEOUT = 2.0

Fetch = Callable[[int, str], tuple[int, bytes]]
"""(port, path) -> (HTTP status, body) from a child; raises ``OSError`` when none answers."""


@dataclass(frozen=True)
class ChildStatus:
    """What the HTTP side knows of one child slot, a snapshot taken by the supervisor."""

    worker: int
    """The slot's index, the ``worker`` label."""
    port: int
    """The child's private metrics and health port on localhost."""
    running: bool
    """False while the slot waits out its backoff before a restart."""
    seconds: float
    """Since the child was launched (running) or since it died (not running)."""


Children = Callable[[], Sequence[ChildStatus]]


def http_get(port: int, path: str, timeout: float = FETCH_TIMEOUT) -> tuple[int, bytes]:
    """A child's answer on localhost; a 503 is an answer, a refused connection an OSError."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


class ChildMetrics(Collector):
    """Every family of every running child, each sample with a ``worker`` label added,
    plus ``streamproc_supervisor_worker_up`` saying which children answered.

    A child that does not answer (starting, restarting) is left out of that scrape;
    Prometheus sees its counters reset when it comes back, as after any restart.
    """

    def __init__(self, children: Children, fetch: Fetch = http_get) -> None:
        self._children = children
        self._fetch = fetch

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        up = GaugeMetricFamily(
            "streamproc_supervisor_worker_up",
            "1 when the worker process answered the supervisor's last scrape.",
            labels=[WORKER_LABEL],
        )
        for child in self._children():
            text = self._scrape(child) if child.running else None
            up.add_metric([str(child.worker)], 0.0 if text is None else 1.0)
            if text is not None:
                _merge(families, text, str(child.worker))
        yield from families.values()
        yield up

    def _scrape(self, child: ChildStatus) -> str | None:
        try:
            status, body = self._fetch(child.port, "/metrics")
        except OSError:
            return None
        return body.decode() if status == 200 else None


def _merge(families: dict[str, Metric], text: str, worker: str) -> None:
    for family in text_string_to_metric_families(text):
        merged = families.get(family.name)
        if merged is None:
            merged = Metric(family.name, family.documentation, family.type, family.unit)
            families[family.name] = merged
        for s in family.samples:
            labels = {**s.labels, WORKER_LABEL: worker}
            merged.add_sample(s.name, labels, s.value, s.timestamp, s.exemplar)


class ChildProbes:
    """``/healthz`` and ``/readyz`` of a supervisor: its children's, combined.

    Alive while every slot is either a child whose own ``/healthz`` says 200, a child
    not answering yet within ``startup_grace`` seconds of its launch, or a dead child
    waiting out its restart backoff: the supervisor heals those itself, and a liveness
    probe that restarted the pod would only add a second restart. A child that answers
    503 (its event loop is stuck) or never answers makes the whole pod not alive, since
    only a restart helps it. Ready only when every child is ready.
    """

    def __init__(
        self, children: Children, fetch: Fetch = http_get, startup_grace: float = 60.0
    ) -> None:
        self._children = children
        self._fetch = fetch
        self.startup_grace = startup_grace

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        answers = {str(c.worker): self._alive(c) for c in self._children()}
        return _combine(answers, "ok", "unhealthy")

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        answers = {str(c.worker): self._ready(c) for c in self._children()}
        return _combine(answers, "ready", "not ready")

    def _alive(self, child: ChildStatus) -> tuple[bool, dict[str, Any]]:
        if not child.running:
            return True, {"status": "restarting", "seconds_since_exit": round(child.seconds, 3)}
        answer = self._ask(child, "/healthz")
        if answer is not None:
            return answer
        starting = child.seconds < self.startup_grace
        body = {"status": "starting" if starting else "unreachable"}
        return starting, {**body, "seconds_since_start": round(child.seconds, 3)}

    def _ready(self, child: ChildStatus) -> tuple[bool, dict[str, Any]]:
        if not child.running:
            return False, {"status": "restarting"}
        answer = self._ask(child, "/readyz")
        return answer if answer is not None else (False, {"status": "starting"})

    def _ask(self, child: ChildStatus, path: str) -> tuple[bool, dict[str, Any]] | None:
        try:
            status, body = self._fetch(child.port, path)
        except OSError:
            return None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = {"body": body.decode(errors="replace")[:200]}
        return status == 200, parsed if isinstance(parsed, dict) else {"body": parsed}


def _combine(
    answers: dict[str, tuple[bool, dict[str, Any]]], good: str, bad: str
) -> tuple[bool, dict[str, Any]]:
    ok = all(passed for passed, _ in answers.values())
    return ok, {"status": good if ok else bad, "workers": {k: b for k, (_, b) in answers.items()}}
