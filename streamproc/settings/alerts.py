"""Settings of the alert lifecycle and of model rollups (``engine.lifecycle``, ``engine.rollup``).

Kept apart from :mod:`streamproc.settings` so that the engine's episode logic
(:mod:`streamproc.lifecycle`, :mod:`streamproc.rollup`) and its settings travel together.
Every number has a ceiling, as everywhere in the settings.
"""

from __future__ import annotations

import math

from pydantic import Field

from streamproc.domain import INT32_MAX as _LIMIT
from streamproc.settings.frozen import Frozen as _Section


class LifecycleSettings(_Section):
    """When an alert is over. See docs/alerts.md, "Lifecycle"."""

    enabled: bool = Field(
        default=True,
        description="Publish a resolved message (same alert_id) when an alert is over.",
    )
    stable_events: int | None = Field(
        default=None,
        ge=1,
        le=_LIMIT,
        description="A drift alert resolves once its stream has seen this many events since "
        "its last alert without alerting again; default twice the stream's cooldown_events "
        "(at least 1). Rate and freshness alerts count the model's feature events.",
    )

    def span(self, cooldown_events: int) -> int:
        """The stable span of a stream with this cooldown."""
        if self.stable_events is not None:
            return self.stable_events
        return max(1, 2 * cooldown_events)


class RollupSettings(_Section):
    """When several streams of one model drifting together raise one ``model`` alert."""

    enabled: bool = Field(default=True, description="Raise model rollup alerts.")
    min_streams: int = Field(
        default=3,
        ge=2,
        le=_LIMIT,
        description="Streams of one model in drift whose alerts fall within window_events "
        "of each other that raise a model alert.",
    )
    min_share: float | None = Field(
        default=0.3,
        gt=0,
        le=1,
        description="...or this share of the model's streams (at least two), whichever is "
        "fewer; null: min_streams alone.",
    )
    window_events: int = Field(
        default=500,
        ge=1,
        le=_LIMIT,
        description="The window, in the model's feature events, in which member alerts must fall.",
    )

    def needed(self, streams: int) -> int:
        """Members that make a rollup for a model with ``streams`` streams."""
        if self.min_share is None:
            return self.min_streams
        share = math.ceil(self.min_share * streams)
        return max(2, min(self.min_streams, share))
