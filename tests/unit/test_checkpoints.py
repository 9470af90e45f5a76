"""Checkpoint and recovery logic without a broker: crashes anywhere give the same alerts.

A checkpoint partition is simulated as the list of records written to it (what
compaction keeps is computed by :func:`read_partition`). Each "life" restores
from it, re-processes from the watermark to a committed offset that may lie
before or after it, processes random batches, checkpoints now and then,
sometimes crashing half-way through writing a checkpoint, and dies.
"""

from __future__ import annotations

import itertools
import random

import orjson
import pytest

from streamproc.checkpoints import (
    MANIFEST_KEY,
    encode_manifest,
    encode_model,
    model_key,
    read_partition,
)
from streamproc.demo import scenario
from streamproc.engine import Engine
from streamproc.errors import StateError
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import EngineSettings, Limits

KINDS = (EventKind.FEATURE, EventKind.OUTCOME)


def source_topics(seconds: float = 90.0) -> dict[EventKind, list[Record]]:
    topics: dict[EventKind, list[Record]] = {kind: [] for kind in KINDS}
    # Without the labelled model: these runs skew the topics far beyond its label delay.
    events = scenario(rate=100, seed=11, start_ms=1_764_000_000_000, labelled=False)
    for e in itertools.takewhile(lambda e: e.at_seconds < seconds, events):
        records = topics[e.kind]
        topic = "features" if e.kind is EventKind.FEATURE else "outcomes"
        value = orjson.dumps(e.body)
        records.append(Record(topic, 0, len(records), 0, e.model.encode(), value, e.kind))
    return topics


TOPICS = source_topics()


def fresh() -> Pipeline:
    return Pipeline(Engine(EngineSettings(), Limits()), Limits())


def uninterrupted() -> set[str]:
    pipeline = fresh()
    return {a.alert_id for kind in KINDS for a in pipeline.handle(TOPICS[kind], 0).alerts}


def handle(pipeline: Pipeline, records: list[Record]) -> set[str]:
    return {a.alert_id for a in pipeline.handle(records, 0).alerts}


def crashing_run(seed: int) -> set[str]:
    rng = random.Random(seed)
    log: list[tuple[bytes | None, bytes | None]] = []
    committed = dict.fromkeys(KINDS, 0)
    ids: set[str] = set()
    for _life in range(6):
        pipeline = fresh()
        watermark = pipeline.restore(0, read_partition(log))
        position = {}
        for index, kind in enumerate(KINDS):
            if committed[kind] > watermark[index]:  # a previous owner committed past it
                ids |= handle(pipeline, TOPICS[kind][watermark[index] : committed[kind]])
            position[kind] = committed[kind]
        for _step in range(rng.randrange(5, 40)):
            kind = rng.choice(KINDS)
            batch = TOPICS[kind][position[kind] : position[kind] + rng.randrange(1, 200)]
            ids |= handle(pipeline, batch)
            position[kind] += len(batch)
            if rng.random() < 0.3:  # Faust commits some, not necessarily all, of what it did
                committed[kind] = max(committed[kind], position[kind] - rng.randrange(0, 50))
            if rng.random() < 0.2:
                records = pipeline.round(0, 0).records
                landed = len(records) if rng.random() < 0.7 else rng.randrange(len(records))
                log += records[:landed]
                if landed < len(records):
                    break  # killed while writing the checkpoint
    pipeline = fresh()
    watermark = pipeline.restore(0, read_partition(log))
    for index, kind in enumerate(KINDS):
        start = min(watermark[index], committed[kind])
        ids |= handle(pipeline, TOPICS[kind][start:])
    return ids


def test_the_scenario_has_alerts_to_lose() -> None:
    assert len(uninterrupted()) >= 3


@pytest.mark.parametrize("seed", range(12))
def test_crashes_at_random_points_give_the_uninterrupted_alerts(seed: int) -> None:
    assert crashing_run(seed) == uninterrupted()


def test_read_partition_applies_compaction_semantics() -> None:
    log: list[tuple[bytes | None, bytes | None]] = [
        (model_key("a"), encode_model("a", (5, 3), b'{"version":1,"models":{}}')),
        (model_key("b"), encode_model("b", (5, 3), b"{}")),
        (MANIFEST_KEY, encode_manifest((5, 3), 2, 0)),
        (model_key("b"), None),
        (model_key("a"), encode_model("a", (9, 4), b"{}")),
    ]
    checkpoint = read_partition(log)
    assert checkpoint.watermark == (5, 3)
    assert set(checkpoint.models) == {"a"}
    assert checkpoint.models["a"].offsets == (9, 4)


@pytest.mark.parametrize(
    "value",
    [b"not json", b'{"v": 2, "offsets": [1, 2]}', b'{"v": 1, "offsets": [1]}', b'{"v":1}'],
)
def test_corrupt_manifests_raise_state_error(value: bytes) -> None:
    with pytest.raises(StateError):
        read_partition([(MANIFEST_KEY, value)])
