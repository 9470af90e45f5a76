"""A real Alertmanager (Debian's ``prometheus-alertmanager``) for integration tests.

Started like the test Prometheus (:mod:`tests.integration.prometheus_fixtures`):
on a free port, clustering off, config and storage in a temp dir, stopped when
the test ends. :meth:`AlertmanagerServer.stop` and :meth:`start` let a test
take it down and bring it back on the same port.

Alertmanager lists only alerts that have not ended, so a test sees a
resolution in what Alertmanager notifies: ``alertmanager_factory(notify_url)``
sends every notification (resolved ones included, at once) to that URL.

Import it into a test module::

    from tests.integration.alertmanager_fixtures import alertmanager_factory  # noqa: F401
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
import yaml

from streamproc.dev.processes import free_ports, launch, log_tail, terminate
from tests.amtool import binary
from tests.integration.prometheus_fixtures import started


def config(notify_url: str | None) -> dict[str, Any]:
    """Notify at once (no group wait) and every second, so tests wait seconds."""
    receiver: dict[str, Any] = {"name": "test"}
    if notify_url is not None:
        receiver["webhook_configs"] = [{"url": notify_url, "send_resolved": True}]
    return {
        "route": {
            "receiver": "test",
            "group_by": ["alertname", "model"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [receiver],
    }


@dataclass
class AlertmanagerServer:
    """A test Alertmanager; :meth:`alerts` and :meth:`wait_for` read its API."""

    directory: Path
    port: int
    notify_url: str | None = None
    process: Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "alertmanager.log"

    def start(self) -> bool:
        """Start on :attr:`port`; True once ready, False if it exits or times out."""
        config_file = self.directory / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config(self.notify_url)), encoding="utf-8")
        cmd = [
            binary("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.process = launch(cmd, self.log, die_with_parent=True)
        return started(self.ready, self.process, "Alertmanager")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)
            self.process = None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: every alert it holds, resolved ones included."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:
            body: list[dict[str, Any]] = json.load(response)
        return body

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels``."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            series, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total

    def wait_for(
        self, accept: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Poll the alerts until ``accept(alerts)``; at the deadline, fail with the last list."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            last = self.alerts()
            if accept(last):
                return last
            time.sleep(0.2)
        pytest.fail(f"Alertmanager's alerts not as expected within {timeout:.0f} s: {last}")


AlertmanagerFactory = Callable[[str | None], AlertmanagerServer]


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[AlertmanagerFactory]:
    """Start test Alertmanagers (notifying ``notify_url``); all are stopped at the end."""
    started: list[AlertmanagerServer] = []

    def factory(notify_url: str | None = None) -> AlertmanagerServer:
        for attempt in range(3):
            (port,) = free_ports(1)
            directory = tmp_path / f"alertmanager-{len(started)}-{attempt}"
            directory.mkdir()
            server = AlertmanagerServer(directory, port, notify_url)
            started.append(server)
            if server.start():
                return server
            server.stop()
            if "address already in use" not in log_tail(server.log):
                break
        pytest.fail(f"Alertmanager did not start; end of {server.log}:\n{log_tail(server.log)}")

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
