"""The benchmark's workload: 50 models x 20 features, keyed by model, and the engine it feeds.

Imports only the core (events, pipeline, settings, engine): the hot-path child runs it
against a baseline commit's package, which has no ``streamproc.dev``.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
from aiokafka.partitioner import DefaultPartitioner
from tqdm import tqdm

from streamproc.engine import Engine
from streamproc.events import EventKind
from streamproc.pipeline import Record
from streamproc.settings import EngineSettings, Settings

MODELS = 50
FEATURES = 20
PARTITIONS = 8
OUTCOME_EVERY = 10
"""One outcome event per this many feature events (10%)."""
FEATURE_NAMES = [f"f{j:02d}" for j in range(FEATURES)]
BATCH = 1_000
"""Records per batch: the worker's most per batch (streamproc.batches.BATCH_RECORDS), also
used by the floor and hot path."""
RECOVERY_MODELS = 2_500
"""x 20 features x (value, missing rate) = 100,000 streams."""
SHIFT = 4.0
"""Mean shift injected during the latency phase, in standard deviations."""
RECOVERY_LINE = re.compile(
    r"recovery: partition (\d+): restored (\d+) models, (\d+) streams, (\d+) bytes "
    r"\((\d+) B/stream\) in ([\d.]+) s"
)
STARTED = time.perf_counter()
PARTITIONER = DefaultPartitioner()


def log(message: str) -> None:
    tqdm.write(f"[{time.perf_counter() - STARTED:6.1f} s] {message}", file=sys.stderr)


def model_names(count: int, prefix: str = "model") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(count)]


def partition_for(key: bytes) -> int:
    """The partition the Java client (and aiokafka's default partitioner) picks for a key."""
    partitions = list(range(PARTITIONS))
    return int(PARTITIONER(key, partitions, partitions))


def bench_models(count: int = MODELS) -> list[str]:
    """``count`` model names that the broker phases spread evenly over the partitions: as
    many per partition, give or take one, and as many in each half of them. The first 50
    names of :func:`model_names` hash to 4-9 models a partition, which gave one of two
    worker processes 58% of the events: the two-process phase then measured that skew,
    not the processes (docs/performance.md)."""
    quota = [count // PARTITIONS] * PARTITIONS
    for k in range(count % PARTITIONS):
        quota[k * PARTITIONS // (count % PARTITIONS)] += 1
    chosen: list[str] = []
    candidates = (f"model-{i:04d}" for i in itertools.count())
    while len(chosen) < count:
        name = next(candidates)
        partition = partition_for(name.encode())
        if quota[partition]:
            quota[partition] -= 1
            chosen.append(name)
    return chosen


def feature_body(model: str, event_id: str, ts: int, values: list[float]) -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "id": event_id,
            "ts": ts,
            "features": dict(zip(FEATURE_NAMES, values, strict=True)),
        }
    )


def outcome_body(model: str, event_id: str, ts: int, y_true: int, y_pred: int) -> bytes:
    return orjson.dumps(
        {"model": model, "id": event_id, "ts": ts, "y_true": y_true, "y_pred": y_pred}
    )


def workload(
    events: int, seed: int, start_ms: int, chunk: int = 10_000
) -> Iterator[tuple[EventKind, str, bytes]]:
    """Stationary events: (kind, model, payload); models round-robin, outcomes at 10%."""
    rng = np.random.default_rng(seed)
    models = bench_models()
    for first in range(0, events, chunk):
        size = min(chunk, events - first)
        rows = rng.normal(size=(size, FEATURES)).tolist()
        labels = rng.integers(0, 2, size=(size, 2)).tolist()
        for k, row in enumerate(rows):
            i = first + k
            model = models[i % MODELS]
            ts = start_ms + i
            yield EventKind.FEATURE, model, feature_body(model, f"e{i}", ts, row)
            if i % OUTCOME_EVERY == 0:
                y_true, y_pred = labels[k]
                yield EventKind.OUTCOME, model, outcome_body(model, f"o{i}", ts, y_true, y_pred)


def partition_of(model: str) -> int:
    """A stable model -> partition mapping for the in-process phases (no broker)."""
    return zlib.crc32(model.encode()) % PARTITIONS


def in_memory_records(events: int, seed: int) -> list[Record]:
    offsets: Counter[tuple[int, EventKind]] = Counter()
    records = []
    for kind, model, payload in workload(events, seed, 1_700_000_000_000):
        partition = partition_of(model)
        offset = offsets[(partition, kind)]
        offsets[(partition, kind)] += 1
        topic = "features" if kind is EventKind.FEATURE else "outcomes"
        records.append(
            Record(topic, partition, offset, 1_700_000_000_000, model.encode(), payload, kind)
        )
    return records


def engine_settings_json() -> str:
    """The engine's default settings with every scale-free default written out, so that
    another commit's code (``--baseline``) runs exactly the same detectors."""
    from streamproc import detectors
    from streamproc.detectors import DetectorSpec

    settings = EngineSettings()
    body = settings.model_dump(mode="json", include={"standardize", "warmup", "cooldown_events"})
    specs: dict[str, list[dict[str, Any]]] = {}
    for kind, chosen in settings.detectors.model_dump(mode="json").items():
        standardized = settings.standardize and kind in ("value", "prediction")
        specs[kind] = [
            detectors.effective_spec(DetectorSpec.model_validate(spec), standardized).model_dump(
                mode="json"
            )
            for spec in chosen
        ]
    body["detectors"] = specs
    return json.dumps(body)


def make_engine(settings: Settings, *, arrival: bool = True) -> Engine:
    """The engine as the worker's app builds it (arrival monitoring when the code has it)."""
    arrival_settings = getattr(settings, "arrival", None)
    if arrival and arrival_settings is not None:
        return Engine(settings.engine, settings.limits, arrival=arrival_settings)
    return Engine(settings.engine, settings.limits)
