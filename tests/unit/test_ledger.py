"""The ledger on its own: checkpoint bookkeeping as plain values, no engine, no Kafka."""

from __future__ import annotations

import orjson

from streamproc.checkpoints import (
    MANIFEST_KEY,
    PART_BYTES,
    ModelRecord,
    PartitionCheckpoint,
    read_partition,
)
from streamproc.events import EventKind
from streamproc.ledger import Ledger

FEATURE, OUTCOME = EventKind.FEATURE, EventKind.OUTCOME


class Snapshots:
    """A stand-in for the engine: each model's state is the bytes set here."""

    def __init__(self, **states: bytes | None) -> None:
        self.states = states
        self.taken: list[tuple[str, int]] = []

    def __call__(self, model: str, partition: int) -> bytes | None:
        self.taken.append((model, partition))
        return self.states.get(model, model.encode())


def checkpoint(watermark: tuple[int, int] | None, **models: tuple[int, int]) -> PartitionCheckpoint:
    records = {m: ModelRecord(m, offsets, b"state") for m, offsets in models.items()}
    return PartitionCheckpoint(watermark, records)


def applied(ledger: Ledger, partition: int, offsets: tuple[int, int], *models: str) -> None:
    """What the pipeline does for a batch: move the offsets, mark the models changed."""
    ledger.next_offsets[(partition, 0)], ledger.next_offsets[(partition, 1)] = offsets
    for model in models:
        ledger.changed(model, partition)


def test_a_restore_takes_the_partition_over_from_its_watermark() -> None:
    ledger = Ledger()
    watermark = ledger.restore(2, checkpoint((10, 4), a=(10, 4), b=(12, 4)), {"a": (10, 4)})

    assert watermark == (10, 4)
    assert ledger.owns(2) and not ledger.owns(0)
    assert ledger.skip_below == {(2, 0): 10, (2, 1): 4}
    assert ledger.offsets(2) == (10, 4)
    assert (ledger.pending(2, FEATURE), ledger.pending(2, OUTCOME)) == (10, 4)
    assert ledger.models_of(2) == ["a"], "only the models that restored live here"
    assert ledger.parts == {"a": 1, "b": 1}, "a record that did not restore is deleted too"


def test_a_model_record_newer_than_the_watermark_is_honoured() -> None:
    ledger = Ledger()
    ledger.restore(0, checkpoint((10, 4), a=(10, 4), b=(15, 6)), {"a": (10, 4), "b": (15, 6)})

    assert ledger.skip_model == {"b": (15, 6)}
    assert ledger.captured("b", (11, 4)) == (15, 6)
    assert ledger.captured("b", (20, 5)) == (20, 6)
    assert ledger.captured("a", (11, 4)) == (11, 4)


def test_without_any_checkpoint_re_processing_starts_at_the_log_start() -> None:
    ledger = Ledger()
    assert ledger.restore(0, checkpoint(None), {}, starts=(7, 3)) == (0, 0)
    assert (ledger.pending(0, FEATURE), ledger.pending(0, OUTCOME)) == (7, 3)

    ledger.restore(1, checkpoint((2, 1)), {}, starts=(7, 3))
    resume = (ledger.pending(1, FEATURE), ledger.pending(1, OUTCOME))
    assert resume == (2, 1), "a checkpoint resumes from its watermark"


def test_pending_resume_points_follow_the_catch_up() -> None:
    ledger = Ledger()
    ledger.restore(0, checkpoint((10, 0)), {})

    ledger.progressed(0, FEATURE, 15)
    assert ledger.pending(0, FEATURE) == 15
    ledger.caught_up(0, FEATURE, 12)
    assert ledger.pending(0, FEATURE) == 15, "never back"
    assert ledger.skip_below[(0, 0)] == 12
    ledger.caught_up(0, FEATURE, 20)
    assert (ledger.pending(0, FEATURE), ledger.skip_below[(0, 0)]) == (20, 20)
    ledger.covered(0, FEATURE, 5)
    assert ledger.skip_below[(0, 0)] == 20, "a skip mark never moves back"

    assert ledger.take_pending(0, FEATURE) == 20
    assert ledger.pending(0, FEATURE) is None and ledger.take_pending(0, FEATURE) is None
    assert ledger.pending(0, OUTCOME) == 0


def test_forget_drops_the_partition_and_nothing_else() -> None:
    ledger = Ledger()
    for p in (0, 1):
        ledger.restore(p, checkpoint((5, 5), **{f"old{p}": (9, 9)}), {f"old{p}": (9, 9)})
        applied(ledger, p, (6, 5), f"m{p}")
        ledger.evict(f"old{p}")
    before = ledger.round(1, 0, Snapshots()).records

    assert sorted(ledger.forget(0)) == ["m0"]

    assert not ledger.owns(0) and ledger.owns(1)
    assert ledger.models_of(0) == [] and ledger.offsets(0) == (0, 0)
    assert (0, 0) not in ledger.skip_below and (0, 1) not in ledger.skip_below
    assert ledger.pending(0, FEATURE) is None and ledger.pending(0, OUTCOME) is None
    assert "m0" not in ledger.parts and "m1" in ledger.parts
    assert 0 not in ledger.dirty and 0 not in ledger.evicted
    assert ledger.round(0, 0, Snapshots()).records[:-1] == [], "nothing left to write"
    assert ledger.offsets(1) == (6, 5) and ledger.pending(1, FEATURE) == 5
    assert before[0] == (b"m/old1", None)


def test_a_round_writes_the_changed_models_at_the_partitions_offsets_manifest_last() -> None:
    ledger = Ledger()
    applied(ledger, 0, (8, 3), "a", "b")
    applied(ledger, 1, (1, 0), "c")
    ledger.applied(11)
    snapshots = Snapshots(a=b"A", b=b"B")

    rounds = ledger.rounds([0], 1234, snapshots)

    assert ledger.since_checkpoint == 0
    (round_,) = rounds
    assert (round_.partition, round_.watermark, round_.models) == (0, (8, 3), {"a", "b"})
    assert round_.records[-1][0] == MANIFEST_KEY
    manifest = orjson.loads(round_.records[-1][1] or b"")
    assert (manifest["offsets"], manifest["models"], manifest["created_ms"]) == ([8, 3], 2, 1234)
    restored = read_partition(round_.records)
    assert restored.watermark == (8, 3)
    assert {m: (r.offsets, r.snapshot) for m, r in restored.models.items()} == {
        "a": ((8, 3), b"A"),
        "b": ((8, 3), b"B"),
    }
    assert sorted(snapshots.taken) == [("a", 0), ("b", 0)], "partition 1 was not asked"
    assert ledger.dirty == {1: {"c"}}
    assert ledger.round(0, 0, snapshots).records[:-1] == [], "unchanged models are not rewritten"


def test_a_round_that_did_not_land_leaves_its_models_dirty() -> None:
    ledger = Ledger()
    applied(ledger, 0, (1, 0), "a")
    round_ = ledger.round(0, 0, Snapshots())
    applied(ledger, 0, (2, 0), "b")

    ledger.unwritten(round_)

    assert ledger.dirty == {0: {"a", "b"}}


def test_an_evicted_model_is_deleted_once_with_every_part_first() -> None:
    ledger = Ledger()
    applied(ledger, 0, (1, 0), "big", "stays")
    ledger.round(0, 0, Snapshots(big=b"x" * (2 * PART_BYTES + 1)))
    assert ledger.parts["big"] == 3
    applied(ledger, 0, (2, 0), "stays")

    ledger.evict("big")

    records = ledger.round(0, 0, Snapshots()).records
    assert records[:3] == [(b"m/big", None), (b"p/1/big", None), (b"p/2/big", None)]
    assert [key for key, _ in records[3:]] == [b"m/stays", MANIFEST_KEY]
    assert orjson.loads(records[-1][1] or b"")["models"] == 1
    assert "big" not in ledger.parts
    assert ledger.round(0, 0, Snapshots()).records[:-1] == [], "the tombstones go once"


def test_a_model_changed_again_after_its_eviction_is_written_not_deleted() -> None:
    ledger = Ledger()
    applied(ledger, 0, (1, 0), "m")
    ledger.evict("m")
    applied(ledger, 0, (2, 0), "m")

    records = ledger.round(0, 0, Snapshots()).records

    assert [key for key, value in records if value is None] == []
    assert set(read_partition(records).models) == {"m"}


def test_a_shorter_version_deletes_the_parts_it_left_over() -> None:
    ledger = Ledger()
    applied(ledger, 0, (1, 0), "m")
    ledger.round(0, 0, Snapshots(m=b"x" * (PART_BYTES + 1)))
    applied(ledger, 0, (2, 0), "m")

    records = ledger.round(0, 0, Snapshots(m=b"small")).records

    assert records[0] == (b"p/1/m", None)
    assert ledger.parts["m"] == 1


def test_a_model_that_cannot_be_snapshot_is_written_as_absent() -> None:
    ledger = Ledger()
    ledger.restore(0, checkpoint((0, 0), bad=(0, 0)), {"bad": (0, 0)})
    applied(ledger, 0, (3, 0), "bad", "good")

    round_ = ledger.round(0, 0, Snapshots(bad=None))

    assert (b"m/bad", None) in round_.records
    restored = read_partition(round_.records)
    assert (restored.watermark, set(restored.models)) == ((3, 0), {"good"})
    assert "bad" not in ledger.parts


def test_a_model_moves_with_its_records_and_an_alert_marks_only_known_models() -> None:
    ledger = Ledger()
    ledger.changed("m", 0)
    ledger.dirty.clear()

    ledger.changed("m", 1)
    ledger.alerted("m")
    ledger.alerted("unknown")

    assert ledger.partition("m") == 1 and ledger.models_of(0) == []
    assert ledger.dirty == {1: {"m"}}


def test_an_evicted_model_no_longer_skips_its_restored_offsets() -> None:
    ledger = Ledger()
    ledger.restore(0, checkpoint((0, 0), m=(9, 0)), {"m": (9, 0)})
    ledger.changed("m", 0)

    ledger.evict("m")

    assert ledger.skip_model == {} and ledger.partition("m") is None
    assert ledger.dirty == {0: set()} and ledger.evicted == {0: {"m"}}
