"""Liveness, readiness and ``/metrics`` over HTTP, served from a thread of its own.

The server must not run on the worker's asyncio loop: ``/healthz`` exists to
report that this loop is blocked, and a server on a blocked loop cannot answer
at all. So the loop only *beats* (:meth:`Health.heartbeat`), a plain thread
serves HTTP, and a beat older than ``stale_after`` seconds turns ``/healthz``
into 503.

Endpoints:

* ``/metrics``: the injected registry, text or OpenMetrics by ``Accept``.
* ``/healthz``: 200 while the loop beats, 503 with a JSON reason otherwise.
* ``/readyz``: 200 once partitions are assigned, state is recovered and the
  worker consumes; 503 naming the missing conditions otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Protocol

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from streamproc.settings import MetricsSettings

logger = logging.getLogger(__name__)

READY_FLAGS = ("partitions_assigned", "state_recovered", "consuming")
"""Conditions the worker reports; all must hold for /readyz to answer 200."""


class ReadySink(Protocol):
    """Where readiness changes are mirrored (:class:`streamproc.metrics.Metrics`)."""

    def set_ready(self, ready: bool) -> None: ...


class Probes(Protocol):
    """What the server asks for /healthz and /readyz: :class:`Health` in a worker, the
    children's answers combined in a supervisor (:mod:`streamproc.supervisor`)."""

    def liveness(self) -> tuple[bool, dict[str, Any]]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...


class Health:
    """Heartbeat and readiness flags, written by the worker's loop, read by the server thread.

    ``clock`` is a monotonic clock in seconds, injected so tests can step time.
    Until the first beat the worker is "starting" and counts as alive for
    ``startup_grace`` seconds from construction: booting Faust and connecting to
    Kafka can take longer than ``stale_after``, and a liveness probe must not
    kill a worker that is merely starting (nor wait forever for one that hangs).
    """

    def __init__(
        self,
        *,
        stale_after: float = 10.0,
        startup_grace: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        metrics: ReadySink | None = None,
    ) -> None:
        if stale_after <= 0:
            raise ValueError(f"stale_after must be > 0, got {stale_after}")
        if startup_grace < 0:
            raise ValueError(f"startup_grace must be >= 0, got {startup_grace}")
        self.stale_after = stale_after
        self.startup_grace = startup_grace
        self._clock = clock
        self._metrics = metrics
        self._started = clock()
        self._last_beat: float | None = None
        self._lock = threading.Lock()
        self._flags = dict.fromkeys(READY_FLAGS, False)
        if metrics is not None:
            metrics.set_ready(False)

    def beat(self) -> None:
        """Record that the event loop ran just now."""
        self._last_beat = self._clock()

    async def heartbeat(self, interval: float = 0.5) -> None:
        """Beat every ``interval`` seconds until cancelled: a task on the worker's loop."""
        if interval <= 0 or interval >= self.stale_after:
            raise ValueError(f"interval must be in (0, stale_after), got {interval}")
        while True:
            self.beat()
            await asyncio.sleep(interval)

    def set_flags(
        self,
        *,
        partitions_assigned: bool | None = None,
        state_recovered: bool | None = None,
        consuming: bool | None = None,
    ) -> None:
        """Update the readiness conditions given; the others keep their values."""
        given = {
            "partitions_assigned": partitions_assigned,
            "state_recovered": state_recovered,
            "consuming": consuming,
        }
        with self._lock:
            self._flags.update({k: v for k, v in given.items() if v is not None})
            ready = all(self._flags.values())
        if self._metrics is not None:
            self._metrics.set_ready(ready)

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        """(alive, JSON body): alive while the last beat is younger than ``stale_after``."""
        last_beat = self._last_beat
        if last_beat is None:
            return self._starting()
        age = self._clock() - last_beat
        body: dict[str, Any] = {
            "last_beat_seconds_ago": round(age, 3),
            "stale_after_seconds": self.stale_after,
        }
        if age < self.stale_after:
            return True, {"status": "ok", **body}
        reason = "event loop did not run the heartbeat: blocked or stopped"
        return False, {"status": "stale", "reason": reason, **body}

    def _starting(self) -> tuple[bool, dict[str, Any]]:
        since = self._clock() - self._started
        body = {"seconds_since_start": round(since, 3), "startup_grace_seconds": self.startup_grace}
        if since < self.startup_grace:
            return True, {"status": "starting", **body}
        reason = "the heartbeat never ran: the event loop did not start"
        return False, {"status": "stale", "reason": reason, **body}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, JSON body): ready when every flag holds; the body names those missing."""
        with self._lock:
            missing = [name for name, value in self._flags.items() if not value]
        if missing:
            return False, {"status": "not ready", "missing": missing}
        return True, {"status": "ready"}


class _Handler(BaseHTTPRequestHandler):
    health: ClassVar[Probes]
    registry: ClassVar[CollectorRegistry]

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(HTTPStatus.OK, encoder(self.registry), content_type)
        elif path == "/healthz":
            self._send_json(*self.health.liveness())
        elif path == "/readyz":
            self._send_json(*self.health.readiness())
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def _send_json(self, ok: bool, body: dict[str, Any]) -> None:
        status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
        self._send(status, orjson.dumps(body) + b"\n", "application/json")

    def _send(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes hit every few seconds: keep them out of the worker's log."""
        logger.debug("health server: " + format, *args)


class HealthServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` from a daemon thread.

    Port 0 binds a free port; :attr:`port` tells which. Use as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        health: Probes,
        registry: CollectorRegistry,
        *,
        host: str = "0.0.0.0",
        port: int = 9108,
    ) -> None:
        handler = type("HealthHandler", (_Handler,), {"health": health, "registry": registry})
        self._server = ThreadingHTTPServer((host, port), handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, settings: MetricsSettings, health: Probes, registry: CollectorRegistry
    ) -> HealthServer:
        return cls(health, registry, host=settings.host, port=settings.port)

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked); valid after :meth:`start`."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for a client on this machine."""
        host = str(self._server.server_address[0])
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises OSError if the port is taken."""
        try:
            self._server.server_bind()
            self._server.server_activate()
        except OSError:
            self._server.server_close()
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="streamproc-health",
            daemon=True,
        )
        self._thread.start()
        logger.info("serving /metrics, /healthz, /readyz on port %d", self.port)

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
