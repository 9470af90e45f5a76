"""Bounded memory whatever producers send: a cap on models, idle models forgotten (memory and
checkpoint record) after a final silence alert, and a length limit on category values."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import orjson
import pytest

from streamproc.alerts import Severity
from streamproc.checkpoints import model_key, read_partition
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import EventKind, FeatureEvent, OutcomeEvent, Reason, decode
from streamproc.pipeline import Pipeline, Record
from streamproc.replay import replay
from streamproc.settings import ArrivalSettings, EngineSettings, Limits, SilenceSettings

T0 = 1_764_000_000_000
S = 1000
IDLE_S = 600


def feature(model: str, ts: int, i: int = 0) -> FeatureEvent:
    return FeatureEvent(model, {"x": float(i % 5)}, ts, f"{model}-{i}")


def engine(limits: Limits, *, arrival: bool = True) -> Engine:
    settings = ArrivalSettings(silence=SilenceSettings(floor_seconds=10, ceiling_seconds=60))
    return Engine(EngineSettings(), limits, arrival=settings if arrival else None)


def idle_limits(**kwargs: object) -> Limits:
    return Limits(model_idle_seconds=IDLE_S, **kwargs)  # type: ignore[arg-type]


# --- limits.max_models ---------------------------------------------------------------


def test_events_of_models_beyond_max_models_are_rejected_and_known_ones_still_accepted() -> None:
    e = engine(Limits(max_models=2), arrival=False)
    assert e.process(feature("a", T0), T0).rejection is None
    assert e.process(OutcomeEvent("b", T0, 1.0), T0).rejection is None

    refused = e.process(feature("c", T0), T0).rejection
    assert refused is not None
    assert refused.reason is Reason.TOO_MANY_MODELS
    assert refused.model == "c"
    assert "limits.max_models=2" in refused.message
    assert sorted(e.models) == ["a", "b"]
    assert e.process(feature("a", T0 + 1, 1), T0).rejection is None


def test_the_default_cap_is_ten_thousand_models() -> None:
    assert Limits().max_models == 10_000


def test_a_rejected_model_leaves_no_state_behind() -> None:
    e = engine(Limits(max_models=1), arrival=False)
    e.process(feature("a", T0), T0)
    before = e.snapshot()
    for i in range(100):
        assert e.process(feature(f"new-{i}", T0), T0).rejection is not None
    assert e.models == ["a"]
    assert e.snapshot() == before


# --- limits.model_idle_seconds -------------------------------------------------------------


def test_an_idle_model_is_forgotten_after_a_final_silence_alert() -> None:
    e = engine(idle_limits())
    for i in range(5):
        e.process(feature("gone", T0 + i * S, i), T0 + i * S)
        e.process(feature("busy", T0 + i * S, i), T0 + i * S)
    later = T0 + 4 * S + IDLE_S * S + 1
    e.process(feature("busy", later, 9), later)

    assert e.evict_idle(T0 + 4 * S + IDLE_S * S).models == []  # not yet idle long enough
    evicted = e.evict_idle(later)

    assert evicted.models == ["gone"]
    assert e.models == ["busy"]
    [alert] = evicted.alerts
    assert alert.stream.model == "gone"
    assert alert.stream.kind is StreamKind.ARRIVAL
    assert alert.detector["type"] == "silence"
    assert alert.severity is Severity.CRITICAL
    assert alert.event_id == "gone-4"


def test_a_model_already_reported_silent_gets_no_second_alert() -> None:
    e = engine(idle_limits())
    e.process(feature("gone", T0), T0)
    [silence] = e.tick(T0 + 120 * S)  # past the 60 s ceiling: the usual silence alert
    assert silence.stream.model == "gone"

    evicted = e.evict_idle(T0 + (IDLE_S + 1) * S)
    assert evicted.models == ["gone"]
    assert evicted.alerts == []


def test_outcome_only_models_are_evicted_too() -> None:
    e = engine(idle_limits())
    e.process(OutcomeEvent("labels", T0, 0.0), T0)
    assert e.evict_idle(T0 + (IDLE_S + 1) * S).models == ["labels"]
    assert e.models == []


def test_zero_keeps_models_forever() -> None:
    e = engine(Limits(model_idle_seconds=0))
    e.process(feature("m", T0), T0)
    assert e.evict_idle(T0 + 10**12).models == []
    assert e.models == ["m"]


def test_restored_models_count_their_idleness_from_the_first_check() -> None:
    source = engine(idle_limits())
    source.process(feature("m", T0), T0)
    restored = engine(idle_limits())
    restored.restore(source.snapshot())
    much_later = T0 + 100 * IDLE_S * S

    assert restored.evict_idle(much_later).models == []  # its last event time is not persisted
    assert restored.evict_idle(much_later + IDLE_S * S + 1).models == ["m"]


def test_a_returning_model_starts_afresh() -> None:
    e = engine(idle_limits())
    e.process(feature("m", T0), T0)
    e.evict_idle(T0 + (IDLE_S + 1) * S)
    back = T0 + (IDLE_S + 2) * S
    assert e.process(feature("m", back), back).rejection is None
    assert e.models == ["m"]


# --- eviction through the pipeline: the checkpoint record is deleted ----------------------


def record(model: str, offset: int, partition: int = 0) -> Record:
    body = orjson.dumps({"model": model, "ts": T0, "features": {"x": 1.0}})
    return Record("features", partition, offset, T0, model.encode(), body, EventKind.FEATURE)


def test_an_evicted_models_checkpoint_record_gets_a_tombstone() -> None:
    limits = idle_limits()
    pipeline = Pipeline(engine(limits), limits)
    pipeline.handle([record("gone", 0), record("stays", 1)], T0)
    written = pipeline.round(0, T0).records

    late = T0 + (IDLE_S + 1) * S
    pipeline.handle([record("stays", 2)], late)
    out = pipeline.tick(late)
    assert out.evicted == ["gone"]
    assert [a.stream.model for a in out.alerts] == ["gone"]
    round_ = pipeline.round(0, late)
    records, models = round_.records, round_.models

    assert (model_key("gone"), None) in records
    assert models == {"stays"}
    assert pipeline.ledger.models_of(0) == ["stays"]
    after = read_partition([*written, *records])
    assert sorted(after.models) == ["stays"]
    assert pipeline.round(0, late).records[:-1] == []  # the tombstone is sent once


def test_a_model_back_before_the_checkpoint_is_rewritten_not_deleted() -> None:
    limits = idle_limits()
    pipeline = Pipeline(engine(limits), limits)
    pipeline.handle([record("m", 0)], T0)
    late = T0 + (IDLE_S + 1) * S
    pipeline.tick(late)
    pipeline.handle([record("m", 1)], late)

    round_ = pipeline.round(0, late)
    records, models = round_.records, round_.models
    assert models == {"m"}
    assert all(value is not None for _, value in records)


def test_replay_evicts_on_event_time() -> None:
    limits = idle_limits()
    e = Engine(
        EngineSettings(),
        limits,
        arrival=ArrivalSettings(silence=SilenceSettings(floor_seconds=10, ceiling_seconds=60)),
        arrival_clock="event",
    )
    lines = [orjson.dumps({"model": "gone", "ts": T0, "features": {"x": 1.0}})]
    lines += [
        orjson.dumps({"model": "busy", "ts": T0 + i * 10 * S, "features": {"x": 1.0}})
        for i in range(IDLE_S // 10 + 5)
    ]
    alerts: list[str] = []
    replay(
        lines,
        e,
        limits,
        clock=lambda: T0,
        on_alert=lambda a: alerts.append(a.stream.model),
        on_rejection=lambda n, r: None,
        tick_ms=S,
    )
    assert e.models == ["busy"]
    assert alerts == ["gone"]


# --- limits.max_category_length ------------------------------------------------------------


def decode_one(body: dict[str, object], limits: Limits) -> object:
    decoded = decode(orjson.dumps(body), kind=EventKind.FEATURE, received_ms=T0, limits=limits)
    return (decoded.rejections or decoded.events)[0]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"model": "m", "features": {"city": "x" * 11}}, "features.city"),
        ({"model": "m", "features": {"n": 1.0}, "prediction": "y" * 11}, "prediction"),
    ],
)
def test_a_category_longer_than_the_limit_is_rejected(body: dict[str, object], where: str) -> None:
    rejection = decode_one(body, Limits(max_category_length=10))
    assert getattr(rejection, "reason", None) is Reason.VALUE_TOO_LONG
    assert rejection.message == (  # type: ignore[attr-defined]
        f"{where}: a category of 11 characters; the limit is 10"
    )
    assert rejection.model == "m"  # type: ignore[attr-defined]


def test_a_category_at_the_limit_is_accepted() -> None:
    event = decode_one(
        {"model": "m", "features": {"city": "x" * 10}, "prediction": "y" * 10},
        Limits(max_category_length=10),
    )
    assert isinstance(event, FeatureEvent)
    assert event.features == {"city": "x" * 10}


def test_the_default_category_limit_matches_the_name_limit() -> None:
    assert Limits().max_category_length == Limits().max_name_length == 200


def test_the_feature_schema_bounds_categories_like_the_decoder() -> None:
    text = (resources.files("streamproc") / "schemas" / "feature-event.schema.json").read_text()
    alternatives = json.loads(text)["$defs"]["value"]["anyOf"]
    strings = [a for a in alternatives if a.get("type") == "string"]
    assert [a["maxLength"] for a in strings] == [Limits().max_category_length]
    validator = jsonschema.Draft202012Validator(json.loads(text))
    assert validator.is_valid({"model": "m", "features": {"c": "x" * 200}})
    assert not validator.is_valid({"model": "m", "features": {"c": "x" * 201}})
    assert not validator.is_valid({"model": "m", "features": {"n": 1}, "prediction": "y" * 201})
