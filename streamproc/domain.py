"""The vocabulary every layer shares: what a stream measures, and the numeric bound of input.

It sits at the bottom of the package with :mod:`streamproc.errors` and imports nothing of
ours, so settings, detectors, alerts and the CLI can all name a :class:`StreamKind`
without depending on one another.
"""

from __future__ import annotations

from enum import StrEnum

INT32_MAX = 2**31 - 1
"""Ceiling of every number setting without its own: counts, sizes and partitions reach
Kafka and its clients as int32, and 2**31 seconds (68 years) is beyond any interval."""


def check_magnitude(value: object) -> None:
    """Refuse a number no consumer of settings can take (bools are ints, and always fit)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > INT32_MAX:
        raise ValueError(f"must be between -{INT32_MAX} and {INT32_MAX} (2**31 - 1)")


class StreamKind(StrEnum):
    """What a stream measures; part of every stream's identity and alert."""

    VALUE = "value"
    """A numeric (or boolean as 0/1) feature's values."""
    PREDICTION = "prediction"
    """The model's numeric prediction, from feature events."""
    MISSING_RATE = "missing_rate"
    """1 when a feature is missing (null, NaN, inf, or absent after being seen), else 0."""
    ERROR = "error"
    """Per outcome: 0/1 misclassification, absolute error, or the given error/loss."""
    CORRECTNESS = "correctness"
    """Per outcome with labels or ``correct``: 1 when the prediction was right, else 0."""
    ARRIVAL = "arrival"
    """A model's feature events arriving at all: silence and ``recovered`` (docs/arrival.md)."""
    RATE = "rate"
    """A model's feature events per event-time bucket."""
    FRESHNESS = "freshness"
    """Kafka record time minus event time of a model's feature events that carry a ``ts``."""
    CATEGORY = "category"
    """The category distribution of a string feature or string prediction (class label)."""
    MODEL = "model"
    """A model's rollup: several of its streams drifted together (docs/alerts.md)."""
