"""Checkpoint records are validated on restore, not trusted (issue #12, item 5).

Whoever can write the checkpoint topic decides what a worker restores. A record
that fails a check must cost only its own model (fresh state, reported), never
another model's state and never the partition.
"""

from __future__ import annotations

import orjson
import pytest

from streamproc.checkpoints import (
    MANIFEST_KEY,
    encode_manifest,
    encode_model,
    model_key,
    read_partition,
)
from streamproc.engine import Engine
from streamproc.errors import StateError
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import EngineSettings, Limits

Log = list[tuple[bytes | None, bytes | None]]


def fresh() -> Pipeline:
    return Pipeline(Engine(EngineSettings(), Limits()), Limits())


def feature_records(models: list[str], per_model: int = 40) -> list[Record]:
    records = []
    for i in range(per_model):
        for model in models:
            body = {"model": model, "features": {"x": float(i % 7), "y": float(i % 3)}}
            value = orjson.dumps(body)
            records.append(
                Record("f", 0, len(records), 0, model.encode(), value, EventKind.FEATURE)
            )
    return records


def checkpointed(models: list[str]) -> tuple[Pipeline, Log]:
    pipeline = fresh()
    pipeline.handle(feature_records(models), 0)
    records = pipeline.round(0, 0).records
    return pipeline, list(records)


def restored(log: Log) -> tuple[Pipeline, list[str]]:
    """A new pipeline restored from ``log``; also the keys reported as invalid."""
    checkpoint = read_partition(log)
    pipeline = fresh()
    pipeline.restore(0, checkpoint)
    return pipeline, [invalid.key for invalid in getattr(checkpoint, "invalid", [])]


def test_a_record_cannot_overwrite_another_models_state() -> None:
    original, log = checkpointed(["a", "b"])
    genuine_b = original.engine.snapshot(["b"])
    impostor = fresh()
    impostor.handle(feature_records(["b"], per_model=3), 0)
    # key m/c, but the header and snapshot say model "b": written after b's own record
    log.append((model_key("c"), encode_model("b", (0, 0), impostor.engine.snapshot(["b"]))))
    pipeline, invalid = restored(log)
    assert pipeline.engine.snapshot(["b"]) == genuine_b
    assert invalid == ["m/c"]


def test_a_snapshot_carrying_other_models_restores_nothing() -> None:
    original, log = checkpointed(["a", "b"])
    genuine_a = original.engine.snapshot(["a"])
    both = original.engine.snapshot(["b", "a"])  # a's state under b's record
    other = fresh()
    other.handle(feature_records(["a"], per_model=2), 0)
    smuggled = orjson.loads(both)
    smuggled["models"]["a"] = orjson.loads(other.engine.snapshot(["a"]))["models"]["a"]
    log.append((model_key("b"), encode_model("b", (0, 0), orjson.dumps(smuggled))))
    pipeline, invalid = restored(log)
    assert pipeline.engine.snapshot(["a"]) == genuine_a
    assert "b" not in pipeline.engine.models
    assert invalid == ["m/b"]


@pytest.mark.parametrize(
    "header",
    [
        {"v": 1, "model": "b", "offsets": ["1", 2]},
        {"v": 1, "model": "b", "offsets": [-1, 2]},
        {"v": 1, "model": "b", "offsets": [1.5, 2]},
        {"v": 1, "model": "b", "offsets": [1, 2, 3]},
        {"v": 1, "model": 7, "offsets": [1, 2]},
        {"v": "1", "model": "b", "offsets": [1, 2]},
        {"v": 1, "model": "b", "offsets": [1, 2], "parts": "2"},
        {"v": 1, "model": "b", "offsets": [1, 2], "parts": 10**9},
    ],
)
def test_a_bad_header_costs_only_its_model(header: dict[str, object]) -> None:
    original, log = checkpointed(["a", "b"])
    log.append((model_key("b"), orjson.dumps(header) + b"\n" + original.engine.snapshot(["b"])))
    pipeline, invalid = restored(log)
    assert pipeline.engine.snapshot(["a"]) == original.engine.snapshot(["a"])
    assert "b" not in pipeline.engine.models
    assert invalid == ["m/b"]


def test_a_bool_is_not_an_offset() -> None:
    original, log = checkpointed(["a", "b"])
    header = {"v": 1, "model": "b", "offsets": [True, 5]}
    log.append((model_key("b"), orjson.dumps(header) + b"\n" + original.engine.snapshot(["b"])))
    pipeline, invalid = restored(log)
    assert "b" not in pipeline.engine.models
    assert invalid == ["m/b"]


@pytest.mark.parametrize(
    "snapshot",
    [
        b"not json",
        b"{}",
        b'{"version":1,"models":{"b":"nonsense"}}',
        b'{"version":1,"models":{"b":[1,2]}}',
    ],
)
def test_a_corrupt_snapshot_costs_only_its_model(snapshot: bytes) -> None:
    original, log = checkpointed(["a", "b"])
    log.append((model_key("b"), encode_model("b", (0, 0), snapshot)))
    pipeline, invalid = restored(log)
    assert pipeline.engine.snapshot(["a"]) == original.engine.snapshot(["a"])
    assert "b" not in pipeline.engine.models
    assert invalid == ["m/b"]


def test_a_fresh_model_is_processed_from_the_watermark_on() -> None:
    """After its record was set aside, the model's later events build fresh state."""
    _, log = checkpointed(["a", "b"])
    log.append((model_key("b"), encode_model("b", (0, 0), b"junk")))
    pipeline, _ = restored(log)
    later = [
        Record(
            "f",
            0,
            80 + i,
            0,
            b"b",
            orjson.dumps({"model": "b", "features": {"x": 1.0}}),
            EventKind.FEATURE,
        )
        for i in range(5)
    ]
    out = pipeline.handle(later, 0)
    assert out.events["b"] == 5
    assert set(pipeline.ledger.models_of(0)) == {"a", "b"}


@pytest.mark.parametrize(
    "manifest",
    [
        {"v": 1, "offsets": [True, 0], "models": 1, "created_ms": 0},
        {"v": 1, "offsets": [1, 0], "models": "1", "created_ms": 0},
        {"v": 1, "offsets": [1, 0], "models": -1, "created_ms": 0},
        {"v": 1, "offsets": [1, 0], "models": 1, "created_ms": 1.5},
        {"v": True, "offsets": [1, 0], "models": 1, "created_ms": 0},
    ],
)
def test_every_manifest_field_is_checked(manifest: dict[str, object]) -> None:
    with pytest.raises(StateError):
        read_partition([(MANIFEST_KEY, orjson.dumps(manifest))])


def test_recovery_ignores_an_invalid_manifest_and_resumes_from_zero() -> None:
    from streamproc.checkpoints import fold_partition

    original, log = checkpointed(["a"])
    log.append((MANIFEST_KEY, b'{"v":1,"offsets":[-5,0]}'))
    checkpoint = fold_partition(log)
    assert checkpoint.watermark is None
    assert [i.key for i in checkpoint.invalid] == ["w"]
    pipeline = fresh()
    assert pipeline.restore(0, checkpoint) == (0, 0)
    assert pipeline.engine.snapshot(["a"]) == original.engine.snapshot(["a"])


def test_offsets_beyond_the_end_are_moved_to_the_log_start() -> None:
    """A re-created topic: the checkpoint's offsets describe another log. The state stays,
    the offsets on that topic (watermark and every model's) restart at the log start."""
    from streamproc.checkpoints import rebase

    _, log = checkpointed(["a", "b"])
    log.append((model_key("b"), encode_model("b", (120, 7), b"{}")))
    log.append((MANIFEST_KEY, encode_manifest((80, 7), 2, 0)))
    checkpoint = read_partition(log)
    assert rebase(checkpoint, (0, 0), (500, 9)) == []
    assert rebase(checkpoint, (3, 0), (100, 9)) == [0]
    assert checkpoint.watermark == (3, 7)
    assert {m: r.offsets for m, r in checkpoint.models.items()} == {"a": (3, 0), "b": (3, 7)}
