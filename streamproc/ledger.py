"""Checkpoint bookkeeping of one worker, in one place: what its state covers, per partition.

A checkpoint is only exact if the offsets it records, the models it rewrites and
the state it snapshots agree. Before this module that agreement was spread over
the Faust app (ownership, resume points, part counts), the pipeline (offsets,
skip marks, dirty models) and recovery (building a round). The :class:`Ledger`
owns all of it; the pipeline updates it in the same synchronous step as the
engine's state, and the app only wires Kafka's events to it: an assignment to
:meth:`Ledger.restore`, a revocation to :meth:`Ledger.forget`, an applied batch
to :meth:`Ledger.applied`, a checkpoint to :meth:`Ledger.round`.

It is pure: no I/O and no engine; a round takes the snapshots through a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.checkpoints import (
    MANIFEST_KEY,
    Offsets,
    PartitionCheckpoint,
    encode_manifest,
    model_key,
    model_records,
    part_key,
)
from streamproc.events import EventKind

CheckpointRecord = tuple[bytes, bytes | None]
"""A checkpoint record's key and value; None is a tombstone."""

Snapshot = Callable[[str, int], "bytes | None"]
"""(model, partition) -> the model's snapshot, or None for one that cannot be encoded (the
callable resets it, so it is dirty again)."""

KIND_INDEX = {EventKind.FEATURE: 0, EventKind.OUTCOME: 1}
"""Position of a topic's offset in :data:`streamproc.checkpoints.Offsets`."""


@dataclass(frozen=True, slots=True)
class Round:
    """One partition's checkpoint round, built synchronously, written later."""

    partition: int
    records: list[CheckpointRecord]
    """Tombstones of evicted models first, then the changed models' records, the manifest last."""
    watermark: Offsets
    """The offsets the manifest claims."""
    models: set[str]
    """The models written: dirty again if the round does not land (:meth:`Ledger.unwritten`)."""


class Ledger:
    """Per partition: source offsets, skip marks, dirty and evicted models, ownership, resume
    points; per model: its partition and its last checkpoint's part count.

    The dictionaries the pipeline's per-record loop reads (``next_offsets``, ``skip_below``,
    ``skip_model``) are public for speed; everything else goes through methods.
    """

    def __init__(self) -> None:
        self.owned: set[int] = set()
        """Partitions whose state this process holds (restored, not revoked since)."""
        self.next_offsets: dict[tuple[int, int], int] = {}
        """(partition, kind index) -> next offset to process."""
        self.skip_below: dict[tuple[int, int], int] = {}
        """(partition, kind index) -> records below it are in the state: not applied again."""
        self.skip_model: dict[str, Offsets] = {}
        """model -> its restored record's offsets, where newer than its partition's watermark."""
        self.partition_of: dict[str, int] = {}
        self.dirty: dict[int, set[str]] = {}
        """partition -> models changed since their last checkpoint."""
        self.evicted: dict[int, set[str]] = {}
        """partition -> models forgotten since the last checkpoint (their records go)."""
        self.parts: dict[str, int] = {}
        """model -> the records its last checkpoint used, so that a shorter version deletes
        the parts it leaves over."""
        self.since_checkpoint = 0
        """Records applied since the last round was built."""
        self._pending: dict[tuple[int, EventKind], int] = {}
        """Per (partition, topic): the offset from which to re-process (the watermark, then
        how far a catch-up got), until the first record Faust delivers there tells where to
        stop."""

    def restore(
        self,
        partition: int,
        checkpoint: PartitionCheckpoint,
        models: dict[str, Offsets],
        starts: Offsets = (0, 0),
    ) -> Offsets:
        """Take a partition over from its checkpoint; ``models`` are the ones that restored,
        with their records' offsets. Returns the watermark: records below it, and per model
        below its own offsets, are in the state already. Re-processing is pending from the
        watermark, or from the log ``starts`` when there was no checkpoint at all (records
        retention took before this group started were never ours)."""
        watermark = checkpoint.resume_offsets()
        for index, offset in enumerate(watermark):
            self.skip_below[(partition, index)] = offset
            self.next_offsets.setdefault((partition, index), offset)
        for model, offsets in models.items():
            self.partition_of[model] = partition
            if offsets[0] > watermark[0] or offsets[1] > watermark[1]:
                self.skip_model[model] = offsets
        self.owned.add(partition)
        self.parts.update((m, r.parts) for m, r in checkpoint.models.items())
        empty = checkpoint.watermark is None and not checkpoint.models
        start = (max(watermark[0], starts[0]), max(watermark[1], starts[1])) if empty else watermark
        self._pending[(partition, EventKind.FEATURE)] = start[0]
        self._pending[(partition, EventKind.OUTCOME)] = start[1]
        return watermark

    def forget(self, partition: int) -> list[str]:
        """Drop everything about a partition this process no longer owns; returns its models
        (whose engine state the caller drops)."""
        models = self.models_of(partition)
        for model in models:
            del self.partition_of[model]
            self.skip_model.pop(model, None)
            self.parts.pop(model, None)
        self.dirty.pop(partition, None)
        self.evicted.pop(partition, None)
        for index, kind in enumerate(KIND_INDEX):
            self.next_offsets.pop((partition, index), None)
            self.skip_below.pop((partition, index), None)
            self._pending.pop((partition, kind), None)
        self.owned.discard(partition)
        return models

    def owns(self, partition: int) -> bool:
        return partition in self.owned

    def pending(self, partition: int, kind: EventKind) -> int | None:
        """Where re-processing of the partition's topic must start, if it is still due."""
        return self._pending.get((partition, kind))

    def take_pending(self, partition: int, kind: EventKind) -> int | None:
        """The resume point, no longer pending: the caller re-processes up to where Faust
        resumed."""
        return self._pending.pop((partition, kind), None)

    def progressed(self, partition: int, kind: EventKind, offset: int) -> None:
        """Re-processing got as far as ``offset``: whoever continues starts there."""
        self._pending[(partition, kind)] = offset

    def caught_up(self, partition: int, kind: EventKind, offset: int) -> None:
        """Records below ``offset`` were re-processed: pending moves at least there, and they
        are skipped if Faust delivers them again."""
        key = (partition, kind)
        self._pending[key] = max(offset, self._pending.get(key, offset))
        self.covered(partition, kind, offset)

    def covered(self, partition: int, kind: EventKind, offset: int) -> None:
        """Records below ``offset`` are in the state now: skip them if delivered again."""
        key = (partition, KIND_INDEX[kind])
        self.skip_below[key] = max(self.skip_below.get(key, 0), offset)

    def applied(self, records: int) -> None:
        """A batch of ``records`` went through the pipeline."""
        self.since_checkpoint += records

    def changed(self, model: str, partition: int) -> None:
        """``model`` (on ``partition``) changed: the next round rewrites it."""
        if self.partition_of.get(model) != partition:
            self.partition_of[model] = partition
        dirty = self.dirty.get(partition)
        if dirty is None:
            dirty = self.dirty[partition] = set()
        dirty.add(model)

    def alerted(self, model: str) -> None:
        """A tick's alert changed ``model``'s state (its silence is reported), if it is ours."""
        partition = self.partition_of.get(model)
        if partition is not None:
            self.dirty.setdefault(partition, set()).add(model)

    def evict(self, model: str) -> None:
        """An idle model was forgotten: its checkpoint record is deleted in the next round."""
        self.skip_model.pop(model, None)
        partition = self.partition_of.pop(model, None)
        if partition is not None:
            self.dirty.get(partition, set()).discard(model)
            self.evicted.setdefault(partition, set()).add(model)

    def partition(self, model: str) -> int | None:
        return self.partition_of.get(model)

    def offsets(self, partition: int) -> Offsets:
        return (self.next_offsets.get((partition, 0), 0), self.next_offsets.get((partition, 1), 0))

    def models_of(self, partition: int) -> list[str]:
        return [m for m, p in self.partition_of.items() if p == partition]

    def captured(self, model: str, offsets: Offsets) -> Offsets:
        """Up to where ``model``'s state reflects its partition: the partition's offsets, or
        further when its restored record was newer than the watermark and processing has
        not yet caught up with it."""
        own = self.skip_model.get(model)
        if own is None:
            return offsets
        return (max(own[0], offsets[0]), max(own[1], offsets[1]))

    def rounds(self, partitions: list[int], now_ms: int, snapshot: Snapshot) -> list[Round]:
        """A checkpoint's rounds, one per partition; the count of records since the last
        checkpoint starts again."""
        self.checkpoint_started()
        return [self.round(p, now_ms, snapshot) for p in partitions]

    def checkpoint_started(self) -> None:
        """A checkpoint began: the records applied from now on count toward the next one."""
        self.since_checkpoint = 0

    def round(self, partition: int, now_ms: int, snapshot: Snapshot) -> Round:
        """The records of one checkpoint round for a partition: its dirty models are no
        longer dirty (see :meth:`unwritten` when the round fails)."""
        models = self.dirty.pop(partition, set())
        gone = self.evicted.pop(partition, set()) - models
        offsets = self.offsets(partition)
        records: list[CheckpointRecord] = []
        for model in sorted(gone):
            records += self._absent(model)
        for model in models:
            records += self._model_round(model, partition, offsets, snapshot)
        owned = len(self.models_of(partition))
        records.append((MANIFEST_KEY, encode_manifest(offsets, owned, now_ms)))
        return Round(partition, records, offsets, models)

    def unwritten(self, round_: Round) -> None:
        """A round that did not land: its models stay dirty, for the next one."""
        self.dirty.setdefault(round_.partition, set()).update(round_.models)

    def _model_round(
        self, model: str, partition: int, offsets: Offsets, snapshot: Snapshot
    ) -> list[CheckpointRecord]:
        """One model's records. A model whose state cannot be encoded is written as absent
        (a tombstone): the manifest can then move on for the partition's other models, and
        the next owner starts that model afresh rather than from a record the watermark
        outran."""
        previous = self.parts.get(model, 1)
        state = snapshot(model, partition)
        if state is None:
            return self._absent(model)
        written = model_records(model, self.captured(model, offsets), state)
        self.parts[model] = len(written)
        stale: list[CheckpointRecord] = [
            (part_key(model, i), None) for i in range(len(written), previous)
        ]
        return stale + written

    def _absent(self, model: str) -> list[CheckpointRecord]:
        """Tombstones for a model's record and every part its last checkpoint used."""
        previous = self.parts.pop(model, 1)
        keys = [model_key(model)] + [part_key(model, i) for i in range(1, previous)]
        return [(key, None) for key in keys]
