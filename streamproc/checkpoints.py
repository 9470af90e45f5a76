"""Checkpoint records: how detector state is laid out on the compacted checkpoint topic.

One checkpoint topic partition per source partition ``p``. Per model, a record
keyed ``m/<model>`` holds the model's engine snapshot and the source offsets it
reflects (the next feature and outcome offsets to process). After every
checkpoint round, a manifest keyed ``w`` holds the partition's watermark: the
offsets every model of the partition is captured at. Only models that changed
since the last round are rewritten, because a model with no events since its
record was written is, by definition, still described by it.

Recovery therefore needs no coordination with Kafka's committed offsets:

- events below the watermark are in the restored state and are skipped;
- a model record newer than the watermark (a round that crashed before its
  manifest) also says up to where that model is captured, and is honoured;
- everything else is processed again, re-emitting the same alerts (same ids).

The format is JSON framing around the engine's own snapshot bytes (the
explicit codec of :mod:`streamproc.state`), never pickle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from streamproc.errors import StateError

FORMAT_VERSION = 1
MANIFEST_KEY = b"w"
MODEL_PREFIX = b"m/"

Offsets = tuple[int, int]
"""Next offsets to process: (features, outcomes) of one partition."""


def model_key(model: str) -> bytes:
    return MODEL_PREFIX + model.encode()


def encode_model(model: str, offsets: Offsets, snapshot: bytes) -> bytes:
    """A model record: a JSON header line, then the engine snapshot bytes."""
    header = {"v": FORMAT_VERSION, "model": model, "offsets": list(offsets)}
    return orjson.dumps(header) + b"\n" + snapshot


def encode_manifest(offsets: Offsets, models: int, created_ms: int) -> bytes:
    return orjson.dumps(
        {"v": FORMAT_VERSION, "offsets": list(offsets), "models": models, "created_ms": created_ms}
    )


@dataclass(frozen=True, slots=True)
class ModelRecord:
    model: str
    offsets: Offsets
    snapshot: bytes


@dataclass(slots=True)
class PartitionCheckpoint:
    """What one checkpoint partition says, after compaction semantics are applied."""

    watermark: Offsets | None = None
    """Offsets every model is captured at; None when no round ever completed."""
    models: dict[str, ModelRecord] = field(default_factory=dict)
    bytes: int = 0
    """Total size of the live records (for the state-size log line)."""

    def resume_offsets(self) -> Offsets:
        """Where processing must resume so that nothing is missed: the watermark, or 0."""
        return self.watermark if self.watermark is not None else (0, 0)


def _offsets(value: object, where: str) -> Offsets:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and v >= 0 for v in value)
    ):
        raise StateError(f"checkpoint {where}: offsets must be two non-negative integers")
    return (value[0], value[1])


def _header(raw: bytes, where: str) -> dict[str, object]:
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"checkpoint {where}: not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("v") != FORMAT_VERSION:
        raise StateError(f"checkpoint {where}: unknown format")
    return header


def decode_model(value: bytes) -> ModelRecord:
    head, sep, snapshot = value.partition(b"\n")
    if not sep:
        raise StateError("checkpoint model record: no snapshot after the header")
    header = _header(head, "model record")
    model = header.get("model")
    if not isinstance(model, str):
        raise StateError("checkpoint model record: 'model' must be a string")
    return ModelRecord(model, _offsets(header.get("offsets"), f"model {model!r}"), snapshot)


def read_partition(records: Iterable[tuple[bytes | None, bytes | None]]) -> PartitionCheckpoint:
    """Fold a checkpoint partition's records, oldest first, the way compaction would."""
    live: dict[bytes, bytes] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            live.pop(key, None)
        else:
            live[key] = value
    checkpoint = PartitionCheckpoint(bytes=sum(len(v) for v in live.values()))
    manifest = live.pop(MANIFEST_KEY, None)
    if manifest is not None:
        checkpoint.watermark = _offsets(_header(manifest, "manifest").get("offsets"), "manifest")
    for key, value in live.items():
        if key.startswith(MODEL_PREFIX):
            record = decode_model(value)
            checkpoint.models[record.model] = record
    return checkpoint
