"""A false-alarm budget per model, turned into per-stream thresholds.

A model with ``m`` streams, each raising false alarms once per ``ARL0_s`` of its events on
average, raises about ``m / ARL0_s`` per model event. To hold the model at ``f`` false alarms
per 100,000 events, each stream gets ``ARL0_s = m * 100,000 / f``, and each of a stream's
``k`` alarm sources (detectors, spread tests) ``k`` times that (a union bound). A CUSUM on
log-likelihood ratios has ``ARL0 >= exp(h)`` (Lorden), so its threshold is ``ln(ARL0)``:
delays grow with ``ln m``, not ``m`` (docs/detectors.md, "False-alarm budget").

The number of streams of a model is known only as its features arrive, and a threshold
must not move under a running detector; the budget uses the declared bound
(``engine.streams_per_model``), which is conservative when a model has fewer streams.
"""

from __future__ import annotations

import math

EVENTS = 100_000
"""The budget is counted per this many events of a model."""


def stream_arl0(false_alarms_per_100k: float, streams: int, sources: int = 1) -> float:
    """Mean events between false alarms each alarm source of a stream must reach."""
    if false_alarms_per_100k <= 0:
        raise ValueError("false_alarms_per_100k must be > 0")
    if streams < 1 or sources < 1:
        raise ValueError("streams and sources must be >= 1")
    return EVENTS * streams * sources / false_alarms_per_100k


def cusum_threshold(arl0: float) -> float:
    """Threshold of a log-likelihood-ratio CUSUM with at least ``arl0`` events between false
    alarms: ``ln(arl0)`` (Lorden 1971; the same rule as category streams)."""
    if arl0 <= 1:
        raise ValueError("arl0 must be > 1")
    return math.log(arl0)


def cusum_delay(arl0: float, kl: float) -> float:
    """The optimum: median delay of the CUSUM that knows the change, ``ln(arl0) / kl``."""
    return math.log(arl0) / kl


SIEGMUND_SHIFT = 1.166
"""Siegmund's correction: a CUSUM on Gaussian increments overshoots its threshold by about
``2 x 0.583`` standard deviations, so the threshold acts as ``h + 1.166``."""


def page_hinkley_threshold(arl0: float, delta: float) -> float:
    """Threshold of a one-sided Page-Hinkley test (a CUSUM with allowance ``delta``) on
    unit-variance values with at least ``arl0`` events between false alarms.

    Siegmund's approximation ``ARL0 = (exp(2 delta h') - 2 delta h' - 1) / (2 delta^2)``,
    ``h' = h + 1.166``, solved for ``h`` (Newton's method on ``y = 2 delta h'``); with
    ``delta = 0`` it is ``h' = sqrt(ARL0)``. A two-sided test is two one-sided tests: give
    each side twice the ARL0.
    """
    if arl0 <= 1:
        raise ValueError("arl0 must be > 1")
    if delta < 0:
        raise ValueError("delta must be >= 0")
    if delta == 0:
        return max(math.sqrt(arl0) - SIEGMUND_SHIFT, 0.0)
    c = 2.0 * delta * delta * arl0
    # Start above the root (e^y - y - 1 >= y^2 / 2, and >= c at the second guess for c >= 1):
    # Newton's method then descends to it monotonically.
    y = math.sqrt(2.0 * c) if c < 1 else math.log1p(c) + math.log1p(math.log1p(c))
    for _ in range(100):
        step = (math.expm1(y) - y - c) / math.expm1(y)
        y -= step
        if step < 1e-12 * y:
            break
    return max(y / (2.0 * delta) - SIEGMUND_SHIFT, 0.0)


def page_hinkley_arl0(threshold: float, delta: float) -> float:
    """Siegmund's ARL0 of a one-sided Page-Hinkley test: the inverse of
    :func:`page_hinkley_threshold`."""
    h = threshold + SIEGMUND_SHIFT
    if delta == 0:
        return h * h
    y = 2.0 * delta * h
    return (math.expm1(y) - y) / (2.0 * delta * delta)


def adwin_delta(arl0: float, clock: int) -> float:
    """ADWIN's ``delta`` for at least ``arl0`` events between false alarms.

    ADWIN looks for a cut once every ``clock`` updates, and each look raises a false alarm
    with probability at most ``delta`` (Bifet and Gavalda 2007, with its own union bound over
    the cut points): ``ARL0 >= clock / delta``. The bound holds for values in [0, 1] and is
    loose for Gaussian ones, so the rate measured is well under the budget.
    """
    if arl0 <= 1:
        raise ValueError("arl0 must be > 1")
    if clock < 1:
        raise ValueError("clock must be >= 1")
    return min(clock / arl0, 0.5)
