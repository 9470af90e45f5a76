"""A real Prometheus server (Debian's ``prometheus`` binary) for integration tests.

``prometheus_factory(targets)`` starts one scraping ``targets`` every second,
on a free port with its own config and storage in a temp dir, and stops it
when the test ends, failed or not (and, on Linux, if pytest itself is killed).
It never touches a system Prometheus (Debian's package may run one on :9090).

Import it into a test module::

    from tests.integration.prometheus_fixtures import prometheus_factory  # noqa: F401
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any, Protocol

import pytest
import yaml

from streamproc.dev.processes import (
    Timeout,
    exited,
    free_ports,
    launch,
    log_tail,
    terminate,
    wait_until,
)
from tests.promtool import binary

START_SECONDS = 60.0


@dataclass
class PrometheusServer:
    """A running test Prometheus; :meth:`query` and :meth:`wait_for` read it back."""

    url: str
    log: Path
    process: Popen[bytes] = field(repr=False)

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET an API path; an error answer (400, 422, 503) is returned, not raised."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                body = json.load(exc)
        return body

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query's answer; a bad expression gives ``{"status": "error", ...}``."""
        return self.api("/api/v1/query", query=expr)

    def wait_for(
        self,
        expr: str,
        accept: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 60.0,
    ) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``accept(result)``; at the deadline, fail with the last answer."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.query(expr)
            result: list[dict[str, Any]] = last.get("data", {}).get("result", [])
            if last.get("status") == "success" and accept(result):
                return result
            time.sleep(0.2)
        pytest.fail(f"{expr!r} not as expected within {timeout:.0f} s; last answer: {last}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False


class PrometheusFactory(Protocol):
    def __call__(
        self, targets: Sequence[str], *, rule_files: Sequence[Path] = ()
    ) -> PrometheusServer: ...


def config(targets: Sequence[str], rule_files: Sequence[Path]) -> dict[str, Any]:
    """Scrape and evaluate every second, so tests wait seconds, not minutes."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": "streamproc", "static_configs": [{"targets": list(targets)}]}
        ],
    }


def start(directory: Path, targets: Sequence[str], rule_files: Sequence[Path]) -> PrometheusServer:
    """Start Prometheus on a free port and wait until it is ready.

    A port handed out free can be taken before Prometheus binds it: that case
    is retried on another port.
    """
    directory.mkdir(parents=True)
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(targets, rule_files)), encoding="utf-8")
    log = directory / "prometheus.log"
    for _ in range(3):
        (port,) = free_ports(1)
        cmd = [
            binary("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        process = launch(cmd, log, die_with_parent=True)
        server = PrometheusServer(f"http://127.0.0.1:{port}", log, process)
        if wait_ready(server):
            return server
        terminate(process)
        if "address already in use" not in log_tail(log):
            break
    pytest.fail(f"Prometheus did not start; end of {log}:\n{log_tail(log)}")


def wait_ready(server: PrometheusServer) -> bool:
    """True once /-/ready answers; False if the process exits or the deadline passes."""
    return started(server.ready, server.process, "Prometheus")


def started(ready: Callable[[], bool], process: Popen[bytes], name: str) -> bool:
    """True once ``ready``; False if ``process`` exits first or START_SECONDS pass (the
    caller then fails with the server's log)."""
    try:
        wait_until(ready, START_SECONDS, f"{name} ready", alive=exited(process, name))
    except Timeout:
        return False
    return True


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Start test Prometheus servers; all are stopped when the test ends."""
    started: list[PrometheusServer] = []

    def factory(targets: Sequence[str], *, rule_files: Sequence[Path] = ()) -> PrometheusServer:
        server = start(tmp_path / f"prometheus-{len(started)}", targets, rule_files)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            terminate(server.process)
