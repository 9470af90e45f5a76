"""Golden tests: streamproc builds exactly the River detectors the configuration names."""

from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from river import drift
from river.drift import binary

from streamproc import detectors
from streamproc.detectors import DetectorSpec
from streamproc.errors import ConfigError
from streamproc.settings import load_settings


def values(shift: float = 1.0, n: int = 2000) -> list[float]:
    """Unit Gaussian noise, mean shifted by ``shift`` from index 1000."""
    rng = random.Random(7)
    return [rng.gauss(0.0, 1.0) + (shift if i >= 1000 else 0.0) for i in range(n)]


def bits(before: float, after: float, n: int = 2000) -> list[int]:
    """0/1 events whose rate of 1s changes from ``before`` to ``after`` at index 1000."""
    rng = random.Random(7)
    return [1 if rng.random() < (before if i < 1000 else after) else 0 for i in range(n)]


def detections(det: Any, xs: list[Any]) -> list[int]:
    found = []
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            found.append(i)
    return found


def sequence_for(det_type: str) -> list[Any]:
    if det_type == "fhddm":  # FHDDM reports a falling rate of 1s
        return list(bits(0.3, 0.1))
    if det_type in detectors.BINARY:
        return list(bits(0.1, 0.3))
    if det_type == "kswin":  # about 1 ms per update (a KS test each time): keep it short
        return values(n=1300)
    return values()


# (type, params, River detector built directly, detection indices pinned for River 0.26)
GOLDEN: list[tuple[str, dict[str, Any], Any, list[int]]] = [
    ("adwin", {}, drift.ADWIN, [1055]),
    ("adwin", {"delta": 0.01, "clock": 1}, lambda: drift.ADWIN(delta=0.01, clock=1), [1031]),
    ("page_hinkley", {}, drift.PageHinkley, [1044]),
    (
        "page_hinkley",
        {"mode": "up", "threshold": 20.0},
        lambda: drift.PageHinkley(mode="up", threshold=20.0),
        [193, 419, 552, 1025, 1454, 1642, 1839],
    ),
    ("kswin", {}, lambda: drift.KSWIN(seed=42), [552, 1025, 1205]),
    ("kswin", {"seed": 3, "alpha": 0.001}, lambda: drift.KSWIN(seed=3, alpha=0.001), [1028]),
    ("ddm", {}, binary.DDM, [1136]),
    ("ddm", {"drift_threshold": 2.5}, lambda: binary.DDM(drift_threshold=2.5), [1090, 1951]),
    ("eddm", {}, binary.EDDM, [377, 673, 988]),
    ("eddm", {"alpha": 0.9, "beta": 0.8}, lambda: binary.EDDM(alpha=0.9, beta=0.8), [1083]),
    ("hddm_a", {}, binary.HDDMA, [1073]),
    ("hddm_w", {}, binary.HDDMW, [1089]),
    ("hddm_w", {"two_sided_test": True}, lambda: binary.HDDMW(two_sided_test=True), [1089]),
    ("fhddm", {}, binary.FHDDM, [1056]),
    ("fhddm", {"short_window_size": 20}, lambda: binary.FHDDM(short_window_size=20), [289, 1056]),
]


@pytest.mark.parametrize(("det_type", "params", "direct", "expected"), GOLDEN)
def test_build_detects_exactly_like_river(
    det_type: str, params: dict[str, Any], direct: Any, expected: list[int]
) -> None:
    xs = sequence_for(det_type)
    built = detections(detectors.build(DetectorSpec(type=det_type, params=params)), xs)
    assert built == detections(direct(), xs)
    assert built == expected


def test_every_type_has_a_golden_case() -> None:
    assert {case[0] for case in GOLDEN} == set(detectors.CLASSES)


def test_classes_and_binary_sets() -> None:
    assert detectors.CLASSES["hddm_a"] is binary.HDDMA
    assert detectors.CLASSES["hddm_w"] is binary.HDDMW
    assert {"ddm", "eddm", "hddm_a", "hddm_w", "fhddm"} == detectors.BINARY
    assert set(detectors.CLASSES) > detectors.BINARY


@pytest.mark.parametrize("det_type", sorted(detectors.CLASSES))
def test_params_table_matches_river_signature(det_type: str) -> None:
    """If River adds or renames a parameter, this table (and the docs) must follow."""
    river_params = set(inspect.signature(detectors.CLASSES[det_type]).parameters)
    assert set(detectors.PARAMS[det_type]) == river_params - {"window"}


@pytest.mark.parametrize("det_type", sorted(detectors.CLASSES))
def test_update_then_drift_detected_is_the_api(det_type: str) -> None:
    det = detectors.build(DetectorSpec(type=det_type))
    assert det.update(1) is None
    assert det.drift_detected is False
    assert isinstance(type(det).drift_detected, property)


def test_drift_flag_holds_until_next_update_then_resets() -> None:
    det = detectors.build(DetectorSpec(type="page_hinkley"))
    xs = values()
    first = detections(detectors.build(DetectorSpec(type="page_hinkley")), xs)[0]
    for x in xs[: first + 1]:
        det.update(x)
    assert det.drift_detected and det.drift_detected
    det.update(xs[first + 1])
    assert not det.drift_detected
    assert det._x_mean.n == 1  # River resets on the update after a detection


def test_kswin_gets_a_fixed_seed_when_none_is_given() -> None:
    spec = DetectorSpec(type="kswin")
    assert detectors.build(spec).seed == detectors.KSWIN_DEFAULT_SEED == 42
    xs = values(n=1300)
    assert detections(detectors.build(spec), xs) == detections(detectors.build(spec), xs)


# --- check_spec -------------------------------------------------------------------------


def error_of(det_type: str, **params: Any) -> str:
    with pytest.raises(ValidationError) as info:
        DetectorSpec(type=det_type, params=params)  # type: ignore[arg-type]
    return str(info.value.errors()[0]["msg"])


def test_unknown_parameter_lists_the_known_ones() -> None:
    assert error_of("page_hinkley", delt=0.1) == (
        "Value error, page_hinkley: unknown parameter 'delt' "
        "(known: alpha, delta, min_instances, mode, threshold)"
    )


def test_rivers_own_error_is_prefixed_with_the_detector() -> None:
    assert error_of("page_hinkley", mode="sideways") == (
        "Value error, page_hinkley: Invalid 'mode'. Valid values are: ['up', 'down', 'both']"
    )
    assert "eddm: 'alpha' must be greater or equal to 'beta'" in error_of("eddm", alpha=0.5)


@pytest.mark.parametrize(
    ("det_type", "params", "message"),
    [
        ("page_hinkley", {"delta": "abc"}, "parameter 'delta' must be a number, got str 'abc'"),
        ("page_hinkley", {"threshold": True}, "parameter 'threshold' must be a number"),
        ("page_hinkley", {"threshold": float("nan")}, "parameter 'threshold' must be a number"),
        ("page_hinkley", {"threshold": 0}, "parameter 'threshold' must be a number > 0, got 0"),
        ("page_hinkley", {"min_instances": 1.5}, "parameter 'min_instances' must be an integer"),
        ("page_hinkley", {"mode": 1}, "parameter 'mode' must be a string"),
        ("adwin", {"clock": 0}, "parameter 'clock' must be an integer from 1 to 2147483647"),
        ("adwin", {"max_buckets": 0}, "parameter 'max_buckets' must be an integer from 1 to 1024"),
        ("adwin", {"delta": 1.5}, "parameter 'delta' must be a number between 0 and 1"),
        ("kswin", {"seed": None}, "parameter 'seed' must be an integer, got NoneType None"),
        ("kswin", {"window": "abc"}, "unknown parameter 'window'"),
        ("kswin", {"stat_size": 60}, "parameter 'stat_size' must be at most half of window_size"),
        ("hddm_a", {"drift_confidence": 0}, "parameter 'drift_confidence' must be a number"),
        ("hddm_w", {"two_sided_test": 1}, "parameter 'two_sided_test' must be true or false"),
        ("fhddm", {"short_window_size": 200}, "'short_window_size' must be at most sliding"),
        ("fhddm", {"confidence_level": 2}, "parameter 'confidence_level' must be a number"),
        ("ddm", {"warm_start": -1}, "parameter 'warm_start' must be an integer >= 0, got -1"),
    ],
)
def test_bad_values_name_the_parameter(det_type: str, params: dict[str, Any], message: str) -> None:
    assert f"{det_type}: " in error_of(det_type, **params)
    assert message in error_of(det_type, **params)


def test_int_given_for_a_float_parameter_is_accepted_as_float() -> None:
    spec = DetectorSpec(type="page_hinkley", params={"threshold": 25})
    assert detectors.build(spec).threshold == 25.0
    assert isinstance(detectors.build(spec).threshold, float)


def test_load_settings_names_the_key_of_a_bad_detector(tmp_path: Path) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "engine:\n"
        "  detectors:\n"
        "    value:\n"
        "      - type: adwin\n"
        "      - type: page_hinkley\n"
        "        params: {delt: 0.1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    message = str(info.value)
    assert "engine.detectors.value.1" in message
    assert "page_hinkley: unknown parameter 'delt'" in message


def test_load_settings_names_the_params_key_of_a_mistyped_value(tmp_path: Path) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text(
        "engine:\n  detectors:\n    value:\n      - type: adwin\n"
        "      - type: page_hinkley\n        params: {delta: [1, 2]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert "engine.detectors.value.1.params.delta" in str(info.value)


# --- describe ---------------------------------------------------------------------------


def test_describe_gives_full_effective_parameters() -> None:
    described = detectors.describe(DetectorSpec(type="page_hinkley", params={"threshold": 10}))
    assert described == {
        "type": "page_hinkley",
        "params": {
            "min_instances": 30,
            "delta": 0.005,
            "threshold": 10.0,
            "alpha": 0.9999,
            "mode": "both",
        },
    }


@pytest.mark.parametrize("det_type", sorted(detectors.CLASSES))
def test_describe_is_json_able_and_complete(det_type: str) -> None:
    described = detectors.describe(DetectorSpec(type=det_type))
    assert orjson.loads(orjson.dumps(described)) == described
    assert set(described["params"]) == set(detectors.PARAMS[det_type])  # type: ignore[arg-type]


def test_describe_shows_the_kswin_default_seed() -> None:
    described = detectors.describe(DetectorSpec(type="kswin"))
    assert described["params"] == {"alpha": 0.005, "window_size": 100, "stat_size": 30, "seed": 42}


# --- effective_spec ---------------------------------------------------------------------


def test_standardized_page_hinkley_gets_scale_free_defaults() -> None:
    spec = detectors.effective_spec(DetectorSpec(type="page_hinkley"), standardized=True)
    assert spec.params == detectors.SCALE_FREE_DEFAULTS["page_hinkley"]
    assert spec.params["delta"] == 0.35 and spec.params["threshold"] == 50.0


def test_user_parameters_win_over_scale_free_defaults() -> None:
    user = DetectorSpec(type="page_hinkley", params={"threshold": 40, "mode": "up"})
    spec = detectors.effective_spec(user, standardized=True)
    assert spec.params == {"delta": 0.35, "threshold": 40, "alpha": 1.0, "mode": "up"}


def test_raw_mode_keeps_rivers_defaults_exactly() -> None:
    spec = DetectorSpec(type="page_hinkley")
    assert detectors.effective_spec(spec, standardized=False) is spec
    assert detectors.describe(spec)["params"] == drift.PageHinkley()._get_params()


def test_standardized_adwin_gets_a_smaller_delta() -> None:
    spec = detectors.effective_spec(DetectorSpec(type="adwin"), standardized=True)
    assert spec.params == {"delta": 1e-6}
    assert detectors.effective_spec(DetectorSpec(type="adwin"), standardized=False).params == {}


@pytest.mark.parametrize("det_type", sorted(set(detectors.CLASSES) - {"page_hinkley", "adwin"}))
def test_other_detectors_are_already_scale_free(det_type: str) -> None:
    spec = DetectorSpec(type=det_type)
    assert detectors.effective_spec(spec, standardized=True) == spec


def page_hinkley_hits(spec: DetectorSpec, xs: list[float]) -> list[int]:
    return detections(detectors.build(detectors.effective_spec(spec, standardized=True)), xs)


def test_scale_free_page_hinkley_is_quiet_on_noise_and_finds_half_a_sigma() -> None:
    """With the default budget's threshold (23.4, streamproc.budget). Page-Hinkley's mean
    includes the values after the shift: with delta 0.35 it needs about 830 values of
    history to find a 0.5 sigma shift at all (0.0283 x history must exceed the threshold)."""
    spec = DetectorSpec(type="page_hinkley", params={"threshold": 23.4})
    rng = random.Random(11)
    assert page_hinkley_hits(spec, [rng.gauss(0.0, 1.0) for _ in range(20_000)]) == []
    hits = page_hinkley_hits(spec, values(shift=0.5))
    assert hits and 1000 <= hits[0] <= 1300


def test_rivers_raw_page_hinkley_defaults_are_not_scale_free() -> None:
    """The reason for SCALE_FREE_DEFAULTS: River's defaults are in raw units."""
    rng = random.Random(11)
    noise = [rng.gauss(0.0, 1.0) for _ in range(20_000)]
    assert len(detections(drift.PageHinkley(), noise)) >= 2
    huge = [1e6 * x for x in noise[:100]]
    assert detections(drift.PageHinkley(), huge)[0] < 100


# --- alarm_direction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("det_type", "params", "direction"),
    [
        ("ddm", {}, "rise"),
        ("eddm", {}, "rise"),
        ("hddm_a", {}, "rise"),
        ("hddm_w", {"two_sided_test": True}, "both"),
        ("fhddm", {}, "fall"),
        ("adwin", {}, "both"),
        ("page_hinkley", {"mode": "up"}, "rise"),
        ("page_hinkley", {"mode": "down"}, "fall"),
    ],
)
def test_alarm_direction(det_type: str, params: dict[str, Any], direction: str) -> None:
    spec = DetectorSpec(type=det_type, params=params)  # type: ignore[arg-type]
    assert detectors.alarm_direction(spec) == direction


@pytest.mark.parametrize("det_type", ["ddm", "hddm_a", "hddm_w"])
def test_one_sided_binary_detectors_ignore_a_falling_rate(det_type: str) -> None:
    det = detectors.build(DetectorSpec(type=det_type))
    assert [i for i in detections(det, bits(0.3, 0.1)) if i >= 1000] == []


def test_fhddm_ignores_a_rising_rate() -> None:
    det = detectors.build(DetectorSpec(type="fhddm"))
    assert detections(det, bits(0.1, 0.3)) == []
