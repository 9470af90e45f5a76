"""Settings of the label join (docs/events.md, "Labels"), a section of their own.

Kept apart from :mod:`streamproc.labels` so that :mod:`streamproc.settings` can hold the
section without importing the join (which imports the event contract, which imports the
settings).
"""

from __future__ import annotations

import fnmatch

from pydantic import Field

from streamproc.domain import INT32_MAX as _INT32_MAX
from streamproc.settings.frozen import Frozen


class LabelSettings(Frozen):
    """How labels (outcomes with ``id`` and ``y_true`` only) are joined with predictions."""

    ttl_seconds: float = Field(
        default=604_800.0,
        gt=0,
        le=_INT32_MAX,
        description="Event time a prediction waits for its label, and a label for its "
        "prediction, before it expires (the model's latest ts is the clock).",
    )
    models: str = Field(
        default="",
        max_length=10_000,
        description="Comma-separated glob patterns of models whose predictions are kept for "
        "their labels from their first event ('*': all); other models start keeping them at "
        "their first label, so their first labels find no prediction.",
    )
    silence_factor: float = Field(
        default=10.0,
        ge=1,
        le=1_000_000,
        description="Labels have stopped when the model's clock passes its latest label by this "
        "many times the longest gap seen between two labels (and by silence_min_seconds): "
        "one arrival alert (stream labels), until labels come again. 0 silence_min_seconds "
        "and this at its ceiling effectively turn it off.",
    )
    silence_min_seconds: float = Field(
        default=3_600.0,
        ge=0,
        le=_INT32_MAX,
        description="Least event time without labels before they count as stopped.",
    )
    max_pending_predictions: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most predictions kept per model waiting for a label; the oldest is "
        "dropped (and counted) to make room.",
    )
    max_pending_labels: int = Field(
        default=1_000,
        ge=1,
        le=1_000_000,
        description="Most labels kept per model waiting for their prediction; the oldest is "
        "dropped (and counted) to make room.",
    )

    def joins_from_start(self, model: str) -> bool:
        """Whether ``model``'s predictions are kept before its first label (``models``)."""
        patterns = (p.strip() for p in self.models.split(","))
        return any(p and fnmatch.fnmatchcase(model, p) for p in patterns)
