"""One real Kafka broker for the whole run, and factories for what tests make on it.

The broker starts on free ports the first time a test asks for ``kafka`` and is
always stopped: the fixture's ``finally`` covers failures and Ctrl-C, and
:class:`~streamproc.dev.localkafka.LocalKafka` adds an atexit guard and (on Linux) a
parent-death signal for a killed pytest. Missing java or Maven fail every
integration test with the install hint; they never skip, so CI cannot pass
without a broker. When a test failed, ``broker.log`` is kept and its path shown.

Factories make uniquely named topics and started clients and clean them up when
the test ends, so tests never share state through the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import UnknownTopicOrPartitionError, for_code

from streamproc.dev.localkafka import LocalKafka
from streamproc.dev.processes import free_ports
from streamproc.errors import BrokerError
from tests.integration.workers import Cluster

BROKER = pytest.StashKey[LocalKafka]()
TOPIC_READY_SECONDS = 30.0


class TopicFactory(Protocol):
    async def __call__(self, partitions: int = 1) -> str: ...


class ProducerFactory(Protocol):
    async def __call__(self, **config: Any) -> AIOKafkaProducer: ...


class ConsumerFactory(Protocol):
    async def __call__(self, *topics: str, **config: Any) -> AIOKafkaConsumer: ...


@pytest.fixture(scope="session")
def kafka(request: pytest.FixtureRequest) -> Iterator[LocalKafka]:
    port, controller_port = free_ports(2)
    broker = LocalKafka(port, controller_port)
    request.config.stash[BROKER] = broker
    error = _start(broker)
    if error is not None:  # fail, never skip: CI must not pass without a broker
        pytest.fail(f"the local Kafka broker did not start: {error}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop(keep_logs=request.session.testsfailed > 0)


def _start(broker: LocalKafka) -> BrokerError | None:
    """The error, outside its ``except``, so the failure shows it once, without a chain."""
    try:
        broker.start()  # stops what it started if it fails
    except BrokerError as exc:
        return exc
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    broker = terminalreporter.config.stash.get(BROKER, None)
    if broker is None:
        return
    terminalreporter.write_sep("-", "local Kafka broker")
    if broker.startup_seconds is None:
        terminalreporter.write_line("the broker did not start")
    else:
        terminalreporter.write_line(
            f"Kafka {broker.version} at {broker.bootstrap_servers}: start-up "
            f"{broker.startup_seconds:.2f} s (java launch to first Metadata answer)"
        )
    with contextlib.suppress(BrokerError):  # never started: no work dir
        if broker.log_path.exists():
            terminalreporter.write_line(f"broker log kept: {broker.log_path}")


@pytest.fixture
async def kafka_admin(kafka: LocalKafka) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@pytest.fixture
async def topic_factory(
    kafka_admin: AIOKafkaAdminClient, request: pytest.FixtureRequest
) -> AsyncIterator[TopicFactory]:
    created: list[str] = []

    async def create(partitions: int = 1) -> str:
        name = f"{re.sub(r'[^A-Za-z0-9._-]', '-', request.node.name)[:80]}-{uuid.uuid4().hex[:8]}"
        await create_topic(kafka_admin, name, partitions)
        created.append(name)
        return name

    yield create
    if created:
        await delete_topics(kafka_admin, created)


@pytest.fixture
async def producer_factory(kafka: LocalKafka) -> AsyncIterator[ProducerFactory]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**config: Any) -> AIOKafkaProducer:
            producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, **config)
            await producer.start()
            stack.push_async_callback(producer.stop)
            return producer

        yield make


@pytest.fixture
async def consumer_factory(kafka: LocalKafka) -> AsyncIterator[ConsumerFactory]:
    """Consumers read from the beginning and commit nothing unless a test says otherwise."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(*topics: str, **config: Any) -> AIOKafkaConsumer:
            config = {"auto_offset_reset": "earliest", "enable_auto_commit": False, **config}
            consumer = AIOKafkaConsumer(
                *topics, bootstrap_servers=kafka.bootstrap_servers, **config
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            return consumer

        yield make


async def create_topic(admin: AIOKafkaAdminClient, name: str, partitions: int) -> None:
    """Create ``name`` and return once every partition has a leader, so clients can use it."""
    response = await admin.create_topics([NewTopic(name, partitions, replication_factor=1)])
    for topic, code, *message in response.topic_errors:
        if code:
            raise for_code(code)(f"creating topic {topic}: {message}")
    deadline = time.monotonic() + TOPIC_READY_SECONDS
    while not await _has_leaders(admin, name, partitions):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name} has no leaders after {TOPIC_READY_SECONDS:g} s")
        await asyncio.sleep(0.05)


async def _has_leaders(admin: AIOKafkaAdminClient, name: str, partitions: int) -> bool:
    [topic] = await admin.describe_topics([name])
    parts = topic["partitions"]
    ok = topic["error_code"] == 0 and len(parts) == partitions
    return ok and all(p["error_code"] == 0 and p["leader"] >= 0 for p in parts)


async def delete_topics(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Delete topics; one a test already deleted is fine."""
    response = await admin.delete_topics(names)
    for topic, code, *_ in response.topic_error_codes:
        if code and code != UnknownTopicOrPartitionError.errno:
            raise for_code(code)(f"deleting topic {topic}")


@pytest.fixture
def cluster(kafka: LocalKafka, tmp_path: Path) -> Iterator[Cluster]:
    """Per-test topic names and group, and the workers the test starts (killed at the end)."""
    c = Cluster(kafka, tmp_path)
    try:
        yield c
    finally:
        for worker in c.workers:
            worker.stop(signal.SIGKILL)
