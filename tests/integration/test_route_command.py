"""``streamproc route`` as operators run it: a process that delivers, serves /metrics, stops."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import child_env, free_ports, spawn, streamproc_command
from streamproc.dev.scrape import scraped_total
from tests.integration.conftest import ProducerFactory, TopicFactory
from tests.integration.route_harness import SECRET, alert, encode, receiver, until


def start_route(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """The command as a process of its own, killed with its parent (pytest)."""
    with log.open("wb") as out:
        cmd = streamproc_command("route", "--metrics-port", str(port))
        return spawn(cmd, env, out, die_with_parent=True)


def delivered(port: int) -> float:
    return scraped_total(port, "streamproc_route_delivered_total", sink="webhook")


async def test_route_command_delivers_and_stops_cleanly(
    kafka: LocalKafka,
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    tmp_path: Path,
) -> None:
    alerts, dead = await topic_factory(), await topic_factory()
    producer = await producer_factory()
    await producer.send_and_wait(alerts, encode(alert("a-1")), key=b"m")
    (port,) = free_ports(1)
    log = tmp_path / "route.log"
    async with receiver() as hook:
        env = child_env(
            {
                "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "STREAMPROC_TOPICS_ALERTS": alerts,
                "STREAMPROC_TOPICS_DEAD_LETTERS": dead,
                "STREAMPROC_ROUTE_GROUP_ID": f"{alerts}-route",
                "STREAMPROC_ROUTE_GROUP_DELAY_SECONDS": "0",
                "STREAMPROC_ROUTE_WEBHOOK_URL": hook.url,
                "STREAMPROC_ROUTE_WEBHOOK_SECRET": SECRET,
            }
        )
        proc = start_route(env, port, log)
        try:
            await until(lambda: len(hook.received) == 1, what="the webhook got the alert")
            await until(lambda: delivered(port) == 1.0, what="/metrics counts it")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
    output = log.read_text()
    assert code == 0, output
    assert SECRET not in output
    assert "routing" in output and "webhook" in output
