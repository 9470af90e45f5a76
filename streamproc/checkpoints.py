"""Checkpoint records: how detector state is laid out on the compacted checkpoint topic.

One checkpoint topic partition per source partition ``p``. Per model, a record
keyed ``m/<model>`` holds the model's engine snapshot and the source offsets it
reflects (the next feature and outcome offsets to process). A snapshot larger
than :data:`PART_BYTES` is split: its tail goes to records keyed
``p/<i>/<model>`` written before the ``m/`` record, which names how many parts
there are and the digest of the whole snapshot, so a part left over from an
older, longer version can never be stitched into a newer one. After every
checkpoint round, a manifest keyed ``w`` holds the partition's watermark: the
offsets every model of the partition is captured at. Only models that changed
since the last round are rewritten, because a model with no events since its
record was written is, by definition, still described by it.

Recovery therefore needs no coordination with Kafka's committed offsets:

- events below the watermark are in the restored state and are skipped;
- a model record newer than the watermark (a round that crashed before its
  manifest) also says up to where that model is captured, and is honoured;
- everything else is processed again, re-emitting the same alerts (same ids).

Whoever can write the checkpoint topic controls what is restored, so nothing
read back is trusted: every header field is checked for type and range, a
record's model must match its key, and a record that fails a check is set
aside (:class:`InvalidRecord`) so that it costs only its own model.

The format is JSON framing around the engine's own snapshot bytes (the
explicit codec of :mod:`streamproc.state`), never pickle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import orjson

from streamproc.errors import StateError

FORMAT_VERSION = 1
MANIFEST_KEY = b"w"
MODEL_PREFIX = b"m/"
PART_PREFIX = b"p/"
PART_BYTES = 512 * 1024
"""Snapshot bytes per record: under the broker's default ``message.max.bytes`` (1 MB), so a
checkpoint fits even on a topic created without ``topics.CHECKPOINT_TOPIC_CONFIG``."""
MAX_PARTS = 4096
"""More parts than any snapshot within the engine's limits needs (2 GB): a header claiming
more is corrupt."""
MAX_OFFSET = 2**63 - 1
"""Kafka offsets are signed 64-bit integers."""

Offsets = tuple[int, int]
"""Next offsets to process: (features, outcomes) of one partition."""


def model_key(model: str) -> bytes:
    return MODEL_PREFIX + model.encode()


def part_key(model: str, index: int) -> bytes:
    """The index comes first so that no model name can collide with another's part."""
    return PART_PREFIX + f"{index}/".encode() + model.encode()


def _digest(snapshot: bytes) -> str:
    return hashlib.blake2b(snapshot, digest_size=16).hexdigest()


def encode_model(model: str, offsets: Offsets, snapshot: bytes) -> bytes:
    """A single-record model record: a JSON header line, then the engine snapshot bytes."""
    header = {"v": FORMAT_VERSION, "model": model, "offsets": list(offsets)}
    return orjson.dumps(header) + b"\n" + snapshot


def model_records(
    model: str, offsets: Offsets, snapshot: bytes, part_bytes: int = PART_BYTES
) -> list[tuple[bytes, bytes]]:
    """A model's records, none above ``part_bytes`` of snapshot: the parts first, then the
    ``m/`` record that makes them live (written last, so it never names a missing part)."""
    if len(snapshot) <= part_bytes:
        return [(model_key(model), encode_model(model, offsets, snapshot))]
    chunks = [snapshot[i : i + part_bytes] for i in range(0, len(snapshot), part_bytes)]
    digest = _digest(snapshot)
    records = [
        (
            part_key(model, i),
            orjson.dumps({"v": FORMAT_VERSION, "model": model, "part": i, "digest": digest})
            + b"\n"
            + chunk,
        )
        for i, chunk in enumerate(chunks[1:], start=1)
    ]
    head = {
        "v": FORMAT_VERSION,
        "model": model,
        "offsets": list(offsets),
        "parts": len(chunks),
        "digest": digest,
    }
    records.append((model_key(model), orjson.dumps(head) + b"\n" + chunks[0]))
    return records


def encode_manifest(offsets: Offsets, models: int, created_ms: int) -> bytes:
    return orjson.dumps(
        {"v": FORMAT_VERSION, "offsets": list(offsets), "models": models, "created_ms": created_ms}
    )


@dataclass(frozen=True, slots=True)
class ModelRecord:
    model: str
    offsets: Offsets
    snapshot: bytes
    parts: int = 1
    """Records the snapshot was split over (what a later, shorter version must delete)."""


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """A checkpoint record that failed validation: restores nothing."""

    key: str
    """The record's key, decoded leniently (for the log line)."""
    model: str | None
    """The model the key names, when it names one: that model starts with fresh state."""
    reason: str


@dataclass(slots=True)
class PartitionCheckpoint:
    """What one checkpoint partition says, after compaction semantics are applied."""

    watermark: Offsets | None = None
    """Offsets every model is captured at; None when no round ever completed."""
    models: dict[str, ModelRecord] = field(default_factory=dict)
    bytes: int = 0
    """Total size of the live records (for the state-size log line)."""
    invalid: list[InvalidRecord] = field(default_factory=list)
    """Records set aside by validation."""

    def resume_offsets(self) -> Offsets:
        """Where processing must resume so that nothing is missed: the watermark, or 0."""
        return self.watermark if self.watermark is not None else (0, 0)


def _count(value: object, name: str, where: str, maximum: int = MAX_OFFSET) -> int:
    # bool is an int subclass: JSON true must not pass for 1.
    if type(value) is not int or not 0 <= value <= maximum:
        raise StateError(f"checkpoint {where}: {name!r} must be an integer in [0, {maximum}]")
    return value


def _offsets(value: object, where: str) -> Offsets:
    if not isinstance(value, list) or len(value) != 2:
        raise StateError(f"checkpoint {where}: offsets must be two non-negative integers")
    return (_count(value[0], "offsets", where), _count(value[1], "offsets", where))


def _header(raw: bytes, where: str) -> dict[str, object]:
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"checkpoint {where}: not JSON: {exc}") from exc
    if not isinstance(header, dict) or type(header.get("v")) is not int:
        raise StateError(f"checkpoint {where}: unknown format")
    if header["v"] != FORMAT_VERSION:
        raise StateError(f"checkpoint {where}: unknown format")
    return header


def _framed(value: bytes, where: str) -> tuple[dict[str, object], bytes]:
    head, sep, body = value.partition(b"\n")
    if not sep:
        raise StateError(f"checkpoint {where}: no snapshot after the header")
    return _header(head, where), body


def _model_name(header: dict[str, object], where: str) -> str:
    model = header.get("model")
    if not isinstance(model, str) or not model:
        raise StateError(f"checkpoint {where}: 'model' must be a non-empty string")
    return model


def _digest_field(header: dict[str, object], where: str) -> str:
    digest = header.get("digest")
    if not isinstance(digest, str) or len(digest) != 32:
        raise StateError(f"checkpoint {where}: 'digest' must be 32 hex digits")
    return digest


def decode_model(value: bytes, key: bytes | None = None) -> ModelRecord:
    """A model's ``m/`` record (its first part when split); the key, when given, must be
    the model's own, so a record can never overwrite another model's state."""
    header, snapshot = _framed(value, "model record")
    model = _model_name(header, "model record")
    where = f"model {model!r}"
    if key is not None and key != model_key(model):
        raise StateError(f"checkpoint {where}: stored under another model's key")
    offsets = _offsets(header.get("offsets"), where)
    parts = _count(header.get("parts", 1), "parts", where, MAX_PARTS)
    if parts < 1:
        raise StateError(f"checkpoint {where}: 'parts' must be at least 1")
    return ModelRecord(model, offsets, snapshot, parts)


def _join(head: ModelRecord, raw: bytes, live: dict[bytes, bytes]) -> ModelRecord:
    """Stitch a split snapshot back together; every part must carry the head's digest."""
    where = f"model {head.model!r}"
    digest = _digest_field(_framed(raw, where)[0], where)
    chunks = [head.snapshot]
    for index in range(1, head.parts):
        part = live.get(part_key(head.model, index))
        if part is None:
            raise StateError(f"checkpoint {where}: part {index} of {head.parts} is missing")
        header, chunk = _framed(part, f"{where} part {index}")
        if header.get("model") != head.model or header.get("part") != index:
            raise StateError(f"checkpoint {where}: part {index} names another model or index")
        if header.get("digest") != digest:
            raise StateError(f"checkpoint {where}: part {index} is from another version")
        chunks.append(chunk)
    snapshot = b"".join(chunks)
    if _digest(snapshot) != digest:
        raise StateError(f"checkpoint {where}: parts do not add up to the snapshot")
    return replace(head, snapshot=snapshot)


def _model_of_key(key: bytes) -> str | None:
    if not key.startswith(MODEL_PREFIX):
        return None
    return key[len(MODEL_PREFIX) :].decode(errors="replace")


def _validate_manifest(value: bytes) -> Offsets:
    header = _header(value, "manifest")
    _count(header.get("models"), "models", "manifest")
    _count(header.get("created_ms"), "created_ms", "manifest")
    return _offsets(header.get("offsets"), "manifest")


def fold_partition(records: Iterable[tuple[bytes | None, bytes | None]]) -> PartitionCheckpoint:
    """Fold a checkpoint partition's records, oldest first, the way compaction would, and
    validate what is live; invalid records land in ``invalid``, never raise."""
    live: dict[bytes, bytes] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            live.pop(key, None)
        else:
            live[key] = value
    checkpoint = PartitionCheckpoint(bytes=sum(len(v) for v in live.values()))
    manifest = live.get(MANIFEST_KEY)
    if manifest is not None:
        try:
            checkpoint.watermark = _validate_manifest(manifest)
        except StateError as exc:
            checkpoint.invalid.append(InvalidRecord("w", None, str(exc)))
    for key, value in live.items():
        if not key.startswith(MODEL_PREFIX):
            continue
        try:
            record = decode_model(value, key)
            if record.parts > 1:
                record = _join(record, value, live)
        except StateError as exc:
            name = _model_of_key(key)
            checkpoint.invalid.append(InvalidRecord(key.decode(errors="replace"), name, str(exc)))
            continue
        checkpoint.models[record.model] = record
    return checkpoint


def read_partition(records: Iterable[tuple[bytes | None, bytes | None]]) -> PartitionCheckpoint:
    """:func:`fold_partition`, raising :class:`StateError` on an invalid manifest (for tools
    that must not guess); recovery uses the lenient fold and resumes from offset 0."""
    checkpoint = fold_partition(records)
    for invalid in checkpoint.invalid:
        if invalid.key == "w":
            raise StateError(invalid.reason)
    return checkpoint


def rebase(checkpoint: PartitionCheckpoint, starts: Offsets, ends: Offsets) -> list[int]:
    """Where the checkpoint claims offsets beyond a topic's end, it describes another log
    (the topic was re-created, the cluster migrated): its offsets on that topic mean
    nothing here. Keep the state (drift history is about the data, not the offsets) and
    move that topic's watermark and model offsets to the log start, so every record now in
    the log is processed once. Returns the kind indexes rebased."""
    claims = [checkpoint.resume_offsets()] + [r.offsets for r in checkpoint.models.values()]
    beyond = [i for i in (0, 1) if any(c[i] > ends[i] for c in claims)]
    if not beyond:
        return []

    def moved(offsets: Offsets) -> Offsets:
        f, o = offsets
        return (starts[0] if 0 in beyond else f, starts[1] if 1 in beyond else o)

    if checkpoint.watermark is not None:
        checkpoint.watermark = moved(checkpoint.watermark)
    else:
        checkpoint.watermark = moved((0, 0))
    checkpoint.models = {
        m: replace(r, offsets=moved(r.offsets)) for m, r in checkpoint.models.items()
    }
    return beyond
