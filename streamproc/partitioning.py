"""The partitioning rule: a model's events are accepted on one partition only.

A model's detector state lives with the partition its events arrive on. If its events
arrived on two partitions (an array mixing models, a producer keying by something else,
or a client whose default partitioner differs, like librdkafka's ``consistent_random``),
two workers, or one worker's two checkpoint partitions, would each hold half of its
state. So each event must arrive on the partition Kafka's default partitioner (murmur2,
as the Java client and aiokafka use, ``murmur2_random`` in librdkafka) assigns to its
model id; any other is rejected with ``wrong_partition``. Every worker decides this alone,
from the id and the partition count, so no coordination is needed and the outcome is the
same wherever the event is seen (docs/partitioning.md).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from streamproc.events import Reason, Rejection

CACHE_SIZE = 100_000
"""Expected partitions remembered; beyond this the cache starts afresh (ids are bounded by
``limits.max_models`` per worker, but rejected ids are not)."""
FIX = "partitioner=murmur2_random"


def expected_partition(model: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message keyed by ``model``."""
    return (int(murmur2(model.encode())) & 0x7FFFFFFF) % partitions


class PartitionRule:
    """Checks events against :func:`expected_partition`, once per model id (cached)."""

    def __init__(self, partitions: int, cache_size: int = CACHE_SIZE) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.partitions = partitions
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size

    def expected(self, model: str) -> int:
        """Where ``model``'s events belong (murmur2 costs microseconds: computed once)."""
        partition = self._cache.get(model)
        if partition is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            partition = self._cache[model] = expected_partition(model, self.partitions)
        return partition

    def check(self, model: str, partition: int) -> Rejection | None:
        """None when ``partition`` is ``model``'s own, else the rejection."""
        expected = self.expected(model)
        if expected == partition:
            return None
        return Rejection(
            Reason.WRONG_PARTITION,
            f"model: {model!r} arrived on partition {partition} but belongs on partition "
            f"{expected} of {self.partitions} (murmur2 of the model id): key every message by "
            f"its model id, one model per array, with Kafka's default partitioner ({FIX} in "
            "librdkafka clients such as kcat and confluent-kafka)",
            model=model,
        )


class Misrouted:
    """Remembers which (model, partition) pairs were already reported, so that the worker
    logs each misrouting once rather than per event; bounded: when full it starts afresh
    (a pair may then be reported again)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._seen: set[tuple[str, int]] = set()
        self._capacity = capacity

    def first(self, model: str, partition: int) -> bool:
        """True the first time ``model`` is seen misrouted to ``partition``."""
        pair = (model, partition)
        if pair in self._seen:
            return False
        if len(self._seen) >= self._capacity:
            self._seen.clear()
        self._seen.add(pair)
        return True
