"""``streamproc route`` run in the test's event loop, and a real webhook receiver.

The router runs in-process (the same :func:`streamproc.commands.route.route` the
command runs) so tests read its metrics from an injected registry; the receiver
is a real aiohttp server on a free port that checks every signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from streamproc.commands.route import route
from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import wait_until_async
from streamproc.health import Health
from streamproc.route.metrics import RouteMetrics
from streamproc.route.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from streamproc.settings import load_settings

SECRET = "test-webhook-secret"


async def until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail (an AssertionError) at the deadline."""
    await wait_until_async(condition, timeout, what or "the condition")


def alert(alert_id: str, model: str = "m", name: str = "amount", **extra: Any) -> dict[str, Any]:
    """A worker alert (contract v2) on stream ``value:name`` of ``model``."""
    body: dict[str, Any] = {
        "schema_version": 2,
        "alert_id": alert_id,
        "model": model,
        "stream": {"model": model, "kind": "value", "name": name},
        "detector": {"type": "adwin", "params": {"delta": 0.002}},
        "event_id": None,
        "event_ts": int(time.time() * 1000) - 1000,
        "detected_at": int(time.time() * 1000),
        "events_seen": 1000,
        "change": {
            "mean_before": 1.0,
            "mean_after": 2.5,
            "scale": 0.5,
            "magnitude": 3.0,
            "direction": "up",
            "window": 64,
        },
        "severity": "critical",
    }
    body.update(extra)
    return body


def encode(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


@dataclass
class RunningRouter:
    registry: CollectorRegistry
    stop: asyncio.Event
    task: asyncio.Task[None]

    def count(self, metric: str, sink: str | None = None) -> float:
        labels = {} if sink is None else {"sink": sink}
        value = self.registry.get_sample_value(f"streamproc_route_{metric}_total", labels)
        return value or 0.0


@contextlib.asynccontextmanager
async def running_router(
    kafka: LocalKafka, alerts: str, dead_letters: str, **route_settings: str
) -> AsyncIterator[RunningRouter]:
    """Run the router on ``alerts``; ``route_settings`` are ``route.*`` values by field name."""
    environ = {
        "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMPROC_TOPICS_ALERTS": alerts,
        "STREAMPROC_TOPICS_DEAD_LETTERS": dead_letters,
        "STREAMPROC_ROUTE_GROUP_ID": f"route-{uuid.uuid4().hex[:8]}",
        "STREAMPROC_ROUTE_RETRY_INITIAL_SECONDS": "0.2",
        "STREAMPROC_ROUTE_RETRY_MAX_SECONDS": "1",
        "STREAMPROC_ROUTE_REQUEST_TIMEOUT_SECONDS": "5",
        **{f"STREAMPROC_ROUTE_{k.upper()}": v for k, v in route_settings.items()},
    }
    settings = load_settings(None, environ)
    registry = CollectorRegistry()
    stop = asyncio.Event()
    task = asyncio.create_task(route(settings, RouteMetrics(registry), Health(), stop))
    running = RunningRouter(registry, stop, task)
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@dataclass
class Receiver:
    """A webhook receiver answering with ``statuses`` in turn (then 200)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    """(delivery id, body) of every request whose signature verified."""
    attempts: int = 0
    bad_signatures: int = 0
    url: str = ""

    async def handle_alertmanager(self, request: web.Request) -> web.Response:
        self.received.append(("", await request.read()))
        return web.Response(status=200)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if not verify(SECRET.encode(), body, request.headers.get(SIGNATURE_HEADER, "")):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.received.append((request.headers[DELIVERY_HEADER], body))
        return web.Response(status=status, text=f"receiver says {status}")


@contextlib.asynccontextmanager
async def receiver(*statuses: int) -> AsyncIterator[Receiver]:
    state = Receiver(list(statuses))
    app = web.Application()
    app.router.add_post("/hook", state.handle)
    app.router.add_post("/api/v2/alerts", state.handle_alertmanager)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


@dataclass
class Notifications:
    """What an Alertmanager webhook receiver was sent: every alert of every notification."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.alerts.extend((await request.json())["alerts"])
        return web.Response(status=200)


@contextlib.asynccontextmanager
async def notifications() -> AsyncIterator[Notifications]:
    state = Notifications()
    app = web.Application()
    app.router.add_post("/notify", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/notify"
    try:
        yield state
    finally:
        await runner.cleanup()
