"""River drift detectors: which ones exist, how they are built from config, and their parameters.

Every detector is used the same way: ``det.update(x)`` then read ``det.drift_detected``
(a property; ``update`` returns ``None``). A detection is visible until the next
``update``, which first resets the detector. Binary detectors (:data:`BINARY`) expect
0/1 input and must be fed raw, never standardized values. See docs/detectors.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from river import drift
from river.drift import binary

from streamproc.domain import check_magnitude


class DriftDetector(Protocol):
    """What streamproc uses of a River drift detector (``river.base.DriftDetector`` and
    ``BinaryDriftDetector``): River ships no type hints, so this names the contract."""

    def update(self, x: float) -> None:
        """Feed one value; first resets the detector if the last value was a detection."""

    @property
    def drift_detected(self) -> bool:
        """Whether the last :meth:`update` detected a change."""


CLASSES: Final[Mapping[str, type[Any]]] = {
    "adwin": drift.ADWIN,
    "page_hinkley": drift.PageHinkley,
    "kswin": drift.KSWIN,
    "ddm": binary.DDM,
    "eddm": binary.EDDM,
    "hddm_a": binary.HDDMA,
    "hddm_w": binary.HDDMW,
    "fhddm": binary.FHDDM,
}
"""Config name -> River class. The only classes streamproc ever instantiates."""

_NAMES: Final[Mapping[type[Any], str]] = {cls: name for name, cls in CLASSES.items()}

BINARY: Final[frozenset[str]] = frozenset({"ddm", "eddm", "hddm_a", "hddm_w", "fhddm"})
"""Detectors for 0/1 streams; they are never fed standardized values."""

Direction = Literal["rise", "fall", "both"]

KSWIN_DEFAULT_SEED: Final = 42
"""KSWIN samples its reference window at random; a fixed seed keeps replays identical."""

SCALE_FREE_DEFAULTS: Final[Mapping[str, Mapping[str, float]]] = {
    # Values are in standard deviations of the stream. delta is between half of 0.5 sigma
    # (optimal for that shift) and half of 1 sigma: 0.35 minimizes the larger ratio of
    # median delay to the optimum over 0.5 and 1 sigma shifts (bench/quality.py: 0.25 gave
    # 1.2x and 1.6x, 0.35 1.4x and 1.4x). The engine derives the threshold from the
    # false-alarm budget (streamproc.budget); 50 stands only when no budget is given.
    # alpha = 1 (no forgetting) makes River's statistic the textbook CUSUM: with River's
    # alpha = 0.9999 the forgotten sum wanders by ~70 sigma and false alarms come about
    # every 10,000 events instead of about one per million.
    "page_hinkley": {"delta": 0.35, "threshold": 50.0, "alpha": 1.0},
    # ADWIN's bound assumes values in [0, 1]; standardized heavy-tailed values (Student t,
    # lognormal) break it: 2-3 false alarms per 100,000 events at River's delta = 0.002,
    # under 1 at 1e-6, for 0.5 sigma shifts found after ~200 events instead of ~125.
    "adwin": {"delta": 1e-6},
}
"""Defaults replacing River's raw-unit ones when the engine feeds standardized values."""

_INT64 = 2**63
_INT32 = 2**31

ParamKind = Literal["int", "float", "bool", "str", "int_or_none"]


@dataclass(frozen=True)
class ParamCheck:
    """How one constructor argument is checked: its kind, then an optional range rule."""

    kind: ParamKind
    rule: Callable[[Any], bool] | None = None
    requirement: str = ""


def _int(low: int, high: int = _INT64 - 1) -> ParamCheck:
    text = f"an integer >= {low}" if high == _INT64 - 1 else f"an integer from {low} to {high}"
    return ParamCheck("int", lambda v: low <= v <= high, text)


_OPEN_UNIT = ParamCheck("float", lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)")
_UNIT_HALF_OPEN = ParamCheck("float", lambda v: 0 < v <= 1, "a number in (0, 1]")
_POSITIVE = ParamCheck("float", lambda v: v > 0, "a number > 0")
_NON_NEGATIVE = ParamCheck("float", lambda v: v >= 0, "a number >= 0")
_BOOL = ParamCheck("bool")

PARAMS: Final[Mapping[str, Mapping[str, ParamCheck]]] = {
    "adwin": {
        "delta": _OPEN_UNIT,
        "clock": _int(1, _INT32 - 1),  # 0 makes River's Rust core panic (modulo by zero)
        "max_buckets": _int(1, 1024),  # 0 panics on the first update; Rust preallocates
        "min_window_length": _int(1, _INT32 - 1),
        "grace_period": _int(0, _INT32 - 1),
    },
    "page_hinkley": {
        "min_instances": _int(0),
        "delta": _NON_NEGATIVE,
        "threshold": _POSITIVE,
        "alpha": _UNIT_HALF_OPEN,
        "mode": ParamCheck("str"),  # River checks the value and names the valid ones
    },
    "kswin": {
        "alpha": _OPEN_UNIT,
        "window_size": _int(2),
        "stat_size": _int(1),
        "seed": _int(0),
    },
    "ddm": {"warm_start": _int(0), "warning_threshold": _POSITIVE, "drift_threshold": _POSITIVE},
    "eddm": {"warm_start": _int(0), "alpha": _UNIT_HALF_OPEN, "beta": _UNIT_HALF_OPEN},
    "hddm_a": {
        "drift_confidence": _OPEN_UNIT,
        "warning_confidence": _OPEN_UNIT,
        "two_sided_test": _BOOL,
    },
    "hddm_w": {
        "drift_confidence": _OPEN_UNIT,
        "warning_confidence": _OPEN_UNIT,
        "lambda_val": _UNIT_HALF_OPEN,
        "two_sided_test": _BOOL,
    },
    "fhddm": {
        "sliding_window_size": _int(1),
        "confidence_level": _OPEN_UNIT,
        "short_window_size": ParamCheck(
            "int_or_none", lambda v: v is None or 1 <= v < _INT64, "an integer >= 1 or null"
        ),
    },
}
"""The configurable constructor arguments of each detector, with the checks River lacks.

KSWIN's ``window`` (warm-start data) is deliberately not configurable.
"""

_FIXED_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "kswin": {"seed": KSWIN_DEFAULT_SEED},
}

_KIND_NAMES: Final[Mapping[ParamKind, str]] = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "int_or_none": "an integer or null",
}


DetectorType = Literal["adwin", "page_hinkley", "kswin", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm"]


class DetectorSpec(BaseModel):
    """One River detector to run on a stream (an entry of the ``engine.detectors`` settings).

    It lives with the detectors, not the settings, so that checking it needs nothing above
    this module: settings build on it, it does not build on settings.
    """

    # check_spec refuses nan and inf itself, naming the detector and the parameter.
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=True
    )

    type: DetectorType = Field(description="River detector: adwin, page_hinkley, kswin, ddm, ...")
    params: dict[str, float | int | str | bool | None] = Field(
        default_factory=dict,
        description="Constructor arguments of the River detector; unknown ones are an error.",
    )

    @field_validator("params")
    @classmethod
    def _check_params(
        cls, params: dict[str, float | int | str | bool | None], info: ValidationInfo
    ) -> dict[str, float | int | str | bool | None]:
        """Checked here (not after the model) so an error's location ends in ``.params``."""
        for key, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                continue  # check_spec's message on these says more
            try:
                check_magnitude(value)
            except ValueError as exc:
                raise ValueError(f"parameter {key!r} {exc}") from None
        if "type" in info.data:
            check_spec(cls.model_construct(type=info.data["type"], params=params))
        return params


def build(spec: DetectorSpec) -> DriftDetector:
    """A fresh River detector for ``spec`` (already checked when the spec was created).

    >>> from streamproc.detectors import DetectorSpec, build, params_of
    >>> det = build(DetectorSpec(type="page_hinkley", params={"threshold": 5.0}))
    >>> params_of(det)
    {'min_instances': 30, 'delta': 0.005, 'threshold': 5.0, 'alpha': 0.9999, 'mode': 'both'}
    >>> for i, x in enumerate([0.0] * 40 + [3.0] * 10):
    ...     det.update(x)
    ...     if det.drift_detected:
    ...         print(f"Change detected at index {i}")
    Change detected at index 41
    """
    detector: DriftDetector = CLASSES[spec.type](**_kwargs(spec.type, spec.params))
    return detector


def describe(spec: DetectorSpec) -> dict[str, object]:
    """Type and full effective parameters (River defaults included), JSON-able, for alerts."""
    return {"type": spec.type, "params": params_of(build(spec))}


def params_of(det: DriftDetector) -> dict[str, object]:
    """The configurable parameters a detector was built with, defaults included.

    River keeps every constructor argument as a same-named attribute; reading them directly
    is ~50x cheaper than River's signature-inspecting ``_get_params()``, which also
    includes KSWIN's ``window`` data. Use it to compare configurations, too.
    """
    return {key: getattr(det, key) for key in PARAMS[name_of(det)]}


def name_of(det: DriftDetector) -> str:
    """The config name of a detector's class; KeyError for classes not in CLASSES (exactly)."""
    return _NAMES[type(det)]


def alarm_direction(spec: DetectorSpec) -> Direction:
    """Which change of the input's mean (for binary streams: rate of 1s) the detector reports.

    DDM, EDDM and one-sided HDDM alarm when 1s become more frequent (feed them 1 = error);
    FHDDM alarms when they become rarer (feed it 1 = correct), whatever River's docstring
    says. Page-Hinkley follows its ``mode``; ADWIN and KSWIN report both directions.
    """
    mode = spec.params.get("mode")
    if spec.type == "fhddm" or (spec.type == "page_hinkley" and mode == "down"):
        return "fall"
    if spec.type == "page_hinkley" and mode == "up":
        return "rise"
    if spec.type in ("hddm_a", "hddm_w") and spec.params.get("two_sided_test") is True:
        return "both"
    return "rise" if spec.type in BINARY else "both"


def effective_spec(spec: DetectorSpec, standardized: bool) -> DetectorSpec:
    """``spec`` with scale-free defaults for unset parameters when inputs are standardized.

    River's defaults for Page-Hinkley are in raw data units, so they are meaningless on
    standardized values; raw mode (``standardized=False``) keeps River's defaults exactly.
    """
    defaults = SCALE_FREE_DEFAULTS.get(spec.type)
    if not standardized or not defaults:
        return spec
    return type(spec)(type=spec.type, params={**defaults, **spec.params})


def check_spec(spec: DetectorSpec) -> None:
    """Raise ValueError naming the parameter when ``spec`` would build a broken detector.

    River validates few arguments, and several bad ones only fail on the first update (or
    panic in its Rust core), so kinds and ranges are checked here; River's own errors are
    passed on prefixed with the detector.
    """
    if spec.type not in CLASSES:
        raise ValueError(f"unknown detector type {spec.type!r} (known: {', '.join(CLASSES)})")
    known = PARAMS[spec.type]
    for key, value in spec.params.items():
        if key not in known:
            raise ValueError(
                f"{spec.type}: unknown parameter {key!r} (known: {', '.join(sorted(known))})"
            )
        _check_param(spec.type, key, value, known[key])
    kwargs = _kwargs(spec.type, spec.params)
    try:
        CLASSES[spec.type](**kwargs)
    except Exception as exc:
        raise ValueError(f"{spec.type}: {exc}") from exc
    _check_combination(spec.type, kwargs)


def _check_param(det_type: str, key: str, value: object, param: ParamCheck) -> None:
    if not _has_kind(value, param.kind):
        raise ValueError(
            f"{det_type}: parameter {key!r} must be {_KIND_NAMES[param.kind]}, "
            f"got {type(value).__name__} {value!r}"
        )
    if param.rule is not None and not param.rule(value):
        raise ValueError(
            f"{det_type}: parameter {key!r} must be {param.requirement}, got {value!r}"
        )


def _has_kind(value: object, kind: ParamKind) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool):  # bool is an int subclass; true is never a number here
        return False
    if kind == "float":
        return isinstance(value, int | float) and math.isfinite(value)
    if kind == "int_or_none" and value is None:
        return True
    return isinstance(value, int) and -_INT64 <= value < _INT64


def _check_combination(det_type: str, kwargs: Mapping[str, Any]) -> None:
    """Constraints between parameters that River does not check but fails on later."""
    if det_type == "kswin" and 2 * kwargs.get("stat_size", 30) > kwargs.get("window_size", 100):
        raise ValueError(
            "kswin: parameter 'stat_size' must be at most half of window_size "
            "(the reference sample is drawn from the older part of the window)"
        )
    if det_type == "fhddm":
        short = kwargs.get("short_window_size")
        if short is not None and short > kwargs.get("sliding_window_size", 100):
            raise ValueError(
                "fhddm: parameter 'short_window_size' must be at most sliding_window_size"
            )


def _kwargs(det_type: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments: fixed defaults, then the user's, float parameters as floats."""
    kinds = PARAMS[det_type]
    merged = {**_FIXED_DEFAULTS.get(det_type, {}), **params}
    return {
        key: float(value) if key in kinds and kinds[key].kind == "float" else value
        for key, value in merged.items()
    }
