"""2. Recovery of 100,000 streams: checkpoints written as the worker writes them, then restored."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from tqdm import tqdm

from bench.throughput.workload import (
    BATCH,
    FEATURES,
    PARTITIONS,
    RECOVERY_MODELS,
    feature_body,
    make_engine,
    model_names,
    partition_of,
)
from streamproc.checkpoints import (
    MANIFEST_KEY,
    encode_manifest,
    encode_model,
    model_key,
    read_partition,
)
from streamproc.events import EventKind
from streamproc.pipeline import Pipeline, Record
from streamproc.settings import Settings


@dataclass
class RecoveryResult:
    streams: int
    models: int
    state_bytes: int
    seconds: float
    rss_bytes_per_stream: float


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure_recovery(template_events: int, templates: int) -> RecoveryResult:
    """Checkpoint records for 2,500 models as the worker writes them (per model: a JSON header
    and the engine snapshot), read back and restored through ``Pipeline.restore``."""
    settings = Settings()
    engine = make_engine(settings)
    pipeline = Pipeline(engine, settings.limits)
    names = model_names(templates, "template")
    rng = np.random.default_rng(3)
    batch: list[Record] = []
    offset = 0
    for row in tqdm(
        rng.normal(size=(template_events * templates, FEATURES)).tolist(),
        desc="recovery: template state",
        unit="ev",
        file=sys.stderr,
        mininterval=1.0,
    ):
        model = names[offset % templates]
        payload = feature_body(model, f"t{offset}", 1_700_000_000_000 + offset, row)
        batch.append(Record("features", 0, offset, 0, model.encode(), payload, EventKind.FEATURE))
        offset += 1
        if len(batch) == BATCH:
            pipeline.handle(batch, 1_700_000_000_000 + offset)
            batch = []
    if batch:
        pipeline.handle(batch, 1_700_000_000_000 + offset)
    bodies = [orjson.loads(engine.snapshot([name])) for name in names]
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for i, name in enumerate(model_names(RECOVERY_MODELS)):
        body = bodies[i % templates]
        snapshot = orjson.dumps(
            {"version": body["version"], "models": {name: body["models"][names[i % templates]]}}
        )
        by_partition[partition_of(name)].append(
            (model_key(name), encode_model(name, (offset, 0), snapshot))
        )
    for records in by_partition.values():
        records.append((MANIFEST_KEY, encode_manifest((offset, 0), len(records), 0)))
    del engine, pipeline
    restored = Pipeline(make_engine(settings), settings.limits)
    before = rss_bytes()
    started = time.perf_counter()
    state_bytes = 0
    for p, records in by_partition.items():
        checkpoint = read_partition(records)
        state_bytes += checkpoint.bytes
        restored.restore(p, checkpoint)
    seconds = time.perf_counter() - started
    streams = sum(1 for _ in restored.engine.streams())
    return RecoveryResult(
        streams,
        len(restored.engine.models),
        state_bytes,
        seconds,
        (rss_bytes() - before) / max(streams, 1),
    )
