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
