"""``streamproc worker --processes 2`` on the real broker: a killed child is restarted and
nothing is lost; SIGTERM stops both gracefully, and a restart neither repeats nor loses.

The alert ids on the topic are compared with ``streamproc replay`` over the same events,
as tests/integration/test_recovery.py does for single workers.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import exited, wait_until_async
from streamproc.dev.scrape import scraped_total
from streamproc.topics import ensure_topics
from tests.integration.test_operations import http_status
from tests.integration.test_recovery import FAST_CHECKPOINTS, finish, message_key
from tests.integration.workers import (
    DRIFT_ONLY,
    Cluster,
    WorkerProcess,
    demo_events,
    produce_events,
    read_all,
    replay_ids,
    spread_events,
    wait_for_processed,
)

pytestmark = pytest.mark.timeout(420)

STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


def child_pids(supervisor: WorkerProcess) -> dict[int, list[int]]:
    """Every pid each child slot had, in order, from the supervisor's log."""
    pids: dict[int, list[int]] = {}
    for match in STARTED.finditer(supervisor.output()):
        pids.setdefault(int(match[1]), []).append(int(match[2]))
    return pids


async def wait_for(supervisor: WorkerProcess, what: str, check: Callable[[], bool]) -> None:
    await wait_until_async(check, 60, what, alive=exited(supervisor.proc, "the supervisor"))


async def test_a_killed_child_is_restarted_and_no_alert_is_lost(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = cluster.settings(**FAST_CHECKPOINTS)
    await ensure_topics(settings)
    events = spread_events()  # 40 models: both children own partitions with data
    expected = set(replay_ids(events, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 40
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=2000))
    supervisor = cluster.start_worker("--processes", "2", **FAST_CHECKPOINTS)
    await wait_for_processed(supervisor, 2000)
    victim = child_pids(supervisor)[1][0]
    os.kill(victim, signal.SIGKILL)
    await wait_for(
        supervisor, "the killed child's restart", lambda: len(child_pids(supervisor)[1]) == 2
    )
    await producing
    ids = await finish(kafka, settings, supervisor)
    assert set(ids) == expected
    assert supervisor.proc.poll() is None
    port = supervisor.metrics_port
    assert scraped_total(port, "streamproc_supervisor_restarts_total", worker="1") == 1
    killed = {"worker": "1", "exit": "SIGKILL"}
    assert scraped_total(port, "streamproc_supervisor_worker_exits_total", **killed) == 1
    assert f"(pid {victim}) ended (SIGKILL)" in supervisor.output()


async def test_sigterm_stops_every_child_cleanly_and_a_restart_repeats_nothing(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = cluster.settings(**FAST_CHECKPOINTS)
    await ensure_topics(settings)
    events = demo_events(90)
    expected = set(replay_ids(events, tmp_path, **DRIFT_ONLY))
    assert len(expected) >= 3
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=1500))
    supervisor = cluster.start_worker("--processes", "2", **FAST_CHECKPOINTS)
    ready = f"http://127.0.0.1:{supervisor.metrics_port}/readyz"
    await wait_for(supervisor, "both children ready", lambda: http_status(ready) == 200)
    await wait_for_processed(supervisor, 4000)
    started = time.monotonic()
    code = supervisor.stop(signal.SIGTERM)
    elapsed = time.monotonic() - started
    assert code == 0, supervisor.output()[-3000:]
    assert elapsed < float(FAST_CHECKPOINTS["STREAMPROC_WORKER_SHUTDOWN_TIMEOUT_SECONDS"])
    assert supervisor.output().count("final checkpoint") >= 2, "each child checkpointed"
    supervisor = cluster.start_worker("--processes", "2", **FAST_CHECKPOINTS)
    await producing
    await finish(kafka, settings, supervisor)
    published = [message_key(v) for v in await read_all(kafka, settings.topics.alerts)]
    replayed = [message_key(v) for v in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert {i for i, _ in published} == expected
    assert Counter(published) == Counter(replayed), "every message exactly once"
