"""One model, one partition, on the real broker with a real worker: kcat's default partitioner
(librdkafka's consistent_random) next to aiokafka's murmur2 is detected and never splits a
model's state; with ``partitioner=murmur2_random`` every event is accepted."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from streamproc.checkpoints import MODEL_PREFIX
from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.scrape import Sample, matching, scrape
from streamproc.settings import Settings
from streamproc.topics import ensure_topics
from tests.integration.workers import (
    DRIFT_ONLY,
    Cluster,
    WorkerProcess,
    header,
    keyed_json,
    processed_events,
    produce,
    read_topic,
    wait_until_consumed,
)

NO_KCAT = "kcat missing (make tools installs it)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not shutil.which("kcat"), reason=NO_KCAT)]

PARTITIONS = 8
MODELS = [f"model-{i}" for i in range(8)]
PER_MODEL = 5
T0 = 1_764_000_000_000


def expected_partition(model: str, partitions: int) -> int:
    """Where aiokafka (murmur2, like the Java client) puts a message keyed by ``model``."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(model.encode(), every, every))


def bodies(source: str) -> list[dict[str, object]]:
    return [
        {"model": m, "id": f"{source}-{m}-{i}", "ts": T0 + i, "features": {"x": float(i)}}
        for i in range(PER_MODEL)
        for m in MODELS
    ]


def kcat(brokers: str, *args: str) -> list[str]:
    done = subprocess.run(
        ["kcat", "-b", brokers, *args], check=True, capture_output=True, text=True, timeout=60
    )
    return [line for line in done.stdout.splitlines() if line]


def kcat_produce(brokers: str, topic: str, source: Path, *config: str) -> None:
    """Keyed by model id, with kcat's own partitioner unless ``config`` sets one."""
    lines = [f"{b['model']}|{orjson.dumps(b).decode()}" for b in bodies("kcat")]
    source.write_text("\n".join(lines) + "\n")
    kcat(brokers, "-P", "-t", topic, "-K", "|", "-l", str(source), *config)


def landed(brokers: str, topic: str) -> dict[tuple[str, str], set[int]]:
    """(producer, model) -> the partitions its events landed on."""
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for line in kcat(brokers, "-C", "-t", topic, "-e", "-q", "-f", "%p\t%s\n"):
        partition, value = line.split("\t", 1)
        body = orjson.loads(value)
        where[(str(body["id"]).split("-", 1)[0], body["model"])].add(int(partition))
    return where


def checkpoint_partitions(brokers: str, topic: str) -> dict[str, set[int]]:
    """model -> the checkpoint partitions holding a record of it."""
    owners: dict[str, set[int]] = defaultdict(set)
    for line in kcat(brokers, "-C", "-t", topic, "-e", "-q", "-f", "%p\t%k\n"):
        partition, key = line.split("\t", 1)
        if key.startswith(MODEL_PREFIX.decode()):
            owners[key[len(MODEL_PREFIX) :]].add(int(partition))
    return owners


def metric(worker: WorkerProcess, name: str) -> list[Sample]:
    """Samples called ``name`` from the worker's /metrics."""
    return matching(scrape(worker.metrics_port), name)


async def run_worker(kafka: LocalKafka, cluster: Cluster, settings: Settings) -> WorkerProcess:
    worker = cluster.start_worker(**DRIFT_ONLY, STREAMPROC_TOPICS_PARTITIONS=str(PARTITIONS))
    await wait_until_consumed(kafka, settings.kafka.group_id, [settings.topics.features], worker)
    return worker


async def setup(kafka: LocalKafka, cluster: Cluster) -> Settings:
    settings = cluster.settings(STREAMPROC_TOPICS_PARTITIONS=str(PARTITIONS))
    layout = await ensure_topics(settings)
    assert layout.partitions[settings.topics.features] == PARTITIONS
    await produce(kafka, settings.topics.features, keyed_json(bodies("aiokafka")))
    return settings


async def test_kcats_default_partitioner_is_detected_and_never_splits_state(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = await setup(kafka, cluster)
    brokers, topics = kafka.bootstrap_servers, settings.topics
    await asyncio.to_thread(kcat_produce, brokers, topics.features, tmp_path / "in.txt")
    where = landed(brokers, topics.features)
    home = {m: expected_partition(m, PARTITIONS) for m in MODELS}
    assert all(where[("aiokafka", m)] == {home[m]} for m in MODELS)
    moved = sorted(m for m in MODELS if where[("kcat", m)] != {home[m]})
    assert len(moved) >= 4, f"consistent_random placed most models elsewhere: {where}"
    print(f"kcat's default put {len(moved)} of {len(MODELS)} models elsewhere: {moved}")

    worker = await run_worker(kafka, cluster, settings)

    dead = await read_topic(kafka, topics.dead_letters, until=PER_MODEL * len(moved), timeout=30)
    assert len(dead) == PER_MODEL * len(moved)
    rejected: dict[str, set[int]] = defaultdict(set)
    for _, value, headers in dead:
        assert header(headers, "streamproc.reason") == "wrong_partition"
        assert "partitioner=murmur2_random" in header(headers, "streamproc.message")
        body = orjson.loads(value)
        assert str(body["id"]).startswith("kcat-")
        rejected[body["model"]].add(int(header(headers, "streamproc.source.partition")))
    assert sorted(rejected) == moved
    assert all(rejected[m] == where[("kcat", m)] for m in moved)

    counted = metric(worker, "streamproc_wrong_partition_events_total")
    assert sum(s.value for s in counted) == PER_MODEL * len(moved)
    assert processed_events(worker.metrics_port) == PER_MODEL * (2 * len(MODELS) - len(moved))
    output = worker.output()
    for m in moved:
        [arrived] = where[("kcat", m)]
        assert (
            f"model {m!r} arrived on partition {arrived} of {topics.features} but belongs on "
            f"partition {home[m]}"
        ) in output

    assert worker.stop(signal.SIGTERM) == 0  # the final checkpoint
    owners = checkpoint_partitions(brokers, settings.checkpoint_topic)
    assert owners == {m: {home[m]} for m in MODELS}


async def test_murmur2_random_makes_kcat_agree_with_aiokafka(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = await setup(kafka, cluster)
    brokers, topics = kafka.bootstrap_servers, settings.topics
    fix = ("-X", "partitioner=murmur2_random")
    await asyncio.to_thread(kcat_produce, brokers, topics.features, tmp_path / "in.txt", *fix)
    where = landed(brokers, topics.features)
    assert all(where[("kcat", m)] == where[("aiokafka", m)] for m in MODELS)

    worker = await run_worker(kafka, cluster, settings)

    assert processed_events(worker.metrics_port) == PER_MODEL * 2 * len(MODELS)
    assert kcat(brokers, "-C", "-t", topics.dead_letters, "-e", "-q", "-f", "%s\n") == []
    assert metric(worker, "streamproc_wrong_partition_events_total") == []
    assert worker.stop(signal.SIGTERM) == 0
    owners = checkpoint_partitions(brokers, settings.checkpoint_topic)
    assert owners == {m: {expected_partition(m, PARTITIONS)} for m in MODELS}
