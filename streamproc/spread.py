"""Spread changes of a standardized stream: two CUSUMs on squared successive differences.

A pure change of spread does not move the mean that ADWIN and Page-Hinkley watch. For a
unit-variance Gaussian ``d``, the log-likelihood ratio of variance ``r`` against 1 is
``(d^2 (1 - 1/r) - ln r) / 2``; Page's CUSUM on it is the optimal test for that change
(Lorden). Two run side by side: one for doubling (``r = 2``), one for halving (``r = 1/2``);
either also reacts to larger changes of the same sign, and the up test to tails growing
heavier.

``d`` is the difference of successive standardized values over sqrt(2), not the value
itself: its variance is the stream's, but a mean shift moves it on one event only (squares
of values would call every mean shift a spread change), and a slow cycle hardly at all. The
price is some efficiency (successive ``d`` are correlated), which the budget absorbs.
``d^2`` is capped (``CAP``) so one wild value moves a statistic by a bounded step. The
threshold comes from the false-alarm budget (:mod:`streamproc.budget`).
"""

from __future__ import annotations

import math
from typing import Final

UP_RATIO: Final = 2.0
DOWN_RATIO: Final = 0.5
CAP: Final = 16.0
"""``z^2`` above this counts as this: the clip of :data:`streamproc.streams.CLIP`, squared."""
UP_GAIN: Final = 0.5 * (1.0 - 1.0 / UP_RATIO)
UP_COST: Final = 0.5 * math.log(UP_RATIO)
DOWN_GAIN: Final = 0.5 * (1.0 - 1.0 / DOWN_RATIO)
DOWN_COST: Final = 0.5 * math.log(DOWN_RATIO)
KL_UP: Final = 0.5 * (UP_RATIO - 1.0 - math.log(UP_RATIO))
"""Information per event of a doubling of variance: the CUSUM bound is ln(ARL0) / KL_UP."""
KL_DOWN: Final = 0.5 * (DOWN_RATIO - 1.0 - math.log(DOWN_RATIO))
BATCH: Final = 16
"""The CUSUMs step once per this many events, on the batch's mean ratio: per event, the hot
path only adds a capped square (the per-event CUSUM cost 30% of the engine's time). A batch
CUSUM is a CUSUM on batch log-likelihood ratios: the same ARL0 bound, up to BATCH - 1 events
later."""
BATCH_MASK: Final = BATCH - 1
LEARN_BATCHES: Final = 32
"""Batches (512 events) averaged into the reference spread before the tests run (after
warm-up and after each spread alert): the warm-up's 100 values leave the variance wrong by
~14%, which would make the tests fire on a stationary stream."""
SETTLE_BATCHES: Final = 8
"""The tails are measured on the learning batches after these: before, the reference is
still far off and its error would count as dispersion."""
RECENT_ALPHA: Final = 2.0 / (4 + 1)
"""Batch means in the spread reported as after (span 4 batches, ~64 events)."""
ADAPT: Final = BATCH / 5000
"""Afterwards the reference follows the stream slowly (span 5,000), frozen while either test
is past half its threshold, so that a change is detected rather than absorbed."""
MIN_REF: Final = 1e-12
MAX_REF: Final = 1e13
"""Bounds of the reference (in units of the warm-up variance): a constant stream would
otherwise drive it to 0, and relearning after each alert could multiply it by CAP."""
GAUSSIAN_VARIANCE: Final = 3.0 / BATCH
"""Variance of a batch mean of ``q`` on a Gaussian stream: each ``q`` is a chi-square with 1
degree of freedom (variance 2), neighbours correlated 1/4 (they share a value)."""
SOURCES: Final = 2
"""Alarm sources this module adds to a stream (for the budget's union bound)."""


def tail_factor(mean_square: float) -> float:
    """How much wider the threshold of a stream must be than a Gaussian stream's, from the
    mean square of its batch means of capped ratios ``q`` (mean 1) while learning.

    The CUSUM's false-alarm rate depends on the dispersion of its increments: ``ln ARL0`` is
    about ``2 |drift| h / variance`` (Siegmund), so a stream whose ``q`` vary ``v`` times as
    much as a Gaussian's needs ``h`` ``v`` times larger for the same budget.
    Student t (3 dof) and lognormal streams otherwise raise 25-60 false alarms per 100,000
    events; the price is a slower reaction on such streams only.
    """
    variance = mean_square - 1.0
    return max(1.0, variance / GAUSSIAN_VARIANCE)


def direction(up: float, down: float, threshold: float) -> str | None:
    """``up`` or ``down`` once a statistic crosses the threshold, else None."""
    if up > threshold:
        return "up"
    if down > threshold:
        return "down"
    return None
