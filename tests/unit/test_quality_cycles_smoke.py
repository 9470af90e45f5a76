"""The cycle quality benchmark's own functions on a tiny run."""

from __future__ import annotations

from types import ModuleType

import pytest

from streamproc.settings import load_settings
from tests.unit import bench_scripts


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return bench_scripts.load("quality_cycles")


def test_an_amplitude_change_is_found_within_two_cycles(bench: ModuleType) -> None:
    scenario = bench.SCENARIOS["daily-amplitude-x1.5"]
    settings = load_settings(environ={}).engine
    runs = [bench.run(scenario, seed, settings) for seed in (1, 2)]

    result = bench._change(scenario, runs)

    assert (result["detected"], result["within_two_cycles"], result["early"]) == (2, 2, 0)
    assert result["ok"] is True
    assert runs[0] == bench.run(scenario, 1, settings)


def test_a_daily_cycle_control_is_quiet_and_counted_per_100k(bench: ModuleType) -> None:
    scenario = bench.SCENARIOS["daily-minute"]
    run = bench.run(scenario, 1, load_settings(environ={}).engine, events=5 * 1_440)

    result = bench._control([run])

    assert (result["events"], result["false_alarms"], result["ok"]) == (7_200, 0, True)


def test_without_profiles_the_same_control_alerts(bench: ModuleType) -> None:
    """The control can fail: with seasonality off the cycle alerts."""
    scenario = bench.SCENARIOS["daily-minute"]
    settings = load_settings(environ={"STREAMPROC_ENGINE_SEASONALITY": "off"}).engine
    run = bench.run(scenario, 1, settings, events=5 * 1_440)

    assert bench._control([run])["ok"] is False
