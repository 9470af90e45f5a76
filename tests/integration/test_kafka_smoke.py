"""The local broker is a real Kafka: clients talk to it, and it leaves nothing behind."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from aiokafka.structs import ConsumerRecord

from streamproc.dev.localkafka import LocalKafka, is_broker
from streamproc.dev.processes import free_ports, port_open, streamproc_command

from .conftest import ConsumerFactory, ProducerFactory, TopicFactory

KEYS = [f"key-{i}".encode() for i in range(8)]
ROUNDS = 10


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord]:
    """Up to ``count`` records; gives up after about 30 s so a lost record fails, not hangs."""
    records: list[ConsumerRecord] = []
    for _ in range(60):
        if len(records) >= count:
            break
        batches = await consumer.getmany(timeout_ms=500)
        records.extend(r for batch in batches.values() for r in batch)
    return records


async def test_records_arrive_intact_and_in_order_per_partition(
    topic_factory: TopicFactory,
    producer_factory: ProducerFactory,
    consumer_factory: ConsumerFactory,
) -> None:
    topic = await topic_factory(partitions=3)
    producer = await producer_factory()
    values = [(key, f"{key.decode()}#{n}".encode()) for n in range(ROUNDS) for key in KEYS]
    futures = [await producer.send(topic, value, key=key) for key, value in values]
    metas = await asyncio.gather(*futures)  # sent in order, acknowledged in batches
    sent = [(key, value, meta) for (key, value), meta in zip(values, metas, strict=True)]

    consumer = await consumer_factory(topic)
    records = await consume(consumer, len(sent))

    sent_by_partition = defaultdict(list)
    for key, value, meta in sent:
        sent_by_partition[meta.partition].append((key, value))
    got_by_partition = defaultdict(list)
    for record in records:
        got_by_partition[record.partition].append((record.key, record.value))
    assert len(records) == len(sent)
    assert got_by_partition == sent_by_partition
    assert len(got_by_partition) > 1, "the keys should spread over several partitions"
    for record in records:
        assert record.value.startswith(record.key + b"#")
    for partition in got_by_partition:
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == list(range(len(offsets)))


async def test_topic_metadata_shows_requested_partitions(
    topic_factory: TopicFactory, kafka_admin: AIOKafkaAdminClient
) -> None:
    topic = await topic_factory(partitions=4)

    [described] = await kafka_admin.describe_topics([topic])

    assert described["error_code"] == 0
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3]
    assert {p["leader"] for p in described["partitions"]} == {1}


async def test_topics_are_never_created_implicitly(
    producer_factory: ProducerFactory, kafka_admin: AIOKafkaAdminClient
) -> None:
    missing = f"never-created-{uuid.uuid4().hex[:8]}"
    producer = await producer_factory(request_timeout_ms=2000)

    with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):
        await producer.send_and_wait(missing, b"lost")

    assert missing not in await kafka_admin.list_topics()


def test_stop_leaves_no_process_and_no_files() -> None:
    port, controller_port = free_ports(2)
    broker = LocalKafka(port, controller_port).start()
    pid, work_dir = broker.pid, broker.work_dir
    try:
        assert pid is not None and is_broker(pid, work_dir)
        assert (broker.data_dir / "meta.properties").is_file()
    finally:
        broker.stop()

    assert not is_broker(pid, work_dir)
    assert not Path(f"/proc/{pid}").exists() or b"kafka.Kafka" not in _cmdline(pid)
    assert not work_dir.exists()
    assert not port_open(port)


def test_cli_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "kafka"
    port, controller_port = free_ports(2)
    up = ["up", "--port", str(port), "--controller-port", str(controller_port)]
    try:
        started = _cli(*up, "--state-dir", str(state))
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout
        again = _cli(*up, "--state-dir", str(state))
        assert again.returncode == 0 and "already running" in again.stdout, again.stderr
        assert _cli("status", "--state-dir", str(state)).returncode == 0
    finally:
        down = _cli("down", "--state-dir", str(state))
    assert down.returncode == 0, down.stderr
    assert not state.exists()
    assert not port_open(port)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = streamproc_command("kafka", *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
