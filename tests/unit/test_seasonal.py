"""Seasonal profiles (issue #14, item 1): a daily or weekly cycle in event time does not
alert, a change of its level or shape does, and the profile is part of a stream's state."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc import seasonal
from streamproc.alerts import Alert, Status
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import FeatureEvent
from streamproc.settings import EngineSettings, Limits, Override, load_settings
from streamproc.streams import Stream

T0 = 1_700_000_000_000
MINUTE = 60_000
DAY = 1_440
"""Events per day at one a minute."""


def settings(mode: str = "auto", **more: Any) -> EngineSettings:
    return load_settings(environ={}).engine.model_copy(update={"seasonality": mode, **more})


def cycle(
    n: int,
    seed: int,
    period: int = DAY,
    amplitude: float = 1.5,
    change_at: int | None = None,
    factor: float = 1.0,
    shift: float = 0.0,
) -> list[float]:
    """N(3, 1) plus a sine of ``period`` events; from ``change_at`` its amplitude is
    multiplied by ``factor`` and the level moves by ``shift``."""
    rng = random.Random(seed)
    values = []
    for i in range(n):
        after = change_at is not None and i >= change_at
        amp = amplitude * (factor if after else 1.0)
        level = 3.0 + (shift if after else 0.0)
        values.append(level + amp * math.sin(2 * math.pi * i / period) + rng.gauss(0.0, 1.0))
    return values


def events(values: Iterable[float], timed: bool = True, first: int = 0) -> list[FeatureEvent]:
    return [
        FeatureEvent(
            model="m",
            features={"x": v},
            ts=T0 + (first + i) * MINUTE,
            id=str(first + i),
            ts_given=timed,
        )
        for i, v in enumerate(values)
    ]


def feed(engine: Engine, batch: Iterable[FeatureEvent]) -> list[tuple[int, Alert]]:
    """(event index, alert) of every firing alert of a feature's value stream."""
    hits = []
    for event in batch:
        for alert in engine.process(event, event.ts).alerts:
            if alert.status is Status.FIRING and alert.stream.kind is StreamKind.VALUE:
                hits.append((int(event.id or 0), alert))
    return hits


def value_stream(engine: Engine) -> Stream:
    stream = engine._models["m"].features["x"].value
    assert stream is not None
    return stream


def profile(engine: Engine) -> seasonal.Seasonal:
    season = value_stream(engine)._season
    assert season is not None
    return season


def test_a_daily_cycle_alerts_without_its_profile_and_not_with_it() -> None:
    batch = events(cycle(6 * DAY, seed=1))

    assert len(feed(Engine(settings("off"), Limits()), batch)) >= 3
    auto = Engine(settings("auto"), Limits())
    assert feed(auto, batch) == []
    assert profile(auto).daily == seasonal.ON


def test_alerts_on_the_cycle_are_held_while_the_first_day_is_learned() -> None:
    """Without the hold the first day's cycle alerts (as with seasonality off)."""
    batch = events(cycle(DAY, seed=2))
    assert feed(Engine(settings("off"), Limits()), batch)

    engine = Engine(settings("auto"), Limits())
    assert feed(engine, batch) == []
    assert profile(engine).daily == seasonal.LEARNING
    assert profile(engine).holds(batch[-1].ts)


def test_a_stationary_stream_gets_no_profile() -> None:
    engine = Engine(settings("auto"), Limits())
    feed(engine, events(cycle(10 * DAY, seed=3, amplitude=0.0)))

    season = profile(engine)
    assert (season.daily, season.weekly) == (seasonal.OFF, seasonal.OFF)
    assert not season.holds(T0 + 10 * DAY * MINUTE)


def test_the_on_mode_removes_a_profile_without_its_test() -> None:
    engine = Engine(settings("on"), Limits())
    feed(engine, events(cycle(2 * DAY, seed=3, amplitude=0.0)))

    assert profile(engine).daily == seasonal.ON


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_an_amplitude_half_as_large_again_alerts_within_two_cycles(seed: int) -> None:
    """Once both profiles are decided (the weekly one after 8 days and 7 hours)."""
    at = 9 * DAY
    hits = feed(
        Engine(settings(), Limits()),
        events(cycle(11 * DAY, seed=seed, change_at=at, factor=1.5)),
    )

    assert hits
    assert at <= hits[0][0] < at + 2 * DAY


def test_a_level_shift_of_a_seasonal_stream_alerts_with_the_level_before_and_after() -> None:
    at = 9 * DAY
    hits = feed(
        Engine(settings(), Limits()),
        events(cycle(10 * DAY, seed=7, change_at=at, shift=1.0)),
    )

    index, alert = hits[0]
    assert at <= index < at + 200
    assert alert.change.mean_before is not None and alert.change.mean_after is not None
    assert alert.change.mean_before == pytest.approx(3.0, abs=0.3)
    assert alert.change.mean_after == pytest.approx(4.0, abs=0.5)


def test_a_weekly_cycle_gets_a_weekly_profile_and_does_not_alert() -> None:
    week = 7 * DAY
    batch = events(cycle(3 * week, seed=8, period=week))

    assert len(feed(Engine(settings("off"), Limits()), batch)) >= 3
    engine = Engine(settings(), Limits())
    assert feed(engine, batch) == []
    assert profile(engine).weekly == seasonal.ON


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_events_without_their_own_ts_never_teach_the_profile(mode: str) -> None:
    """Nor hold its alerts: the stream is watched as without seasonality."""
    batch = events(cycle(2 * DAY, seed=9, change_at=DAY, shift=2.0, amplitude=0.0), False)
    engine = Engine(settings(mode), Limits())

    assert feed(engine, batch)
    season = profile(engine)
    assert season.daily == seasonal.LEARNING
    assert season.day_start is None
    assert sum(season.day_n) == 0


def test_an_override_turns_seasonality_off_for_one_feature() -> None:
    engine = Engine(settings(overrides=(Override(stream="x", seasonality="off"),)), Limits())
    feed(engine, events(cycle(10, seed=1)))

    assert value_stream(engine)._season is None


@pytest.mark.parametrize("split", [DAY // 2, 2 * DAY + 333, 9 * DAY + 77])
def test_snapshot_and_restore_mid_cycle_continue_exactly(split: int) -> None:
    """Splits while the daily profile learns, while the weekly one learns, and after a
    change of the cycle's amplitude."""
    batch = events(cycle(10 * DAY, seed=10, change_at=9 * DAY, factor=1.5))
    reference = Engine(settings(), Limits())
    expected = feed(reference, batch)

    first = Engine(settings(), Limits())
    before = feed(first, batch[:split])
    second = Engine(settings(), Limits())
    assert second.restore(first.snapshot()).rejected == ()
    after = feed(second, batch[split:])

    assert [(i, a.alert_id) for i, a in before + after] == [(i, a.alert_id) for i, a in expected]
    assert expected  # the change alerted
    assert second.snapshot() == reference.snapshot()


def test_a_stream_written_before_seasonality_restores_with_an_empty_profile() -> None:
    first = Engine(settings(), Limits())
    feed(first, events(cycle(2 * DAY, seed=11)))
    doc = orjson.loads(first.snapshot())
    for feature in doc["models"]["m"]["features"].values():
        for stream in (feature["value"], feature["missing"]):
            del stream["seasonal"]

    second = Engine(settings(), Limits())
    assert second.restore(orjson.dumps(doc)).rejected == ()

    season = profile(second)
    assert (season.daily, season.n, sum(season.day_n)) == (seasonal.LEARNING, 0, 0)
    assert value_stream(second).n == value_stream(first).n


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("daily", "maybe"),
        ("day_n", [1] * 23),
        ("day_mean", [math.inf] + [0.0] * 23),
        ("week_mean", [1e300] * 14),
        ("m2", -1.0),
        ("day_start", 1.5),
    ],
)
def test_a_bad_profile_is_refused_with_its_field_named(field: str, bad: object) -> None:
    first = Engine(settings(), Limits())
    feed(first, events(cycle(2 * DAY, seed=12)))
    doc = orjson.loads(first.snapshot())
    doc["models"]["m"]["features"]["x"]["value"]["seasonal"][field] = bad

    result = Engine(settings(), Limits()).restore(orjson.dumps(doc))

    assert [r.model for r in result.rejected] == ["m"]
    assert "seasonal" in result.rejected[0].reason


def test_a_stream_with_both_profiles_stays_within_4_kb() -> None:
    engine = Engine(settings(), Limits())
    feed(engine, events(cycle(10 * DAY, seed=13, period=7 * DAY)))
    state = value_stream(engine).to_state()

    assert profile(engine).weekly == seasonal.ON
    assert len(orjson.dumps(state)) <= 4096


def test_the_critical_f_matches_the_chi_square_quantile() -> None:
    """chi2(23) and chi2(1) at 0.999 are 49.728 and 10.828 (tables): F = chi2 / df."""
    assert seasonal.critical_f(23) == pytest.approx(49.728 / 23, rel=0.01)
    assert seasonal.critical_f(1) == pytest.approx(10.828, rel=0.05)


def test_yaml_on_and_off_unquoted_are_the_words_meant(tmp_path: Path) -> None:
    """YAML 1.1 reads ``off`` as false; the setting takes it as "off"."""
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "engine:\n  seasonality: on\n  overrides:\n    - stream: x\n      seasonality: off\n"
    )

    engine = load_settings(config, environ={}).engine

    assert engine.seasonality == "on"
    assert engine.policy("m", StreamKind.VALUE, "x").seasonality == "off"
    assert engine.policy("m", StreamKind.VALUE, "y").seasonality == "on"
