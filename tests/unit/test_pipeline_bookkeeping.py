"""What the pipeline records for checkpoints: offsets, skips after a restore, partitions.

A checkpoint is only as right as this bookkeeping: an offset one too low re-applies an
event (a doubled detector update), one too high loses it, and a model left on a revoked
partition is checkpointed by two workers. Each test drives :class:`Pipeline` through its
public methods and asserts the exact offsets and sets.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamproc.checkpoints import ModelRecord, Offsets, PartitionCheckpoint
from streamproc.engine import Engine
from streamproc.events import EventKind, FeatureEvent, Reason
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import ArrivalSettings, EngineSettings, Limits, SilenceSettings
from streamproc.settings.labels import LabelSettings

T0 = 1_764_000_000_000
SECOND = 1000


def pipeline(limits: Limits | None = None, arrival: ArrivalSettings | None = None) -> Pipeline:
    limits = limits or Limits()
    return Pipeline(Engine(EngineSettings(), limits, arrival=arrival), limits)


def resume(p: Pipeline, partition: int, watermark: Offsets, models: dict[str, Offsets]) -> None:
    """Take ``partition`` over at ``watermark``, with ``models`` restored at their own offsets
    (what :meth:`Pipeline.restore` hands the ledger once the snapshots have loaded)."""
    p.ledger.restore(partition, PartitionCheckpoint(watermark), models)


def feature(model: str, x: float, ts: int | None = T0) -> bytes:
    body: dict[str, Any] = {"model": model, "features": {"f": x}}
    if ts is not None:
        body["ts"] = ts
    return orjson.dumps(body)


def outcome(model: str, error: float) -> bytes:
    return orjson.dumps({"model": model, "ts": T0, "error": error})


def rec(
    offset: int, value: bytes | None, partition: int = 0, kind: EventKind = EventKind.FEATURE
) -> Record:
    topic = "features" if kind is EventKind.FEATURE else "outcomes"
    return Record(topic, partition, offset, T0, b"k", value, kind)


def test_offsets_are_the_next_record_per_partition_and_topic() -> None:
    p = pipeline()
    out = p.handle(
        [
            rec(7, feature("a", 1.0)),
            rec(3, outcome("a", 0.5), kind=EventKind.OUTCOME),
            rec(11, feature("b", 1.0), partition=2),
        ],
        T0,
    )
    assert p.ledger.offsets(0) == (8, 4)
    assert p.ledger.offsets(2) == (12, 0)
    assert p.ledger.offsets(5) == (0, 0)
    assert out.positions == {("features", 0): 7, ("outcomes", 0): 3, ("features", 2): 11}
    assert out.messages == 3
    assert out.events == {"a": 2, "b": 1}
    assert sorted(p.ledger.models_of(0)) == ["a"]
    assert p.ledger.models_of(2) == ["b"]
    assert p.ledger.dirty == {0: {"a"}, 2: {"b"}}


def test_latency_is_counted_for_events_with_a_ts_only() -> None:
    p = pipeline()
    out = p.handle([rec(0, feature("a", 1.0, ts=T0 - 250)), rec(1, feature("a", 2.0, None))], T0)
    assert out.latencies_ms == [250]


def test_records_below_a_restored_watermark_are_skipped_and_later_ones_applied() -> None:
    p = pipeline()
    resume(p, 0, (10, 4), {})
    out = p.handle(
        [
            rec(9, feature("a", 1.0)),
            rec(10, feature("a", 2.0)),
            rec(3, outcome("a", 1.0), kind=EventKind.OUTCOME),
            rec(4, outcome("a", 1.0), kind=EventKind.OUTCOME),
        ],
        T0,
    )
    assert out.events == {"a": 2}
    assert p.ledger.offsets(0) == (11, 5)


def test_resume_keeps_offsets_already_advanced_past_the_watermark() -> None:
    p = pipeline()
    p.handle([rec(20, feature("a", 1.0))], T0)
    resume(p, 0, (10, 4), {})
    assert p.ledger.offsets(0) == (21, 4)


def test_a_model_restored_ahead_of_the_watermark_skips_only_its_own_records() -> None:
    """Its record was written after the watermark's round: records up to its own offsets
    are already in its state, while other models of the partition apply them."""
    p = pipeline()
    resume(p, 0, (10, 2), {"ahead": (15, 6), "level": (10, 2)})
    assert p.ledger.partition_of == {"ahead": 0, "level": 0}
    assert p.ledger.captured("ahead", (12, 2)) == (15, 6)
    assert p.ledger.captured("ahead", (16, 1)) == (16, 6)
    assert p.ledger.captured("level", (12, 3)) == (12, 3)
    out = p.handle(
        [
            rec(14, feature("ahead", 1.0)),
            rec(14, feature("level", 1.0)),
            rec(15, feature("ahead", 1.0)),
            rec(5, outcome("ahead", 1.0), kind=EventKind.OUTCOME),
            rec(6, outcome("ahead", 1.0), kind=EventKind.OUTCOME),
        ],
        T0,
    )
    assert out.events == {"level": 1, "ahead": 2}
    assert out.dead_letters == []


def test_a_model_ahead_on_the_outcome_topic_only_is_skipped_there() -> None:
    p = pipeline()
    resume(p, 0, (10, 2), {"m": (10, 5)})
    assert p.ledger.captured("m", (10, 2)) == (10, 5)
    out = p.handle(
        [rec(10, feature("m", 1.0)), rec(4, outcome("m", 1.0), kind=EventKind.OUTCOME)], T0
    )
    assert out.events == {"m": 1}


def test_covered_raises_the_skip_point_and_never_lowers_it() -> None:
    p = pipeline()
    p.ledger.covered(0, EventKind.FEATURE, 5)
    p.ledger.covered(0, EventKind.FEATURE, 3)
    p.ledger.covered(0, EventKind.OUTCOME, 2)
    out = p.handle(
        [
            rec(4, feature("a", 1.0)),
            rec(5, feature("a", 1.0)),
            rec(1, outcome("a", 1.0), kind=EventKind.OUTCOME),
            rec(2, outcome("a", 1.0), kind=EventKind.OUTCOME),
        ],
        T0,
    )
    assert out.events == {"a": 2}
    assert p.ledger.offsets(0) == (6, 3)


def test_forget_drops_the_partitions_models_and_offsets_only() -> None:
    p = pipeline()
    p.handle([rec(0, feature("a", 1.0)), rec(0, feature("b", 1.0), partition=1)], T0)
    resume(p, 1, (0, 0), {"c": (3, 3)})
    assert sorted(p.forget(1)) == ["b", "c"]
    assert p.engine.models == ["a"]
    assert p.ledger.partition_of == {"a": 0}
    assert p.ledger.offsets(1) == (0, 0)
    assert p.ledger.captured("c", (1, 1)) == (1, 1), "its skip point went with it"
    assert 1 not in p.ledger.dirty
    assert p.ledger.offsets(0) == (1, 0)
    assert p.ledger.dirty == {0: {"a"}}
    again = p.handle([rec(0, feature("b", 2.0), partition=1)], T0)
    assert again.events == {"b": 1}, "no skip point is left on the forgotten partition"


def test_a_tick_marks_the_models_it_alerts_on_changed_and_evicts_idle_ones() -> None:
    arrival = ArrivalSettings(silence=SilenceSettings(floor_seconds=10, ceiling_seconds=60))
    p = pipeline(Limits(model_idle_seconds=600), arrival)
    for i in range(5):
        now = T0 + i * SECOND
        p.handle([rec(i, feature("a", 1.0, now)), rec(i, feature("b", 1.0, now), 3)], now)
    p.ledger.dirty.clear()
    silent = p.tick(T0 + 80 * SECOND)
    assert {a.model for a in silent.alerts} == {"a", "b"}
    assert p.ledger.dirty == {0: {"a"}, 3: {"b"}}
    p.handle([rec(5, feature("a", 1.0, T0 + 300 * SECOND))], T0 + 300 * SECOND)
    p.ledger.dirty.clear()
    gone = p.tick(T0 + 605 * SECOND)
    assert gone.evicted == ["b"]
    assert gone.alerts == [], "b was reported silent already"
    assert p.ledger.evicted == {3: {"b"}}
    assert p.ledger.partition_of == {"a": 0}
    assert p.engine.models == ["a"]


def test_an_evicted_model_is_not_left_dirty_on_its_partition() -> None:
    p = pipeline(Limits(model_idle_seconds=60))
    p.handle([rec(0, feature("a", 1.0)), rec(1, feature("b", 1.0))], T0)
    p.handle([rec(2, feature("b", 1.0))], T0 + 40 * SECOND)
    out = p.tick(T0 + 90 * SECOND)
    assert out.evicted == ["a"]
    assert p.ledger.dirty == {0: {"b"}}
    assert p.ledger.evicted == {0: {"a"}}


def test_a_checkpoint_restore_resumes_each_model_at_its_own_offsets() -> None:
    source = pipeline()
    source.handle([rec(i, feature(m, float(i % 3))) for i in range(30) for m in ("a", "b")], T0)
    snapshot_a = source.engine.snapshot(["a"])
    snapshot_b = source.engine.snapshot(["b"])
    checkpoint = PartitionCheckpoint(
        watermark=(20, 0),
        models={
            "a": ModelRecord("a", (20, 0), snapshot_a),
            "b": ModelRecord("b", (30, 0), snapshot_b),
        },
    )
    p = pipeline()
    assert p.restore(0, checkpoint) == (20, 0)
    assert sorted(p.engine.models) == ["a", "b"]
    assert checkpoint.invalid == []
    assert p.ledger.captured("b", (20, 0)) == (30, 0)
    assert p.ledger.captured("a", (20, 0)) == (20, 0)
    assert p.ledger.dirty == {}
    assert p.ledger.models_of(0) == ["a", "b"]


def test_a_record_whose_snapshot_holds_another_model_restores_nothing() -> None:
    source = pipeline()
    source.handle([rec(i, feature("a", 1.0)) for i in range(5)], T0)
    checkpoint = PartitionCheckpoint(
        watermark=(5, 0), models={"b": ModelRecord("b", (5, 0), source.engine.snapshot(["a"]))}
    )
    p = pipeline()
    assert p.restore(0, checkpoint) == (5, 0)
    assert p.engine.models == []
    [invalid] = checkpoint.invalid
    assert (invalid.key, invalid.model) == ("m/b", "b")
    assert "other models" in invalid.reason
    assert p.ledger.dirty == {0: {"b"}}


def test_a_fresh_partition_restores_from_zero() -> None:
    p = pipeline()
    assert p.restore(4, PartitionCheckpoint()) == (0, 0)
    assert p.ledger.offsets(4) == (0, 0)


class Unencodable(Engine):
    def snapshot(self, models: Any = None) -> bytes:
        raise ValueError("cannot encode")


def test_a_snapshot_that_raises_resets_its_model_and_is_reported_once() -> None:
    p = Pipeline(Unencodable(EngineSettings(), Limits()), Limits())
    p.handle([rec(0, feature("a", 1.0), partition=2)], T0)
    p.ledger.dirty.clear()
    assert p.snapshot("a", 2) is None
    assert p.engine.models == []
    assert p.ledger.dirty == {2: {"a"}}
    first = p.handle([], T0)
    assert [(f.stage, f.model, str(f.error)) for f in first.failures] == [
        ("snapshot", "a", "cannot encode")
    ]
    assert p.handle([], T0).failures == []


def test_a_record_without_a_value_is_one_dead_letter_with_empty_bytes() -> None:
    out = pipeline().handle([rec(0, None)], T0)
    [letter] = out.dead_letters
    assert letter.value == b""
    assert letter.rejection.index is None
    assert letter.rejection.reason is Reason.EMPTY


def test_an_elements_letter_keeps_a_key_up_to_four_bytes_per_name_character() -> None:
    limits = Limits(max_name_length=10)
    message = orjson.dumps([{"model": 1}, {"model": 2}])
    p = pipeline(limits)
    for key, kept in ((b"k" * 40, True), (b"k" * 41, False)):
        out = p.handle([Record("features", 0, 0, T0, key, message, EventKind.FEATURE)], T0)
        assert [d.key for d in out.dead_letters] == [key if kept else None] * 2
        assert [d.rejection.index for d in out.dead_letters] == [0, 1]


def test_a_letters_headers_say_why_and_where_from() -> None:
    message = orjson.dumps([{"model": "a", "features": {"f": 1.0}, "ts": T0}, 7])
    whole, element = (
        pipeline().handle([rec(12, b"{"), rec(13, message, partition=4)], T0).dead_letters
    )
    assert whole.headers() == [
        ("streamproc.reason", b"invalid_json"),
        ("streamproc.message", whole.rejection.message.encode()),
        ("streamproc.source.topic", b"features"),
        ("streamproc.source.partition", b"0"),
        ("streamproc.source.offset", b"12"),
    ]
    assert element.headers()[3:] == [
        ("streamproc.source.partition", b"4"),
        ("streamproc.source.offset", b"13"),
        ("streamproc.source.index", b"1"),
    ]
    assert element.value == b"7"


# -- more bookkeeping edges: forgetting, restoring, ticking, expired labels ---------------


def test_forgetting_clears_both_topics_and_evictions_and_tolerates_an_unknown_partition() -> None:
    p = pipeline(Limits(model_idle_seconds=60))
    p.handle([rec(0, feature("old", 1.0), partition=1)], T0)
    p.tick(T0 + 61 * SECOND)
    assert p.ledger.evicted == {1: {"old"}}
    resume(p, 1, (5, 5), {"c": (7, 7)})
    p.handle(
        [rec(6, feature("b", 1.0), partition=1), rec(6, outcome("b", 1.0), 1, EventKind.OUTCOME)],
        T0,
    )
    assert p.ledger.offsets(1) == (7, 7)
    assert sorted(p.forget(1)) == ["b", "c"]
    assert (p.ledger.offsets(1), p.ledger.evicted, p.ledger.dirty) == ((0, 0), {}, {})
    assert p.forget(9) == []
    again = p.handle(
        [rec(0, feature("b", 2.0), partition=1), rec(0, outcome("b", 1.0), 1, EventKind.OUTCOME)],
        T0,
    )
    assert again.events == {"b": 2}, "no skip point is left on either topic"


def test_covered_from_zero_skips_nothing() -> None:
    p = pipeline()
    p.ledger.covered(0, EventKind.FEATURE, 0)
    assert p.handle([rec(0, feature("a", 1.0))], T0).events == {"a": 1}


def test_a_model_at_the_watermark_has_no_skip_point_of_its_own() -> None:
    p = pipeline()
    resume(p, 0, (10, 2), {"level": (10, 2), "ahead": (10, 3)})
    assert p.ledger.captured("level", (3, 1)) == (3, 1)
    assert p.ledger.captured("ahead", (3, 1)) == (10, 3)


def test_an_evicted_model_loses_its_skip_point_and_comes_back_afresh() -> None:
    p = pipeline(Limits(model_idle_seconds=60))
    resume(p, 0, (0, 0), {"m": (50, 0)})
    p.engine.process(FeatureEvent("m", {"f": 1.0}, T0), T0)
    p.engine.process(FeatureEvent("stray", {"f": 1.0}, T0), T0)
    assert sorted(p.tick(T0 + 61 * SECOND).evicted) == ["m", "stray"]
    assert p.ledger.captured("m", (1, 0)) == (1, 0)
    assert p.ledger.evicted == {0: {"m"}}, "a model the pipeline never placed has no record to drop"
    assert p.handle([rec(1, feature("m", 1.0))], T0).events == {"m": 1}


def test_a_record_with_invalid_fields_is_listed_with_the_engines_reason() -> None:
    bad = orjson.dumps({"version": 2, "models": {"b": 7}})
    checkpoint = PartitionCheckpoint(watermark=(5, 0), models={"b": ModelRecord("b", (5, 0), bad)})
    p = pipeline()
    p.restore(0, checkpoint)
    [invalid] = checkpoint.invalid
    assert (invalid.key, invalid.model) == ("m/b", "b")
    assert invalid.reason.startswith("model 'b': expected a mapping with keys features")


class Buggy(Engine):
    """An engine with bugs in restore and tick (not validation errors)."""

    def restore(self, data: bytes, only: Any = None) -> Any:
        raise RuntimeError("restore bug")

    def tick(self, now_ms: int, failed: list[tuple[str, Exception]] | None = None) -> Any:
        if failed is not None:
            failed.append(("m", KeyError("one model")))
        raise RuntimeError("tick bug")


def test_bugs_in_restore_and_tick_are_reported_with_their_exceptions() -> None:
    p = Pipeline(Buggy(EngineSettings(), Limits()), Limits())
    p.handle([rec(0, feature("m", 1.0), partition=2)], T0)
    checkpoint = PartitionCheckpoint(models={"r": ModelRecord("r", (0, 0), b"{}")})
    p.restore(2, checkpoint)
    out = p.tick(T0)
    assert [(f.stage, f.model, repr(f.error)) for f in out.failures] == [
        ("restore", "r", "RuntimeError('restore bug')"),
        ("tick", None, "RuntimeError('tick bug')"),
        ("tick", "m", "KeyError('one model')"),
    ]
    assert p.engine.models == []
    assert p.ledger.dirty == {2: {"m", "r"}}
    assert p.ledger.partition_of == {"m": 2, "r": 2}, "a reset model stays where it was"


def test_an_expired_labels_letter_names_its_own_record() -> None:
    for outcome_topic, topic in ((None, "features"), ("labels-in", "labels-in")):
        limits = Limits()
        engine = Engine(EngineSettings(), limits, labels=LabelSettings(ttl_seconds=10))
        p = Pipeline(engine, limits, outcome_topic=outcome_topic)
        label = {"model": "m", "id": "lost", "y_true": 1, "ts": T0}
        p.handle([Record("o", 3, 40, T0 + 7, b"k1", orjson.dumps(label), EventKind.OUTCOME)], T0)
        later = feature("m", 1.0, T0 + 10_001)
        advance = Record("features", 3, 9, T0 + 8, b"k2", later, EventKind.FEATURE)
        [dead] = p.handle([advance], T0).dead_letters
        assert dead.record == Record(topic, 3, 40, T0, b"k2", None, EventKind.OUTCOME)
        assert (dead.rejection.model, dead.key) == ("m", b"m")
        assert orjson.loads(dead.value) == label


def test_an_engine_rejection_of_an_element_keeps_its_model_and_index() -> None:
    p = pipeline(Limits(max_streams_per_model=1))
    message = orjson.dumps(
        [{"model": "m", "features": {"a": 1.0}}, {"model": "m", "features": {"b": 1.0}}]
    )
    [letter] = p.handle([rec(0, message)], T0).dead_letters
    rejection = letter.rejection
    assert (rejection.reason, rejection.index, rejection.model) == (
        Reason.TOO_MANY_STREAMS,
        1,
        "m",
    )
    assert orjson.loads(letter.value) == {"model": "m", "features": {"b": 1.0}}
    assert letter.error is None, "a rejection, not an exception"


def test_an_element_whose_event_raises_carries_the_exception_for_the_log() -> None:
    boom = RuntimeError("detector bug")

    def factory(spec: Any, standardized: bool) -> Any:
        raise boom

    p = Pipeline(Engine(EngineSettings(), Limits(), factory), Limits())
    message = orjson.dumps([{"model": "a", "features": {"f": 1.0}}, 7])
    refused, internal = p.handle([rec(0, message)], T0).dead_letters
    assert (internal.rejection.reason, internal.rejection.index) == (Reason.INTERNAL_ERROR, 0)
    assert internal.error is boom
    [failure] = p.handle([rec(1, feature("a", 1.0))], T0).failures
    assert (failure.stage, failure.model, failure.error) == ("event", "a", boom)
    assert (refused.rejection.index, refused.error) == (1, None)


def test_with_the_partition_rule_an_event_on_another_models_partition_is_refused() -> None:
    limits = Limits()
    p = Pipeline(Engine(EngineSettings(), limits), limits, partitions=8)
    assert p.rule is not None
    own = p.rule.expected("m")
    other = (own + 1) % 8
    out = p.handle([rec(0, feature("m", 1.0), own), rec(0, feature("m", 1.0), other)], T0)
    assert out.events == {"m": 1}
    [letter] = out.dead_letters
    assert letter.rejection.reason is Reason.WRONG_PARTITION
    assert f"'m' arrived on partition {other}" in letter.rejection.message
    assert p.ledger.partition_of == {"m": own}


class Bomb(bytes):
    """A payload whose length cannot be read: decoding it raises."""

    def __len__(self) -> int:
        raise RuntimeError("decoder bug")


def test_a_message_that_fails_to_decode_is_one_letter_with_its_record_and_exception() -> None:
    bomb = Record("features", 3, 8, T0, b"key", Bomb(b"{}"), EventKind.FEATURE)
    out = pipeline().handle([bomb], T0)
    [letter] = out.dead_letters
    [failure] = out.failures
    assert (failure.stage, failure.model, str(failure.error)) == ("decode", None, "decoder bug")
    assert (letter.record, letter.key, letter.error) == (bomb, b"key", failure.error)
    assert letter.rejection.reason is Reason.INTERNAL_ERROR
    assert "RuntimeError" in letter.rejection.message


class Spike:
    """Fires on every value above 0.5."""

    drift_detected = False

    def update(self, x: float) -> None:
        self.drift_detected = x > 0.5


def test_an_event_without_ts_is_stamped_with_its_records_time_and_kind_comes_from_the_topic() -> (
    None
):
    settings = EngineSettings(standardize=False, warmup=2, cooldown_events=0)
    limits = Limits()
    p = Pipeline(Engine(settings, limits, lambda spec, std: Spike()), limits)
    untimed = Record("features", 0, 0, T0 - 5, b"k", feature("m", 1.0, None), EventKind.FEATURE)
    out = p.handle([untimed], T0)
    assert {a.event_ts for a in out.alerts} == {T0 - 5}
    assert out.latencies_ms == []
    wrong_topic = p.handle([rec(1, feature("m", 1.0), kind=EventKind.OUTCOME)], T0)
    [letter] = wrong_topic.dead_letters
    assert letter.rejection.reason is not Reason.INTERNAL_ERROR


def test_a_batch_keeps_the_letters_of_records_before_one_that_fails_to_decode() -> None:
    bomb = Record("features", 0, 1, T0, b"k", Bomb(b"{}"), EventKind.FEATURE)
    out = pipeline().handle([rec(0, b"{"), bomb, rec(2, feature("a", 1.0))], T0)
    reasons = [d.rejection.reason for d in out.dead_letters]
    assert reasons == [Reason.INVALID_JSON, Reason.INTERNAL_ERROR]
    assert out.events == {"a": 1}


def test_expired_labels_add_to_the_batchs_letters_and_updates_add_up() -> None:
    limits = Limits()
    engine = Engine(EngineSettings(), limits, labels=LabelSettings(ttl_seconds=10))
    p = Pipeline(engine, limits)
    label = orjson.dumps({"model": "m", "id": "lost", "y_true": 1, "ts": T0})
    p.handle([Record("o", 0, 0, T0, b"m", label, EventKind.OUTCOME)], T0)
    one = pipeline().handle([rec(0, feature("m", 1.0, T0))], T0).updates
    out = p.handle(
        [rec(0, b"{"), rec(1, feature("m", 1.0, T0 + 10_001)), rec(2, feature("m", 1.0, T0))],
        T0,
    )
    assert [d.rejection.reason for d in out.dead_letters] == [
        Reason.INVALID_JSON,
        Reason.LABEL_EXPIRED,
    ]
    assert one > 0
    assert out.updates == 2 * one
