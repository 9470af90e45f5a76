"""No checkpoint record exceeds the producer's limits, and one failing partition does not
hold back the others' checkpoints (issue #12, item 4).

A model with 10,000 numeric features (the default ``limits.max_streams_per_model``)
has a snapshot of about 16 MB: as one record it fails every round (the broker's
default ``message.max.bytes`` is 1 MB) and, before the fix, kept the other
partitions from being checkpointed.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson
import pytest
from river.drift import ADWIN

from streamproc.app import StreamprocApp
from streamproc.checkpoints import MANIFEST_KEY, read_partition
from streamproc.engine import Engine
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import EngineSettings, Limits, load_settings
from streamproc.stream_detectors import default_factory

BROKER_DEFAULT_MAX_BYTES = 1_048_588
"""Kafka's default ``message.max.bytes``: a record above it fails on a default topic."""

Log = list[tuple[bytes | None, bytes | None]]


def wide_records(model: str, features: int, rounds: int = 1, seed: int = 1) -> list[Record]:
    """Events of ``model`` that together carry ``features`` numeric features, 1,000 per
    event (the default ``limits.max_features_per_event``)."""
    rng = random.Random(seed)
    records = []
    for _ in range(rounds):
        for start in range(0, features, 1000):
            names = range(start, min(start + 1000, features))
            body = {"model": model, "features": {f"f{j}": rng.gauss(0, 1) for j in names}}
            value = orjson.dumps(body)
            records.append(
                Record("f", 0, len(records), 0, model.encode(), value, EventKind.FEATURE)
            )
    return records


def fresh() -> Pipeline:
    return Pipeline(Engine(EngineSettings(), Limits()), Limits())


def test_ten_thousand_features_checkpoint_in_records_under_the_broker_default() -> None:
    pipeline = fresh()
    out = pipeline.handle(wide_records("wide", 10_000), 0)
    assert not out.dead_letters
    snapshot = pipeline.engine.snapshot(["wide"])
    assert len(snapshot) > 10 * BROKER_DEFAULT_MAX_BYTES  # the case the limit is about
    records = pipeline.round(0, 0).records
    assert max(len(key) + len(value or b"") for key, value in records) < BROKER_DEFAULT_MAX_BYTES
    restored = fresh()
    restored.restore(0, read_partition(records))
    assert restored.engine.snapshot(["wide"]) == snapshot


def test_a_shorter_version_deletes_the_parts_it_no_longer_uses() -> None:
    pipeline = fresh()
    pipeline.handle(wide_records("m", 3000), 0)
    log: Log = list(pipeline.round(0, 0).records)
    assert pipeline.ledger.parts["m"] > 1
    pipeline.reset("m", 0)  # its state dropped, its checkpoint's part count kept
    pipeline.handle(wide_records("m", 10), 0)  # now small: one record
    later = pipeline.round(0, 0).records
    tombstones = [key for key, value in later if value is None]
    assert len(tombstones) == parts_before(log) - 1
    log += later
    live = {k: v for k, v in log if v is not None and k not in tombstones}
    assert not [k for k in live if k is not None and k.startswith(b"p/")]
    restored = fresh()
    restored.restore(0, read_partition(log))
    assert restored.engine.snapshot(["m"]) == pipeline.engine.snapshot(["m"])


def parts_before(log: Log) -> int:
    return 1 + sum(1 for key, _ in log if key is not None and key.startswith(b"p/"))


def test_a_part_from_another_version_is_never_stitched_in() -> None:
    old, new = fresh(), fresh()
    old.handle(wide_records("m", 3000, seed=1), 0)
    new.handle(wide_records("m", 3000, seed=2), 0)
    old_log = old.round(0, 0).records
    new_log = new.round(0, 0).records
    # the new version's head landed, one of its parts did not: the old part is still live
    stale_part = next(r for r in old_log if r[0].startswith(b"p/1/"))
    log: Log = [*old_log, *(r for r in new_log if not r[0].startswith(b"p/1/")), stale_part]
    checkpoint = read_partition(log)
    assert "m" not in checkpoint.models
    assert [i.key for i in checkpoint.invalid] == ["m/m"]


class FlakyCheckpointTopic:
    """The checkpoint topic, failing every send to one partition."""

    def __init__(self, failing: int) -> None:
        self.failing = failing
        self.landed: dict[int, list[bytes]] = {}

    async def send(self, key: bytes, value: bytes | None, partition: int) -> Any:
        if partition == self.failing:
            raise OSError(f"partition {partition} is unavailable")
        self.landed.setdefault(partition, []).append(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_one_failing_partition_does_not_block_the_others() -> None:
    app = StreamprocApp(load_settings(environ={}), clock=lambda: 0)
    for partition, model in enumerate(["p0", "p1", "p2"]):
        records = [
            Record(
                "f",
                partition,
                i,
                0,
                model.encode(),
                orjson.dumps({"model": model, "features": {"x": float(i)}}),
                EventKind.FEATURE,
            )
            for i in range(5)
        ]
        app.pipeline.handle(records, 0)
    app.ledger.owned.update({0, 1, 2})
    topic = FlakyCheckpointTopic(failing=1)
    app.checkpoint_topic = topic
    with pytest.raises(Exception, match="partition 1"):
        await app.checkpoint([0, 1, 2])
    assert MANIFEST_KEY in topic.landed[0]
    assert MANIFEST_KEY in topic.landed[2], "partition 2 was written despite partition 1"
    assert 1 not in topic.landed
    assert app.pipeline.ledger.dirty == {1: {"p1"}}, "the failed partition's models stay dirty"


class Unlisted(ADWIN):  # type: ignore[misc]
    """A detector the state codec refuses to encode."""


def test_a_model_that_cannot_be_encoded_does_not_hold_back_its_partition() -> None:
    processing = {"model": ""}

    def factory(spec: Any, standardized: bool) -> Any:
        if processing["model"] == "bad":
            return Unlisted()
        return default_factory(spec, standardized)

    pipeline = Pipeline(Engine(EngineSettings(), Limits(), detector_factory=factory), Limits())
    for offset, model in enumerate(["good", "bad", "good"]):
        processing["model"] = model
        body = {"model": model, "features": {"x": float(offset)}}
        record = Record("f", 0, offset, 0, model.encode(), orjson.dumps(body), EventKind.FEATURE)
        pipeline.handle([record], 0)
    round_ = pipeline.round(0, 0)
    records, watermark = round_.records, round_.watermark
    assert watermark == (3, 0)
    assert (b"m/bad", None) in records, "written as absent: its next owner starts afresh"
    checkpoint = read_partition(records)
    assert checkpoint.watermark == (3, 0)
    assert set(checkpoint.models) == {"good"}
