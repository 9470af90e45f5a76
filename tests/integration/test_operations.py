"""What operators and other clients see of a real worker: Prometheus, kcat, readiness, make run."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import free_ports, streamproc_command
from streamproc.topics import ensure_topics
from tests.integration.prometheus_fixtures import (  # noqa: F401 (a fixture)
    PrometheusFactory,
    prometheus_factory,
)
from tests.integration.workers import (
    Cluster,
    demo_events,
    produce_events,
    wait_for_processed,
    wait_until_consumed,
)

pytestmark = pytest.mark.timeout(300)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


async def test_prometheus_reads_a_running_workers_metrics(
    kafka: LocalKafka,
    cluster: Cluster,
    prometheus_factory: PrometheusFactory,  # noqa: F811
) -> None:
    settings = cluster.settings()
    await ensure_topics(settings)
    events = demo_events(30)
    await produce_events(kafka, settings, events)
    worker = cluster.start_worker()
    await wait_for_processed(worker, len(events))
    prometheus = prometheus_factory([f"127.0.0.1:{worker.metrics_port}"])
    result = prometheus.wait_for(
        f'sum(streamproc_events_total{{topic="{settings.topics.features}"}})',
        lambda r: bool(r) and float(r[0]["value"][1]) > 0,
    )
    features = sum(1 for kind, _ in events if kind.value == "feature")
    assert float(result[0]["value"][1]) == features
    assert prometheus.wait_for('streamproc_ready{job="streamproc"}')[0]["value"][1] == "1"


async def test_readyz_turns_true_once_partitions_are_assigned(
    kafka: LocalKafka, cluster: Cluster
) -> None:
    await ensure_topics(cluster.settings())
    worker = cluster.start_worker()
    url = f"http://127.0.0.1:{worker.metrics_port}"
    deadline = time.monotonic() + 60
    seen: list[int] = []
    while time.monotonic() < deadline:
        status = http_status(f"{url}/readyz")
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        if status == 200:
            break
        assert worker.proc.poll() is None, worker.output()[-2000:]
        await asyncio.sleep(0.05)
    assert seen == [503, 200], "not ready until partitions are assigned and restored, then ready"
    assert http_status(f"{url}/healthz") == 200
    assert "state recovered for partitions [0, 1, 2, 3]" in worker.output()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat missing (make tools installs it)")
async def test_kcat_produces_events_and_reads_alerts_and_dead_letters(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    """A client we did not write: kcat, producing with the partitioner docs/partitioning.md
    asks of librdkafka clients, and reading our headers."""
    settings = cluster.settings()
    topics = settings.topics
    await ensure_topics(settings)
    lines = [
        f"fraud-v3|{json.dumps(body)}"
        for kind, body in demo_events(40)
        if kind.value == "feature" and body["model"] == "fraud-v3"
    ]
    lines.append("fraud-v3|{not json")
    source = tmp_path / "kcat-input.txt"
    source.write_text("\n".join(lines) + "\n")
    brokers = kafka.bootstrap_servers
    produce = ["kcat", "-P", "-b", brokers, "-t", topics.features, "-K", "|", "-l", str(source)]
    produce += ["-X", "partitioner=murmur2_random"]
    await asyncio.to_thread(subprocess.run, produce, check=True, timeout=60)
    worker = cluster.start_worker()
    await wait_until_consumed(kafka, settings.kafka.group_id, [topics.features], worker)

    alerts = kcat_read(brokers, topics.alerts, "%k\t%s\n")
    schema = json.loads(
        resources.files("streamproc").joinpath("schemas/alert.schema.json").read_text()
    )
    assert alerts, "the mean shift of fraud-v3 is detected"
    for line in alerts:
        key, value = line.split("\t", 1)
        alert = json.loads(value)
        jsonschema.validate(alert, schema)
        assert key == "fraud-v3" == alert["model"]
    dead = kcat_read(brokers, topics.dead_letters, "%h\t%s\n")
    assert len(dead) == 1
    headers, value = dead[0].split("\t", 1)
    assert "streamproc.reason=invalid_json" in headers
    assert value == "{not json"


def kcat_read(brokers: str, topic: str, fmt: str) -> list[str]:
    done = subprocess.run(
        ["kcat", "-C", "-b", brokers, "-t", topic, "-e", "-q", "-f", fmt],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [line for line in done.stdout.splitlines() if line]


def test_make_run_shows_demo_alerts_within_a_minute(tmp_path: Path) -> None:
    """What a new user sees: `make run` runs `streamproc run-local`."""
    port = free_ports(1)[0]
    command = ["run-local", "--port", str(port), "--duration", "150", "--dir", str(tmp_path)]
    proc = subprocess.Popen(
        streamproc_command(*command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    demo_started = first_alert = None
    output = []
    try:
        for line in proc.stdout:
            output.append(line)
            if demo_started is None and line.startswith("demo: at"):
                demo_started = time.monotonic()
            if line.startswith(("[WARNING]", "[CRITICAL]")):
                first_alert = time.monotonic()
                break
    finally:
        proc.terminate()  # SIGTERM: run-local stops its children and the broker
        rest, _ = proc.communicate(timeout=90)
        output.append(rest)
    assert demo_started is not None and first_alert is not None, "".join(output)[-3000:]
    assert first_alert - demo_started < 60, f"first alert after {first_alert - demo_started:.0f} s"
    assert "stopping Kafka" in "".join(output)
    lines = "".join(output).splitlines()
    others = [line for line in lines if line.strip() and not line.startswith(SCREEN_LINES)]
    assert not others, f"the screen shows only the demo and alerts: {others[:5]}"


SCREEN_LINES = ("run-local: ", "demo: ", "[INFO] ", "[WARNING] ", "[CRITICAL] ", "RESOLVED [")
"""What `make run` prints: its own and the demo's lines, and alerts (streamproc.alerts.summarize);
library warnings go to the worker's log file."""
