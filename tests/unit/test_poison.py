"""A poison record never stops a partition: what happens when processing raises.

A detector that throws is injected through the engine's detector factory: an override
gives the poisoned model a marker detector spec, and the factory builds a detector that
raises for it (the factory is not told the model; the spec is how it tells).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from streamproc.alerts import Alert
from streamproc.app import StreamprocApp
from streamproc.checkpoints import ModelRecord, PartitionCheckpoint, read_partition
from streamproc.engine import Engine
from streamproc.events import EventKind, Reason
from streamproc.logs import RejectionLog
from streamproc.metrics import Metrics
from streamproc.pipeline import Output, Pipeline, Record
from streamproc.replay import replay
from streamproc.settings import (
    ArrivalOverride,
    ArrivalSettings,
    DetectorSpec,
    EngineSettings,
    Limits,
    Override,
    load_settings,
)
from streamproc.stream_detectors import default_factory

T0 = 1_764_000_000_000
PART = 2
MARK = DetectorSpec(type="page_hinkley", params={"threshold": 12345.0})
"""The spec only the poisoned model's streams get; the factory fails for it."""


class Exploding:
    """A detector whose update raises once ``armed`` is set (from the start by default)."""

    def __init__(self, armed: list[bool]) -> None:
        self._armed = armed
        self.drift_detected = False

    def update(self, x: float) -> None:
        if self._armed[0]:
            raise RuntimeError("detector exploded")


def poisoned_engine(model: str = "bad", armed: bool = True, **kwargs: Any) -> Engine:
    """An engine whose ``model`` streams hold a detector that raises when ``armed``."""
    switch = [armed]

    def factory(spec: DetectorSpec, standardized: bool) -> Any:
        if spec == MARK:
            return Exploding(switch)
        return default_factory(spec, standardized)

    settings = EngineSettings(overrides=(Override(model=model, detectors=(MARK,)),))
    engine = Engine(settings, Limits(), detector_factory=factory, **kwargs)
    engine.switch = switch  # type: ignore[attr-defined]
    return engine


def body(model: str, i: int, x: float) -> dict[str, object]:
    return {"model": model, "id": f"{model}-{i}", "ts": T0 + i, "features": {"x": x}}


def record(offset: int, value: object, key: bytes = b"k") -> Record:
    return Record("features", PART, offset, T0, key, orjson.dumps(value), EventKind.FEATURE)


def shifting(models: list[str], n: int = 600) -> list[Record]:
    """One message per event, models interleaved, each model's ``x`` shifting by 3 sigma
    half-way (a value alert per good model)."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        for model in models:
            out.append(record(len(out), body(model, i, rng.gauss(3.0 if i >= n // 2 else 0, 1))))
    return out


def alert_ids(alerts: list[Alert], model: str) -> list[str]:
    return [a.alert_id for a in alerts if a.model == model]


def test_a_detector_that_throws_dead_letters_its_events_and_spares_the_rest() -> None:
    records = shifting(["good", "bad", "other"])
    out = Pipeline(poisoned_engine(), Limits()).handle(records, T0)
    clean = Pipeline(Engine(EngineSettings(), Limits()), Limits()).handle(
        [r for r in records if b'"bad"' not in (r.value or b"")], T0
    )

    assert alert_ids(out.alerts, "good") == alert_ids(clean.alerts, "good") != []
    assert alert_ids(out.alerts, "other") == alert_ids(clean.alerts, "other") != []
    assert out.events == {"good": 600, "other": 600}
    assert len(out.dead_letters) == 600
    assert {d.rejection.reason for d in out.dead_letters} == {Reason.INTERNAL_ERROR}
    first = out.dead_letters[0]
    assert first.value == first.record.value, "a single-event message is its own letter"
    assert first.rejection.model == "bad" and first.rejection.index is None
    assert "RuntimeError: detector exploded" in first.rejection.message
    assert isinstance(first.error, RuntimeError)
    assert [(f.stage, f.model) for f in out.failures] == [("event", "bad")] * 600


def test_in_an_array_only_the_poisoned_element_is_dead_lettered() -> None:
    events = [body("good", 0, 1.0), body("bad", 0, 1.0), body("good", 1, 2.0)]
    out = Pipeline(poisoned_engine(), Limits()).handle([record(0, events)], T0)

    assert out.events == {"good": 2}
    [dead] = out.dead_letters
    assert dead.rejection.reason is Reason.INTERNAL_ERROR
    assert dead.rejection.index == 1
    assert orjson.loads(dead.value) == events[1]
    assert ("streamproc.source.index", b"1") in dead.headers()


def test_a_reset_model_starts_afresh_and_its_next_checkpoint_replaces_the_bad_state() -> None:
    engine = poisoned_engine(armed=False)
    pipeline = Pipeline(engine, Limits())
    pipeline.handle([record(i, body("bad", i, float(i % 7))) for i in range(200)], T0)
    pipeline.ledger.dirty.clear()  # as if checkpointed
    assert engine.models == ["bad"]

    engine.switch[0] = True  # type: ignore[attr-defined]
    out = pipeline.handle([record(200, body("bad", 200, 1.0))], T0)
    assert [d.rejection.reason for d in out.dead_letters] == [Reason.INTERNAL_ERROR]
    assert engine.models == [], "the model's state was dropped"
    assert pipeline.ledger.dirty == {PART: {"bad"}}, "and it is written at the next checkpoint"
    round_ = pipeline.round(PART, T0)
    records, written = round_.records, round_.models
    assert written == {"bad"}

    restarted = Pipeline(Engine(EngineSettings(), Limits()), Limits())
    restarted.restore(PART, read_partition(records))
    assert restarted.engine.models == [], "a restart does not load the state that failed"

    engine.switch[0] = False  # type: ignore[attr-defined]
    after = pipeline.handle([record(201, body("bad", 201, 1.0))], T0)
    assert after.events == {"bad": 1} and after.dead_letters == []
    assert next(iter(engine.streams(["bad"]))).n == 1, "fresh: its first event again"


def test_a_model_whose_state_cannot_be_checkpointed_is_reset_not_the_partition() -> None:
    pipeline = Pipeline(poisoned_engine(armed=False), Limits())
    pipeline.handle([record(0, body("bad", 0, 1.0)), record(1, body("good", 0, 1.0))], T0)

    round_ = pipeline.round(PART, T0)
    records, written = round_.records, round_.models
    assert written == {"bad", "good"}
    restored = Pipeline(Engine(EngineSettings(), Limits()), Limits())
    restored.restore(PART, read_partition(records))
    assert restored.engine.models == ["good"], "the bad model's record holds no state"
    assert pipeline.engine.models == ["good"]
    out = pipeline.handle([record(2, body("good", 1, 1.0))], T0)
    assert [(f.stage, f.model) for f in out.failures] == [("snapshot", "bad")]


def test_a_snapshot_that_fails_validation_resets_its_model_only() -> None:
    source = Pipeline(Engine(EngineSettings(), Limits()), Limits())
    source.handle([record(i, body("good", i, float(i % 5))) for i in range(50)], T0)
    good = source.engine.snapshot(["good"])
    checkpoint = PartitionCheckpoint(
        watermark=(50, 0),
        models={
            "good": ModelRecord("good", (50, 0), good),
            "bad": ModelRecord("bad", (50, 0), b'{"version": 1, "models": {"bad": 7}}'),
        },
    )
    pipeline = Pipeline(Engine(EngineSettings(), Limits()), Limits())

    assert pipeline.restore(PART, checkpoint) == (50, 0)
    assert pipeline.engine.models == ["good"]
    assert pipeline.ledger.dirty == {PART: {"bad"}}, "the next checkpoint replaces the bad record"
    assert [invalid.model for invalid in checkpoint.invalid] == ["bad"]
    out = pipeline.handle([record(50, body("good", 50, 1.0))], T0)
    assert out.failures == [], "bad data is an invalid checkpoint record, not an internal error"
    assert out.events == {"good": 1}


class RestoreBug(Engine):
    """An engine with a bug when restoring one model's record (not a validation error)."""

    def restore(self, data: bytes, only: Any = None) -> Any:
        if only is not None and "bad" in only:
            raise RuntimeError("restore bug")
        return super().restore(data, only)


def test_a_restore_that_raises_resets_its_model_only() -> None:
    source = Pipeline(Engine(EngineSettings(), Limits()), Limits())
    events = [record(i, body(m, i, float(i % 5))) for i in range(40) for m in ("bad", "good")]
    source.handle(events, T0)
    records = source.round(PART, T0).records
    pipeline = Pipeline(RestoreBug(EngineSettings(), Limits()), Limits())

    pipeline.restore(PART, read_partition(records))

    assert pipeline.engine.models == ["good"]
    assert pipeline.ledger.dirty == {PART: {"bad"}}
    out = pipeline.handle([record(80, body("good", 80, 1.0))], T0)
    assert [(f.stage, f.model) for f in out.failures] == [("restore", "bad")]


class Bomb(bytes):
    """A payload whose length cannot be read: decoding it raises."""

    def __len__(self) -> int:
        raise RuntimeError("decoder bug")


def test_an_exception_in_decoding_dead_letters_the_whole_message() -> None:
    bomb = Record("features", PART, 0, T0, b"k", Bomb(b"{}"), EventKind.FEATURE)
    out = Pipeline(Engine(EngineSettings(), Limits()), Limits()).handle(
        [bomb, record(1, body("good", 0, 1.0))], T0
    )

    [dead] = out.dead_letters
    assert dead.rejection.reason is Reason.INTERNAL_ERROR and dead.value is bomb.value
    assert [f.stage for f in out.failures] == ["decode"]
    assert out.events == {"good": 1}


def test_a_tick_that_raises_for_one_model_resets_it_and_checks_the_others() -> None:
    arrival = ArrivalSettings(overrides=(ArrivalOverride(silence_seconds=2),))
    engine = Engine(EngineSettings(), Limits(), arrival=arrival)
    pipeline = Pipeline(engine, Limits())
    pipeline.handle([record(0, body("good", 0, 1.0)), record(1, body("bad", 0, 1.0))], T0)
    engine._models["bad"].arrival.silence = None  # type: ignore[union-attr]  # corrupt it
    pipeline.ledger.dirty.clear()

    outs = [pipeline.tick(T0 + s * 1000) for s in (1, 2, 3)]
    assert [(f.stage, f.model) for f in outs[0].failures] == [("tick", "bad")]
    assert engine.models == ["good"]
    assert [a.model for o in outs for a in o.alerts] == ["good"], "the others still checked"
    assert pipeline.ledger.dirty == {PART: {"bad", "good"}}


def test_internal_errors_are_counted_and_logged_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.internal_error("event", reset=True)
    metrics.internal_error("send", reset=False)
    assert registry.get_sample_value("streamproc_internal_errors_total", {"stage": "event"}) == 1
    assert registry.get_sample_value("streamproc_model_resets_total") == 1

    try:
        raise RuntimeError("detector exploded")
    except RuntimeError as exc:
        error = exc
    with caplog.at_level(logging.WARNING, logger="streamproc.rejections"):
        RejectionLog().rejected("features", 1, 7, "internal_error", "boom", error=error)
    [line] = caplog.records
    assert line.levelno == logging.ERROR
    assert line.exc_info is not None and line.exc_info[1] is error


class Sink:
    """Stands in for a Faust topic: records what is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        self.sent.append(message)


async def test_an_alert_that_cannot_be_serialized_is_left_out_and_the_others_are_sent() -> None:
    good = Pipeline(Engine(EngineSettings(), Limits()), Limits()).handle(shifting(["a", "b"]), T0)
    broken = dataclasses.replace(good.alerts[0], detector={"type": object()})
    app = StreamprocApp(load_settings(environ={}))
    app.alerts_topic, app.dead_letter_topic = Sink(), Sink()
    out = Output(alerts=[broken, *good.alerts])

    await app._send(out)

    assert [m["value"] for m in app.alerts_topic.sent] == [a.to_json() for a in good.alerts]
    assert [f.stage for f in out.failures] == ["send"]


def test_replay_refuses_an_event_that_raises_and_goes_on_like_the_worker() -> None:
    lines = [orjson.dumps(body(m, i, float(i % 7))) for i in range(300) for m in ("bad", "good")]
    lines += [orjson.dumps(body("good", 300 + i, 50.0 + i % 3)) for i in range(300)]
    rejected: list[tuple[int, Reason, str | None]] = []
    alerts: list[Alert] = []

    summary = replay(
        lines,
        poisoned_engine(armed=True),
        Limits(),
        clock=lambda: T0,
        on_alert=alerts.append,
        on_rejection=lambda n, r: rejected.append((n, r.reason, r.model)),
    )

    assert {(reason, model) for _, reason, model in rejected} == {(Reason.INTERNAL_ERROR, "bad")}
    assert [n for n, _, _ in rejected] == list(range(1, 600, 2)), "every line of the bad model"
    assert summary.events == 600
    alone: list[Alert] = []
    good = [line for line in lines if b'"good"' in line]
    replay(
        good,
        Engine(EngineSettings(), Limits()),
        Limits(),
        clock=lambda: T0,
        on_alert=alone.append,
        on_rejection=lambda n, r: None,
    )
    assert alerts and [a.alert_id for a in alerts] == [a.alert_id for a in alone]
