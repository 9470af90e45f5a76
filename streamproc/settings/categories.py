"""How category streams are watched (``engine.categories``; docs/detectors.md)."""

from __future__ import annotations

import math

from pydantic import Field

from streamproc.settings.frozen import Frozen


class CategorySettings(Frozen):
    """Settings of the category streams of string features and string predictions."""

    enabled: bool = Field(
        default=True, description="Watch the category distribution of string features."
    )
    top_k: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Categories tracked per stream (the most frequent in the reference); the "
        "rest are counted together as __other__. Bounds memory per stream.",
    )
    warmup: int = Field(
        default=1_000,
        ge=100,
        le=10_000_000,
        description="Events that build a reference distribution before detection starts "
        "(again after each alert).",
    )
    min_change_abs: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Smallest change of a category's share that matters, absolute (0.05: "
        "5 percentage points).",
    )
    min_change_rel: float = Field(
        default=0.25,
        ge=0,
        le=10,
        description="Smallest change that matters relative to the category's share; the "
        "larger of the two is what each detector is tuned to.",
    )
    min_share: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="A category is watched for falling or vanishing only when its reference "
        "share is at least this.",
    )
    false_alarm_events: int = Field(
        default=100_000,
        ge=100,
        le=1_000_000_000,
        description="Mean events between false alarms per category stream: sets the detection "
        "threshold (ln of this times the number of detectors of the stream).",
    )
    sweep_events: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Every this many events all categories are checked (a category that "
        "stopped arriving is noticed then) and the reference shares are refreshed.",
    )

    @property
    def threshold(self) -> float:
        """CUSUM threshold: ARL0 >= exp(h) per detector (Lorden), two per tracked slot."""
        return math.log(self.false_alarm_events * 2 * (self.top_k + 1))
