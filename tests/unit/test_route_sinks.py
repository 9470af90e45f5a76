"""The sinks against local HTTP servers: HA pairs, auth headers, answers mapped to outcomes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
from aiohttp import web

from streamproc.dev.processes import free_ports
from streamproc.route.alertmanager import AlertmanagerSink, auth_headers
from streamproc.route.delivery import Delivered, Failed, Rejected
from streamproc.route.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, WebhookSink, verify
from streamproc.settings import load_settings
from tests.unit.test_route import routed


@contextlib.asynccontextmanager
async def server(status: int, seen: list[web.Request]) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request)
        return web.Response(status=status, text=f"answer {status}")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def sink(session: aiohttp.ClientSession, *urls: str, **auth: str) -> AlertmanagerSink:
    env = {f"STREAMPROC_ROUTE_{k.upper()}": v for k, v in auth.items()}
    settings = load_settings(None, {"STREAMPROC_ROUTE_ALERTMANAGER_URLS": ",".join(urls), **env})
    return AlertmanagerSink.from_settings(session, settings.route)


async def test_one_alertmanager_of_a_pair_down_still_delivers_with_basic_auth() -> None:
    seen: list[web.Request] = []
    (closed,) = free_ports(1)
    async with server(200, seen) as up, aiohttp.ClientSession() as session:
        am = sink(
            session,
            f"http://127.0.0.1:{closed}",
            up,
            alertmanager_username="u",
            alertmanager_password="p",
        )
        assert await am.send(routed()) == Delivered()
    [request] = seen
    assert request.path == "/api/v2/alerts"
    assert request.headers["Authorization"] == "Basic dTpw"  # base64("u:p")


async def test_all_alertmanagers_down_is_a_failure_and_a_4xx_a_rejection() -> None:
    (closed,) = free_ports(1)
    async with aiohttp.ClientSession() as session:
        outcome = await sink(session, f"http://127.0.0.1:{closed}").send(routed())
        assert isinstance(outcome, Failed) and f"127.0.0.1:{closed}" in outcome.reason
        async with server(400, []) as bad:
            assert await sink(session, bad).send(routed()) == Rejected(400, "answer 400")
        async with server(503, []) as busy:
            assert isinstance(await sink(session, busy).send(routed()), Failed)


def test_bearer_token_header() -> None:
    settings = load_settings(None, {"STREAMPROC_ROUTE_ALERTMANAGER_BEARER_TOKEN": "tok"}).route
    assert auth_headers(settings) == {"Authorization": "Bearer tok"}
    assert auth_headers(load_settings(None, {}).route) == {}


async def test_resolution_reuses_the_labels_its_alert_was_sent_with() -> None:
    seen: list[web.Request] = []
    bodies: list[bytes] = []
    async with server(200, seen) as up, aiohttp.ClientSession() as session:
        am = sink(session, up)
        await am.send(routed("a1", severity="critical"))
        await am.send(routed("a1", severity="info", status="resolved", resolved_at=2))
        bodies = [await r.read() for r in seen]
    firing, resolved = (orjson.loads(b)[0] for b in bodies)
    assert resolved["labels"] == firing["labels"]
    assert firing["labels"]["severity"] == "critical"


async def test_webhook_posts_the_published_bytes_signed() -> None:
    seen: list[web.Request] = []
    alert = routed("a1")
    async with server(200, seen) as up, aiohttp.ClientSession() as session:
        hook = WebhookSink(session, f"{up}/hook", secret=b"k", timeout=5)
        assert await hook.send(alert) == Delivered()
        body = await seen[0].read()
    assert body == alert.body
    assert verify(b"k", body, seen[0].headers[SIGNATURE_HEADER])
    assert seen[0].headers[DELIVERY_HEADER] == alert.delivery_id
