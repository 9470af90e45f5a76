"""One model, one partition: events are accepted only on the partition Kafka's default
(murmur2) partitioner assigns to their model id, so a model's state never splits."""

from __future__ import annotations

import logging

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from streamproc.checkpoints import read_partition
from streamproc.engine import Engine
from streamproc.events import EventKind, Reason
from streamproc.metrics import Metrics
from streamproc.partitioning import Misrouted, PartitionRule, expected_partition
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import EngineSettings, Limits, Settings
from streamproc.worker import WorkerRuntime

T0 = 1_764_000_000_000
PARTITIONS = 8
MODELS = [f"model-{i}" for i in range(40)]


def home(model: str) -> int:
    return expected_partition(model, PARTITIONS)


def away(model: str) -> int:
    return (home(model) + 1) % PARTITIONS


def record(
    body: object, partition: int, offset: int = 0, key: bytes | None = None, topic: str = "f"
) -> Record:
    return Record(topic, partition, offset, T0, key, orjson.dumps(body), EventKind.FEATURE)


def event(model: str, i: int = 0) -> dict[str, object]:
    return {"model": model, "ts": T0 + i, "features": {"x": float(i)}}


def pipeline(partitions: int | None = PARTITIONS) -> Pipeline:
    return Pipeline(Engine(EngineSettings(), Limits()), Limits(), partitions)


# --- the hash ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "java"),
    [
        # org.apache.kafka.common.utils.UtilsTest#testMurmur2
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_the_hash_is_the_java_clients(key: bytes, java: int) -> None:
    partitions = 1000
    assert expected_partition(key.decode(), partitions) == (java & 0x7FFFFFFF) % partitions


def test_the_partition_is_aiokafkas_default() -> None:
    partitioner = DefaultPartitioner()
    all_partitions = list(range(PARTITIONS))
    for model in [*MODELS, "fraud-v3", "ünïcode-模型"]:
        expected = partitioner(model.encode(), all_partitions, all_partitions)
        assert PartitionRule(PARTITIONS).expected(model) == expected


def test_the_expected_partition_cache_is_bounded() -> None:
    rule = PartitionRule(PARTITIONS, cache_size=10)
    for model in MODELS:
        rule.expected(model)
    assert len(rule._cache) <= 10
    assert [rule.expected(m) for m in MODELS] == [home(m) for m in MODELS]


# --- the rule in the pipeline --------------------------------------------------------------


def test_an_event_on_its_models_partition_is_accepted() -> None:
    p = pipeline()
    out = p.handle([record(event("fraud-v3"), home("fraud-v3"))], T0)
    assert out.dead_letters == []
    assert p.ledger.partition_of == {"fraud-v3": home("fraud-v3")}


def test_an_event_on_another_partition_is_rejected_naming_the_expected_one_and_the_fix() -> None:
    p = pipeline()
    model = "fraud-v3"
    out = p.handle([record(event(model), away(model), key=model.encode())], T0)

    [dead] = out.dead_letters
    rejection = dead.rejection
    assert rejection.reason is Reason.WRONG_PARTITION
    assert rejection.model == model
    assert f"arrived on partition {away(model)}" in rejection.message
    assert f"belongs on partition {home(model)} of {PARTITIONS}" in rejection.message
    assert "partitioner=murmur2_random" in rejection.message
    assert ("streamproc.reason", b"wrong_partition") in dead.headers()
    assert p.engine.models == []
    assert out.events == {}


def test_a_mixed_model_array_keeps_each_models_state_on_one_partition() -> None:
    a, b = next((x, y) for x in MODELS for y in MODELS if home(x) != home(y))
    p = pipeline()
    mixed = [event(a, 0), event(b, 1)]
    out = p.handle([record(mixed, home(a), key=a.encode())], T0)

    assert out.events == {a: 1}
    [dead] = out.dead_letters
    assert dead.rejection.reason is Reason.WRONG_PARTITION
    assert dead.rejection.model == b
    out = p.handle([record(event(b, 2), home(b), key=b.encode())], T0)
    assert out.events == {b: 1}
    assert p.ledger.partition_of == {a: home(a), b: home(b)}


def test_librdkafka_style_spreading_never_splits_a_models_checkpoint() -> None:
    """Events of every model arrive on every partition (a partitioner other than murmur2):
    each model's state and checkpoint record lives on its own partition only."""
    p = pipeline()
    offset = 0
    for partition in range(PARTITIONS):
        batch = [record(event(m, offset + i), partition, offset + i) for i, m in enumerate(MODELS)]
        offset += len(batch)
        p.handle(batch, T0)
    owners: dict[str, list[int]] = {}
    for partition in range(PARTITIONS):
        records = p.round(partition, T0).records
        for model in read_partition(records).models:
            owners.setdefault(model, []).append(partition)
    assert owners == {m: [home(m)] for m in MODELS}


def test_the_key_is_not_read_only_the_partition_counts() -> None:
    """Docs: a message keyed by something else (or by nothing) is judged by where it
    landed, per event, like any other."""
    model = "fraud-v3"
    p = pipeline()
    ok = p.handle([record(event(model), home(model), key=b"customer-17")], T0)
    keyless = p.handle([record(event(model), home(model), 1, key=None)], T0)
    elsewhere = p.handle([record(event(model), away(model), key=model.encode())], T0)
    assert ok.dead_letters == keyless.dead_letters == []
    assert [d.rejection.reason for d in elsewhere.dead_letters] == [Reason.WRONG_PARTITION]


def test_without_a_partition_count_every_partition_is_accepted() -> None:
    p = pipeline(None)
    out = p.handle([record(event(m), away(m)) for m in MODELS], T0)
    assert out.dead_letters == []


def test_one_partition_accepts_everything() -> None:
    p = pipeline(1)
    assert p.handle([record(event(m), 0) for m in MODELS], T0).dead_letters == []


# --- detection: metric and one log line per model and partition ----------------------------


def test_misrouted_reports_each_pair_once_and_stays_bounded() -> None:
    seen = Misrouted(capacity=3)
    assert seen.first("a", 1)
    assert not seen.first("a", 1)
    assert seen.first("a", 2)
    assert seen.first("b", 1)
    assert len(seen._seen) <= 3
    assert seen.first("c", 5)
    assert len(seen._seen) <= 3


def test_the_worker_counts_and_logs_a_misrouted_model_naming_both_partitions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    runtime = WorkerRuntime(Settings(), registry, partitions=PARTITIONS)
    model = "fraud-v3"
    p = runtime.app.pipeline
    out = p.handle([record(event(m), away(model), i) for i, m in enumerate([model] * 3)], T0)
    assert len(out.dead_letters) == 3

    with caplog.at_level(logging.WARNING, logger="streamproc.worker"):
        runtime._on_output("features", out, 0.001)

    value = registry.get_sample_value(
        "streamproc_wrong_partition_events_total", {"topic": "features", "model": model}
    )
    assert value == 3
    lines = [r for r in caplog.records if r.name == "streamproc.worker"]
    assert len(lines) == 1
    text = lines[0].getMessage()
    assert f"{model!r} arrived on partition {away(model)}" in text
    assert f"belongs on partition {home(model)}" in text
    assert "partitioner=murmur2_random" in text


def test_the_metrics_model_label_is_capped() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_models=1)
    metrics.wrong_partition("features", "a")
    metrics.wrong_partition("features", "b")
    metrics.wrong_partition("features", "c")
    get = registry.get_sample_value
    assert get("streamproc_wrong_partition_events_total", {"topic": "features", "model": "a"}) == 1
    labels = {"topic": "features", "model": "__other__"}
    assert get("streamproc_wrong_partition_events_total", labels) == 2
