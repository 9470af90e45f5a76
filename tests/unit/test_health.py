from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streamproc.health import Health, HealthServer
from streamproc.metrics import Metrics
from streamproc.settings import MetricsSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, bytes, str]:
    """(status, body, content type) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers["Content-Type"]


def get_json(url: str) -> tuple[int, Any]:
    status, body, content_type = get(url)
    assert content_type == "application/json"
    return status, orjson.loads(body)


@pytest.fixture
def served() -> Iterator[tuple[Health, HealthServer, CollectorRegistry]]:
    registry = CollectorRegistry()
    health = Health(metrics=Metrics(registry))
    with HealthServer(health, registry, host="127.0.0.1", port=0) as server:
        yield health, server, registry


def test_liveness_follows_the_last_beat() -> None:
    clock = FakeClock()
    health = Health(stale_after=10.0, clock=clock)
    health.beat()
    clock.now += 10.0
    alive, body = health.liveness()
    assert not alive
    assert body["status"] == "stale" and body["last_beat_seconds_ago"] == 10.0
    health.beat()
    clock.now += 9.9
    assert health.liveness() == (
        True,
        {"status": "ok", "last_beat_seconds_ago": 9.9, "stale_after_seconds": 10.0},
    )


def test_a_starting_worker_is_alive_for_the_grace_period_only() -> None:
    clock = FakeClock()
    health = Health(stale_after=10.0, startup_grace=60.0, clock=clock)
    clock.now += 59.0
    alive, body = health.liveness()
    assert alive and body["status"] == "starting"
    clock.now += 1.0
    alive, body = health.liveness()
    assert not alive and body["status"] == "stale" and "never ran" in body["reason"]


def test_readiness_needs_every_flag_and_is_mirrored_in_metrics() -> None:
    registry = CollectorRegistry()
    health = Health(metrics=Metrics(registry))
    assert health.readiness() == (
        False,
        {"status": "not ready", "missing": ["partitions_assigned", "state_recovered", "consuming"]},
    )
    health.set_flags(partitions_assigned=True, state_recovered=True)
    assert health.readiness() == (False, {"status": "not ready", "missing": ["consuming"]})
    assert registry.get_sample_value("streamproc_ready") == 0
    health.set_flags(consuming=True)
    assert health.readiness() == (True, {"status": "ready"})
    assert registry.get_sample_value("streamproc_ready") == 1
    health.set_flags(partitions_assigned=False)  # a rebalance revoked everything
    assert registry.get_sample_value("streamproc_ready") == 0


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="stale_after"):
        Health(stale_after=0)
    with pytest.raises(ValueError, match="startup_grace"):
        Health(startup_grace=-1)
    with pytest.raises(ValueError, match="interval"):
        asyncio.run(Health(stale_after=1.0).heartbeat(interval=2.0))


def test_readyz_is_503_until_flags_are_set(
    served: tuple[Health, HealthServer, CollectorRegistry],
) -> None:
    health, server, _ = served
    status, body = get_json(server.url + "/readyz")
    assert status == 503
    assert body["missing"] == ["partitions_assigned", "state_recovered", "consuming"]
    health.set_flags(partitions_assigned=True, state_recovered=True, consuming=True)
    assert get_json(server.url + "/readyz") == (200, {"status": "ready"})


def test_metrics_endpoint_serves_the_injected_registry(
    served: tuple[Health, HealthServer, CollectorRegistry],
) -> None:
    _, server, _ = served
    status, body, content_type = get(server.url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert b"\nstreamproc_ready 0.0\n" in body
    status, body, _ = get(server.url + "/metrics?name[]=x")
    assert status == 200
    openmetrics = urllib.request.Request(
        server.url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    with urllib.request.urlopen(openmetrics, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.read().endswith(b"# EOF\n")


def test_unknown_paths_are_404(served: tuple[Health, HealthServer, CollectorRegistry]) -> None:
    assert get(served[1].url + "/table")[0] == 404


def test_port_zero_binds_a_free_port_and_stop_releases_it() -> None:
    server = HealthServer(Health(), CollectorRegistry(), host="127.0.0.1", port=0)
    server.start()
    port = server.port
    assert port != 0
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    server.stop()
    server.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_taken_port_raises() -> None:
    with HealthServer(Health(), CollectorRegistry(), host="127.0.0.1", port=0) as first:
        settings = MetricsSettings(host="127.0.0.1", port=first.port)
        second = HealthServer.from_settings(settings, Health(), CollectorRegistry())
        with pytest.raises(OSError):
            second.start()


def poll_until(url: str, status: int, deadline: float) -> Any:
    """GET ``url`` until it answers ``status`` (returns the JSON body) or the deadline passes."""
    while time.monotonic() < deadline:
        got, body = get_json(url)
        if got == status:
            return body
        time.sleep(0.01)
    raise AssertionError(f"{url} did not answer {status} in time")


async def test_healthz_turns_503_while_the_event_loop_is_blocked() -> None:
    health = Health(stale_after=0.5)
    with HealthServer(health, CollectorRegistry(), host="127.0.0.1", port=0) as server:
        url = server.url + "/healthz"
        beating = asyncio.create_task(health.heartbeat(interval=0.02))
        try:
            deadline = time.monotonic() + 10
            await asyncio.to_thread(poll_until, url, 200, deadline)

            release = threading.Event()
            seen: dict[str, Any] = {}

            def watch() -> None:
                try:
                    seen["body"] = poll_until(url, 503, deadline)
                finally:
                    release.set()

            def block() -> None:
                # A synchronous wait on the loop: nothing else runs, the heartbeat included.
                seen["released"] = release.wait(timeout=15)

            watcher = threading.Thread(target=watch)
            watcher.start()
            asyncio.get_running_loop().call_soon(block)
            await asyncio.sleep(0)  # the loop runs block() and stays in it until released
            watcher.join(timeout=15)

            assert seen["released"], "the watcher never saw /healthz fail"
            assert seen["body"]["status"] == "stale"
            assert seen["body"]["last_beat_seconds_ago"] >= 0.5
            # Unblocked, the heartbeat runs again and liveness comes back.
            await asyncio.to_thread(poll_until, url, 200, time.monotonic() + 10)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
