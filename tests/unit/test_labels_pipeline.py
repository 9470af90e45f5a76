"""Labels through the pipeline and replay: the worker's path and the backtest's agree, and an
expired label reaches the dead-letter topic as a synthesized message (docs/dead-letters.md)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import orjson

from streamproc.demo import LABELLED, scenario
from streamproc.engine import Engine
from streamproc.events import EventKind, Rejection
from streamproc.pipeline import Pipeline, Record
from streamproc.replay import replay
from streamproc.settings import EngineSettings, Limits
from streamproc.settings.labels import LabelSettings

NOW = 1_700_000_000_000
LIMITS = Limits()
ENGINE = EngineSettings(cooldown_events=200)
JOINED = LabelSettings(models="m*")


def late_labels(n: int, delay: int, drop_at: int, seed: int = 5) -> Iterator[dict[str, object]]:
    """Predictions of a classifier whose accuracy drops from 90% to 60% at ``drop_at``, and
    their labels ``delay`` events later, in file order (some labels never come)."""
    rng = random.Random(seed)
    truths: dict[int, bool] = {}
    for i in range(n + delay):
        if i < n:
            truth = rng.random() < 0.5
            right = rng.random() < (0.9 if i < drop_at else 0.6)
            truths[i] = truth
            yield {
                "model": f"m{i % 2}",
                "id": f"r{i}",
                "ts": NOW + i * 1000,
                "features": {"x": rng.gauss(0, 1)},
                "prediction": truth == right,
            }
        j = i - delay
        if j >= 0 and j % 97 != 0:
            yield {"model": f"m{j % 2}", "id": f"r{j}", "ts": NOW + i * 1000, "y_true": truths[j]}


def records(docs: list[dict[str, object]]) -> dict[EventKind, list[Record]]:
    topics: dict[EventKind, list[Record]] = {EventKind.FEATURE: [], EventKind.OUTCOME: []}
    for doc in docs:
        kind = EventKind.FEATURE if "features" in doc else EventKind.OUTCOME
        out = topics[kind]
        model = str(doc["model"]).encode()
        out.append(Record(kind.value, 0, len(out), NOW, model, orjson.dumps(doc), kind))
    return topics


def worker_alerts(docs: list[dict[str, object]], batch: int, outcomes_first: bool) -> list[bytes]:
    """The file cut into chunks of ``batch`` events; each chunk's two topics handled one
    after the other, as the worker's two agents may: the topics skew by up to ``batch``."""
    pipeline = Pipeline(Engine(ENGINE, LIMITS, labels=JOINED), LIMITS, outcome_topic="outcomes")
    alerts = []
    offsets = dict.fromkeys(EventKind, 0)
    for start in range(0, len(docs), batch):
        topics = records(docs[start : start + batch])
        for kind in (EventKind.OUTCOME, EventKind.FEATURE)[:: 1 if outcomes_first else -1]:
            part = [
                Record(r.topic, 0, offsets[kind] + r.offset, NOW, r.key, r.value, kind)
                for r in topics[kind]
            ]
            offsets[kind] += len(part)
            alerts += pipeline.handle(part, NOW).alerts
    return sorted(a.to_json() for a in alerts)


def replayed(docs: list[dict[str, object]]) -> tuple[list[bytes], list[tuple[int, Rejection]]]:
    alerts: list[bytes] = []
    rejected: list[tuple[int, Rejection]] = []
    replay(
        (orjson.dumps(d) for d in docs),
        Engine(ENGINE, LIMITS, labels=JOINED),
        LIMITS,
        clock=lambda: NOW,
        on_alert=lambda a: alerts.append(a.to_json()),
        on_rejection=lambda line, r: rejected.append((line, r)),
    )
    return sorted(alerts), rejected


def test_replay_of_predictions_and_late_labels_equals_the_worker_path() -> None:
    docs = list(late_labels(8000, delay=300, drop_at=4000))
    expected, _ = replayed(docs)
    kinds = {orjson.loads(a)["stream"]["kind"] for a in expected}
    assert kinds & {"error", "correctness"}, "the accuracy drop must be detected"
    for batch in (1, 37, 250):
        for outcomes_first in (False, True):
            assert worker_alerts(docs, batch, outcomes_first) == expected


def test_an_expired_label_is_a_dead_letter_with_its_source_offset() -> None:
    engine = Engine(ENGINE, LIMITS, labels=LabelSettings(ttl_seconds=10))
    pipeline = Pipeline(engine, LIMITS, outcome_topic="outcomes")
    label = {"model": "m", "id": "lost", "y_true": 1, "ts": NOW}
    later = {"model": "m", "id": "late", "y_true": 1, "ts": NOW + 10_001}
    topic = records([label, later])[EventKind.OUTCOME]
    topic = [
        Record("outcomes", 3, 40 + r.offset, r.timestamp_ms, r.key, r.value, r.kind) for r in topic
    ]
    assert pipeline.handle(topic[:1], NOW).dead_letters == []
    (dead,) = pipeline.handle(topic[1:], NOW).dead_letters
    assert orjson.loads(dead.value) == label
    assert dead.key == b"m"
    headers = dict(dead.headers())
    assert headers["streamproc.reason"] == b"label_expired"
    assert headers["streamproc.source.topic"] == b"outcomes"
    assert headers["streamproc.source.partition"] == b"3"
    assert headers["streamproc.source.offset"] == b"40"


def test_replay_reports_an_expired_label_at_its_own_line() -> None:
    engine = Engine(ENGINE, LIMITS, labels=LabelSettings(ttl_seconds=10))
    lines = [
        orjson.dumps({"model": "m", "id": "lost", "y_true": 1, "ts": NOW}),
        orjson.dumps({"model": "m", "features": {"x": 1.0}, "ts": NOW + 10_001}),
    ]
    rejected: list[tuple[int, Rejection]] = []
    replay(
        lines,
        engine,
        LIMITS,
        clock=lambda: NOW,
        on_alert=lambda a: None,
        on_rejection=lambda line, r: rejected.append((line, r)),
    )
    ((line, rejection),) = rejected
    assert line == 1
    assert rejection.reason.value == "label_expired"


def test_the_demo_shows_a_model_whose_late_labels_reveal_its_accuracy_drop() -> None:
    start = 1_764_000_000_000
    events = scenario(rate=100, seed=7, start_ms=start)
    docs = [e.body for e in itertools.takewhile(lambda e: e.at_seconds < 80, events)]
    labels = [d for d in docs if d["model"] == LABELLED and "y_true" in d]
    assert labels and all(set(d) == {"model", "id", "ts", "y_true"} for d in labels)
    alerts, rejected = replayed(docs)
    found = [orjson.loads(a) for a in alerts]
    late = [a for a in found if a["model"] == LABELLED]
    assert late, "credit-v1's accuracy drop must be found through its labels"
    assert {a["stream"]["kind"] for a in late} <= {"error", "correctness"}
    assert min(a["event_ts"] for a in late) >= start + 45_000  # labels of dropped predictions
    assert rejected == []
