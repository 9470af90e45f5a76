"""Detector parameters from the per-model false-alarm budget: the formulas, what a stream
runs with, explicit parameters winning, and the calibration of the formulas on noise."""

from __future__ import annotations

import math
import random

import pytest
from river import drift

from streamproc import budget, detectors, spread
from streamproc.alerts import StreamId
from streamproc.detectors import DetectorSpec, DriftDetector
from streamproc.domain import StreamKind
from streamproc.settings import EngineSettings, Override
from streamproc.stream_detectors import default_factory
from streamproc.streams import Stream

DEFAULTS = EngineSettings()
ARL0 = 100_000 * 150 * (2 + spread.SOURCES)
"""Each alarm source of a default value stream: 150 streams, 2 detectors, 2 spread tests."""


def built(settings: EngineSettings, kind: StreamKind) -> dict[str, dict[str, object]]:
    """The parameters each detector of a stream of ``kind`` is built with, by type."""
    made: list[DriftDetector] = []

    def factory(spec: DetectorSpec, standardized: bool) -> DriftDetector:
        made.append(default_factory(spec, standardized))
        return made[-1]

    Stream(StreamId("m", kind, "x"), settings.policy("m", kind, "x"), factory)
    return {detectors.name_of(d): detectors.params_of(d) for d in made}


def test_siegmund_threshold_solves_the_approximation() -> None:
    h = budget.page_hinkley_threshold(1e5, 0.25)
    assert h == pytest.approx(17.7026, abs=1e-3)
    y = 2 * 0.25 * (h + 1.166)
    assert (math.exp(y) - y - 1) / (2 * 0.25**2) == pytest.approx(1e5, rel=1e-9)
    assert budget.page_hinkley_arl0(h, 0.25) == pytest.approx(1e5, rel=1e-9)


@pytest.mark.parametrize("arl0", [2.0, 10.0, 1e3, 1e8, 1e15])
@pytest.mark.parametrize("delta", [1e-6, 0.01, 0.25, 0.35, 1.0, 3.0])
def test_threshold_and_arl0_are_inverses(arl0: float, delta: float) -> None:
    h = budget.page_hinkley_threshold(arl0, delta)
    if h > 0:
        assert budget.page_hinkley_arl0(h, delta) == pytest.approx(arl0, rel=1e-6)


def test_without_allowance_the_threshold_is_a_random_walks() -> None:
    assert budget.page_hinkley_threshold(1e6, 0.0) == pytest.approx(1000 - 1.166)
    assert budget.page_hinkley_threshold(1e6, 1e-9) == pytest.approx(1000 - 1.166, rel=1e-4)


def test_adwin_delta_is_its_clock_over_the_arl0() -> None:
    assert budget.adwin_delta(3.2e7, 32) == pytest.approx(1e-6)
    assert budget.adwin_delta(10.0, 32) == 0.5
    with pytest.raises(ValueError, match="clock"):
        budget.adwin_delta(1e5, 0)
    with pytest.raises(ValueError, match="arl0"):
        budget.page_hinkley_threshold(1.0, 0.25)


def test_a_default_value_stream_runs_with_the_budgets_parameters() -> None:
    assert DEFAULTS.policy("m", StreamKind.VALUE, "x").source_arl0 == ARL0
    params = built(DEFAULTS, StreamKind.VALUE)
    delta = detectors.SCALE_FREE_DEFAULTS["page_hinkley"]["delta"]
    assert params["page_hinkley"]["threshold"] == budget.page_hinkley_threshold(2 * ARL0, delta)
    assert params["page_hinkley"]["delta"] == delta
    assert params["adwin"]["delta"] == 32 / ARL0


def test_the_threshold_grows_with_the_log_of_the_streams() -> None:
    small = built(EngineSettings(streams_per_model=1), StreamKind.VALUE)["page_hinkley"]
    large = built(EngineSettings(streams_per_model=150), StreamKind.VALUE)["page_hinkley"]
    fewer = built(EngineSettings(false_alarms_per_100k=150), StreamKind.VALUE)["page_hinkley"]
    assert small == fewer
    growth = float(str(large["threshold"])) - float(str(small["threshold"]))
    assert growth == pytest.approx(math.log(150) / (2 * 0.35), abs=0.01)


def test_0_1_rate_streams_get_adwin_delta_from_the_budget() -> None:
    rate = built(DEFAULTS, StreamKind.MISSING_RATE)["adwin"]
    assert rate["delta"] == 32 * 1 / (100_000 * 150 * (1 + spread.SOURCES))


def test_binary_detectors_with_a_bound_get_their_confidence_from_the_budget() -> None:
    settings = EngineSettings(
        detectors={"correctness": [{"type": "hddm_a"}, {"type": "fhddm"}, {"type": "ddm"}]}
    )
    params = built(settings, StreamKind.CORRECTNESS)
    arl0 = 100_000 * 150 * (3 + spread.SOURCES)
    assert params["hddm_a"]["drift_confidence"] == 1 / arl0
    assert params["fhddm"]["confidence_level"] == 1 / arl0
    assert params["ddm"] == detectors.params_of(binary_ddm())


def binary_ddm() -> DriftDetector:
    return detectors.build(DetectorSpec(type="ddm"))


def test_explicit_parameters_win_over_the_budget() -> None:
    settings = EngineSettings(
        overrides=[
            Override(
                stream="x",
                detectors=(
                    DetectorSpec(type="page_hinkley", params={"threshold": 50.0}),
                    DetectorSpec(type="adwin", params={"delta": 0.002, "clock": 16}),
                ),
            )
        ]
    )
    params = built(settings, StreamKind.VALUE)
    assert params["page_hinkley"]["threshold"] == 50.0
    assert params["adwin"]["delta"] == 0.002


def test_a_set_delta_or_clock_moves_the_derived_parameter() -> None:
    settings = EngineSettings(
        overrides=[
            Override(
                detectors=(
                    DetectorSpec(type="page_hinkley", params={"delta": 0.5, "mode": "up"}),
                    DetectorSpec(type="adwin", params={"clock": 16}),
                )
            )
        ]
    )
    params = built(settings, StreamKind.VALUE)
    assert params["page_hinkley"]["threshold"] == budget.page_hinkley_threshold(ARL0, 0.5)
    assert params["adwin"]["delta"] == 16 / ARL0


def test_without_standardization_detectors_keep_rivers_defaults() -> None:
    raw = EngineSettings(standardize=False)
    assert raw.policy("m", StreamKind.VALUE, "x").source_arl0 is None
    params = built(raw, StreamKind.VALUE)
    assert params["page_hinkley"] == detectors.params_of(drift.PageHinkley())
    assert params["adwin"] == detectors.params_of(drift.ADWIN())


def false_alarm_gaps(det: DriftDetector, events: int, seed: int) -> float:
    """Mean events between detections on N(0, 1) noise."""
    rng = random.Random(seed)
    alarms = 0
    for _ in range(events):
        det.update(rng.gauss(0.0, 1.0))
        alarms += det.drift_detected
    return events / max(alarms, 1)


def test_calibration_page_hinkley_meets_its_arl0_on_gaussian_noise() -> None:
    """The formula is checked where alarms are frequent enough to count: each side at 2,000
    events, so the two-sided test at 1,000. The default budget's ARL0 (6e7) is checked on
    whole models by bench/quality_model.py."""
    spec = DetectorSpec(
        type="page_hinkley",
        params={"delta": 0.35, "threshold": budget.page_hinkley_threshold(2_000, 0.35)},
    )
    measured = false_alarm_gaps(detectors.build(detectors.effective_spec(spec, True)), 200_000, 1)
    assert 1_000 <= measured <= 1_000 * 1.6


def test_calibration_adwin_stays_within_its_budget_on_gaussian_noise() -> None:
    det = detectors.build(DetectorSpec(type="adwin", params={"delta": budget.adwin_delta(2e3, 32)}))
    assert false_alarm_gaps(det, 100_000, 2) >= 2_000
