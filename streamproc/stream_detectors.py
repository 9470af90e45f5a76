"""The River detectors of a stream: built once per spec (cached), with the parameters the
false-alarm budget sets, and which of them :meth:`streamproc.streams.Stream.update` may
run inline.

Recovery builds 100,000s of detectors from a handful of specs, and every event updates
each of them: building is cached, and River's Python wrappers (ADWIN's and Page-Hinkley's
``update``) are replaced by exact inline copies where the class is River's own.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from river import drift
from river import stats as river_stats

from streamproc import budget, detectors
from streamproc.detectors import DetectorSpec, DriftDetector


def default_factory(spec: DetectorSpec, standardized: bool) -> DriftDetector:
    return detectors.build(_effective_spec(_spec_key(spec), standardized))


def budgeted(spec: DetectorSpec, standardized: bool, arl0: float | None) -> DetectorSpec:
    """``spec`` with the parameters the false-alarm budget sets (each alarm source of the
    stream at ``arl0`` events between false alarms), for those not set explicitly.

    Page-Hinkley on standardized values: ``threshold`` from ``delta`` by Siegmund's
    approximation, each side of a two-sided test at twice ``arl0``. ADWIN: ``delta =
    clock / arl0``. HDDM and FHDDM test every update at their confidence: ``1 / arl0``.
    Other detectors (and every one when ``arl0`` is None, standardization off) keep their
    configured or default parameters. See docs/detectors.md, "False-alarm budget".
    """
    if arl0 is None:
        return spec
    return _budgeted(_spec_key(spec), standardized, arl0)


@functools.lru_cache(maxsize=256)
def _budgeted(key: tuple[Any, ...], standardized: bool, arl0: float) -> DetectorSpec:
    kind = key[0]
    params: dict[str, Any] = {k: v for k, _, v in key[1:]}
    derived: dict[str, Any] = {}
    if kind == "page_hinkley" and standardized:
        delta = params.get("delta", detectors.SCALE_FREE_DEFAULTS[kind]["delta"])
        sides = 2 if params.get("mode", "both") == "both" else 1
        derived["threshold"] = budget.page_hinkley_threshold(sides * arl0, float(delta))
    elif kind == "adwin":
        derived["delta"] = budget.adwin_delta(arl0, int(params.get("clock", ADWIN_CLOCK)))
    elif kind in ("hddm_a", "hddm_w"):
        derived["drift_confidence"] = 1.0 / arl0
    elif kind == "fhddm":
        derived["confidence_level"] = 1.0 / arl0
    if not derived.keys() - params.keys():
        return DetectorSpec(type=kind, params=params)
    return DetectorSpec(type=kind, params={**derived, **params})


def _spec_key(spec: DetectorSpec) -> tuple[Any, ...]:
    """Hashable identity of a spec; a value's type keeps 1, 1.0 and true apart."""
    return (spec.type, *((k, type(v), v) for k, v in spec.params.items()))


@functools.lru_cache(maxsize=256)
def _effective_spec(key: tuple[Any, ...], standardized: bool) -> DetectorSpec:
    """:func:`detectors.effective_spec` validates a new spec (a pydantic model) each call; a
    configuration has a handful of specs, and recovery builds 100,000s of detectors."""
    spec = DetectorSpec(type=key[0], params={k: v for k, _, v in key[1:]})
    return detectors.effective_spec(spec, standardized)


_RIVER_ADWIN_UPDATE = drift.ADWIN.update
_RIVER_PH_UPDATE = drift.PageHinkley.update
_RIVER_MEAN_UPDATE = river_stats.Mean.update
PUBLIC, INLINE_ADWIN, INLINE_PH, INLINE_PH_BOTH = 0, 1, 2, 3
"""What :func:`inline_kind` returns: River's public ``update``, or which inline copy."""


def inline_kind(det: DriftDetector) -> int:
    """Which River update :meth:`~streamproc.streams.Stream.update` runs inline, or none
    (:data:`PUBLIC`).

    PageHinkley's Python update (its ``drift_detected`` property twice, ``Mean.update``,
    ``Mean.get``, ``_test_drift``: five calls) is half the cost of a value stream's update.
    The inlined copy repeats River 0.26's arithmetic in the same order, so the sums are
    bit-identical (tests/unit/test_streams_ph.py pins them and the detections); a subclass,
    or a River whose ``update`` differs, takes the public path."""
    if _is_adwin(det):
        return INLINE_ADWIN
    if (
        type(det) is drift.PageHinkley
        and type(det).update is _RIVER_PH_UPDATE
        and type(det._x_mean) is river_stats.Mean
        and type(det._x_mean).update is _RIVER_MEAN_UPDATE
    ):
        return INLINE_PH_BOTH if det.mode == "both" else INLINE_PH
    return PUBLIC


ADWIN_CLOCK: int = inspect.signature(drift.ADWIN).parameters["clock"].default
"""River's default: ADWIN looks for a cut once per this many updates."""


def _is_adwin(det: DriftDetector) -> bool:
    """Whether :meth:`~streamproc.streams.Stream.update` may run River's ``ADWIN.update`` inline.

    ADWIN is on every stream by default, and its Python wrapper (``if drift_detected:
    _reset()``, then the Rust update, then the ``drift_detected`` property) costs twice the
    Rust update itself. The inlined copy is exact for River 0.26 (tests/unit/test_streams.py
    pins it); any other class, or an ADWIN whose ``update`` differs, takes the public path.
    """
    return type(det) is drift.ADWIN and type(det).update is _RIVER_ADWIN_UPDATE


def same_config(a: DriftDetector, b: DriftDetector) -> bool:
    return type(a) is type(b) and detectors.params_of(a) == detectors.params_of(b)
