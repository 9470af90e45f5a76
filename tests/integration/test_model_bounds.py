"""Idle models on a real worker: forgotten after a final silence alert, their checkpoint
record deleted with a tombstone on the compacted checkpoint topic."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import orjson
import pytest

from streamproc.checkpoints import model_key
from streamproc.dev.localkafka import LocalKafka
from streamproc.topics import ensure_topics
from tests.integration.workers import Cluster, keyed_json, produce, read_topic

NO_KCAT = "kcat missing (make tools installs it)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not shutil.which("kcat"), reason=NO_KCAT)]

IDLE = {
    "STREAMPROC_LIMITS_MODEL_IDLE_SECONDS": "3",
    "STREAMPROC_ARRIVAL_TICK_SECONDS": "0.5",
    "STREAMPROC_WORKER_CHECKPOINT_INTERVAL_SECONDS": "1",
}
T0 = 1_764_000_000_000


def checkpoint_values(brokers: str, topic: str, key: bytes) -> list[int]:
    """Sizes of the values written under ``key``, in order; -1 is a tombstone."""
    done = subprocess.run(
        ["kcat", "-b", brokers, "-C", "-t", topic, "-e", "-q", "-f", "%k\t%S\n"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = (line.split("\t") for line in done.stdout.splitlines() if line)
    return [int(size) for k, size in rows if k == key.decode()]


async def test_an_idle_model_is_forgotten_with_a_final_alert_and_a_tombstone(
    kafka: LocalKafka, cluster: Cluster
) -> None:
    settings = cluster.settings(**IDLE)
    await ensure_topics(settings)
    events = [
        {"model": "gone", "id": f"g-{i}", "ts": T0 + i, "features": {"x": 1.0}} for i in range(5)
    ]
    await produce(kafka, settings.topics.features, keyed_json(events))
    worker = cluster.start_worker(**IDLE)
    key = model_key("gone")

    deadline = asyncio.get_running_loop().time() + 120
    sizes: list[int] = []
    while not (sizes and sizes[0] > 0 and sizes[-1] == -1):
        assert asyncio.get_running_loop().time() < deadline, (sizes, worker.output()[-3000:])
        assert worker.proc.poll() is None, worker.output()[-3000:]
        await asyncio.sleep(0.5)
        sizes = await asyncio.to_thread(
            checkpoint_values, kafka.bootstrap_servers, settings.checkpoint_topic, key
        )

    alerts = [
        orjson.loads(v)
        for _, v, _ in await read_topic(kafka, settings.topics.alerts, until=50, timeout=5)
    ]
    silence = [a for a in alerts if a["model"] == "gone" and a["detector"]["type"] == "silence"]
    assert len(silence) == 1
    assert silence[0]["event_id"] == "g-4"
    assert "forgot 1 idle models: gone" in worker.output()
