"""Topic set-up and the partitioning contract, checked before the worker starts.

Events are keyed by model id, and a model's features and outcomes must land on
the same partition number of their topics so that one worker owns all of a
model's streams. That holds only when both topics have the same partition
count, so the worker refuses to start otherwise, with a message that says how
to fix it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamproc.connection import aiokafka_options
from streamproc.errors import KafkaSetupError
from streamproc.kafka_errors import check_connection, translated
from streamproc.settings import Settings

log = logging.getLogger(__name__)

_TOPIC_EXISTS = 36
LEADER_WAIT_SECONDS = 30.0
CHECKPOINT_MAX_BYTES = 16 * 1024 * 1024
"""Producer and topic limit for checkpoint records: headroom only, since snapshots are split
into records of at most ``checkpoints.PART_BYTES`` (512 KiB) plus a small header."""
CHECKPOINT_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "max.message.bytes": str(CHECKPOINT_MAX_BYTES),
}


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """What the worker found (or made) on the cluster."""

    partitions: dict[str, int]
    """Partition count per topic name."""
    created: tuple[str, ...]
    """Topics the check created because they were missing."""


def required_topics(settings: Settings) -> list[str]:
    t = settings.topics
    return [t.features, t.outcomes, t.alerts, t.dead_letters]


@asynccontextmanager
async def admin_client(
    settings: Settings, timeout_ms: int = 30_000
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, after the connection check (a wrong password or CA fails
    here, naming its setting); Kafka errors inside the block are translated too."""
    await check_connection(settings.kafka)
    admin = AIOKafkaAdminClient(**aiokafka_options(settings.kafka), request_timeout_ms=timeout_ms)
    try:
        async with translated(settings.kafka):
            await admin.start()
            yield admin
    finally:
        await admin.close()


async def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partition count of each existing topic among ``names``."""
    async with admin_client(settings) as admin:
        return await _partition_counts(admin, names)


async def ensure_topics(settings: Settings) -> TopicLayout:
    """Create missing topics (the checkpoint topic compacted, one partition per source
    partition), then check the partitioning contract."""
    names = required_topics(settings)
    async with admin_client(settings) as admin:
        partitions = await _partition_counts(admin, names)
        missing = [name for name in names if name not in partitions]
        if missing:
            await _create(admin, settings, missing)
            partitions = await _wait_for_leaders(admin, names)
        check_copartitioned(settings, partitions)
        created = tuple(missing)
        checkpoints = settings.checkpoint_topic
        counts = await _partition_counts(admin, [checkpoints])
        if not counts:
            count = partitions[settings.topics.features]
            await _create(admin, settings, [checkpoints], count, CHECKPOINT_TOPIC_CONFIG)
            counts = await _wait_for_leaders(admin, [checkpoints])
            created += (checkpoints,)
        partitions |= counts
    check_checkpoints(settings, partitions)
    return TopicLayout(partitions, created)


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts of the topics among ``names`` that exist and have every leader elected
    (until then, clients get NotLeaderForPartition and retry noisily)."""
    counts: dict[str, int] = {}
    for topic in await admin.describe_topics(names):
        parts = topic["partitions"]
        if topic["error_code"] == 0 and parts and all(p["leader"] >= 0 for p in parts):
            counts[topic["topic"]] = len(parts)
    return counts


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition counts once every new partition has a leader (or the wait ran out)."""
    deadline = asyncio.get_running_loop().time() + LEADER_WAIT_SECONDS
    while True:
        counts = await _partition_counts(admin, names)
        if len(counts) == len(names) or asyncio.get_running_loop().time() >= deadline:
            return counts
        await asyncio.sleep(0.2)


async def _create(
    admin: AIOKafkaAdminClient,
    settings: Settings,
    names: list[str],
    partitions: int | None = None,
    config: dict[str, str] | None = None,
) -> None:
    t = settings.topics
    count = partitions or t.partitions
    response = await admin.create_topics(
        [NewTopic(name, count, t.replication_factor, topic_configs=config or {}) for name in names]
    )
    for topic, code, *message in response.topic_errors:
        if code not in (0, _TOPIC_EXISTS):
            detail = message[0] if message else ""
            raise KafkaSetupError(f"cannot create topic {topic!r}: error {code} {detail}".strip())
        log.info("created topic %s (%d partitions)", topic, count)


def check_copartitioned(settings: Settings, partitions: dict[str, int]) -> None:
    """Raise unless the feature and outcome topics have the same partition count."""
    features, outcomes = settings.topics.features, settings.topics.outcomes
    nf, no = partitions.get(features), partitions.get(outcomes)
    if nf is None or no is None:
        raise KafkaSetupError(f"topics {features!r} and {outcomes!r} must exist")
    if nf != no:
        raise KafkaSetupError(
            f"topic {features!r} has {nf} partitions but {outcomes!r} has {no}: feature and "
            "outcome topics must have the same partition count, so that each model's events "
            "meet on one worker (see docs/partitioning.md; add partitions to the smaller one "
            "with kafka-topics.sh --alter --partitions)"
        )


def check_checkpoints(settings: Settings, partitions: dict[str, int]) -> None:
    """The checkpoint topic needs a partition per source partition."""
    have = partitions.get(settings.checkpoint_topic, 0)
    need = partitions[settings.topics.features]
    if have < need:
        raise KafkaSetupError(
            f"checkpoint topic {settings.checkpoint_topic!r} has {have} partitions but "
            f"{settings.topics.features!r} has {need}: add partitions to the checkpoint topic"
        )
