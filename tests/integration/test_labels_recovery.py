"""Labels in flight survive a SIGKILL: the worker's alerts equal ``streamproc replay``'s on
the same predictions and late labels (issue #15 acceptance)."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import pytest

from streamproc.dev.localkafka import LocalKafka
from streamproc.events import EventKind
from streamproc.topics import ensure_topics
from tests.integration.test_recovery import FAST_CHECKPOINTS, Events, finish
from tests.integration.workers import (
    Cluster,
    produce_events,
    replay_ids,
    wait_for_processed,
)
from tests.unit.test_labels_pipeline import late_labels

pytestmark = pytest.mark.timeout(420)

LABELLED = {**FAST_CHECKPOINTS, "STREAMPROC_LABELS_MODELS": "*"}
"""Every model keeps predictions from its first event, so the join starts at the same point
in the worker and in replay (docs/events.md, Labels)."""


def labelled_events() -> Events:
    """Two models' predictions, accuracy 90% then 60%, labels 3,000 events late (some never
    come): far beyond the skew between the two topics in the worker."""
    docs = late_labels(7000, delay=3000, drop_at=3500)
    return [(EventKind.FEATURE if "features" in d else EventKind.OUTCOME, d) for d in docs]


async def test_sigkill_with_labels_in_flight_gives_the_replayed_alerts(
    kafka: LocalKafka, cluster: Cluster, tmp_path: Path
) -> None:
    settings = cluster.settings(**LABELLED)
    await ensure_topics(settings)
    events = labelled_events()
    expected = set(replay_ids(events, tmp_path, **LABELLED))
    assert len(expected) >= 2, "the accuracy drop of both models must be found"
    producing = asyncio.create_task(produce_events(kafka, settings, events, per_second=1500))
    rng = random.Random(15)
    worker = cluster.start_worker(**LABELLED)
    for _ in range(2):
        await wait_for_processed(worker, rng.randrange(3000, 6000))
        worker.stop(signal.SIGKILL)
        worker = cluster.start_worker(**LABELLED)
    await producing
    ids = await finish(kafka, settings, worker)
    assert set(ids) == expected
    assert "recovery: partition" in worker.output()
