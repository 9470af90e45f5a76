"""The shared dev support: /metrics parsing, child environments, waiting with a deadline."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from streamproc.dev.processes import (
    Timeout,
    child_env,
    free_ports,
    streamproc_command,
    wait_until,
)
from streamproc.dev.scrape import matching, parse, scrape, scraped_total, total

EXPOSITION = """\
# HELP streamproc_events_total Events.
# TYPE streamproc_events_total counter
streamproc_events_total{topic="features",model="a,\\"b\\""} 3.0
streamproc_events_total{topic="outcomes",model="c"} 4.0
# HELP streamproc_internal_errors_total Errors.
# TYPE streamproc_internal_errors_total counter
streamproc_internal_errors_total{stage="event"} 2.0
"""


def test_parse_reads_labels_with_commas_and_quotes() -> None:
    samples = parse(EXPOSITION)
    assert total(samples, "streamproc_events_total") == 7.0
    assert total(samples, "streamproc_events_total", model='a,"b"') == 3.0
    assert total(samples, "streamproc_internal_errors_total", stage="event") == 2.0
    assert matching(samples, "streamproc_wrong_partition_events_total") == []


def test_scrape_reads_a_live_exposition() -> None:
    registry = CollectorRegistry()
    Counter("streamproc_events", "Events.", ["topic"], registry=registry).labels("x").inc(5)
    port = free_ports(1)[0]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        assert total(scrape(port), "streamproc_events_total", topic="x") == 5.0
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert scraped_total(port, "streamproc_events_total") == 0.0  # nobody answers: 0


def test_child_env_drops_the_shells_streamproc_settings() -> None:
    base = {"STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": "stray:9092", "HOME": "/home/x"}
    env = child_env({"STREAMPROC_METRICS_PORT": "1"}, base=base)
    assert env == {"HOME": "/home/x", "PYTHONUNBUFFERED": "1", "STREAMPROC_METRICS_PORT": "1"}


def test_streamproc_command_runs_this_install() -> None:
    done = subprocess.run(
        [*streamproc_command("--version")], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("streamproc ")
    assert streamproc_command()[0] == sys.executable


def test_wait_until_returns_once_the_condition_holds() -> None:
    calls = iter([False, False, True])
    assert wait_until(lambda: next(calls), timeout=5, what="third call", interval=0.01) < 5


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(Timeout, match=r"the moon did not happen within 0\.05 s"):
        wait_until(lambda: False, timeout=0.05, what="the moon", interval=0.01)


def test_wait_until_stops_when_waiting_is_pointless() -> None:
    with pytest.raises(Timeout, match="gave up waiting for events: the worker exited"):
        wait_until(lambda: False, 60, "events", alive=lambda: "the worker exited")
