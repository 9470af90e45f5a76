"""The ``arrival`` settings: silence, rate and freshness per model (docs/arrival.md).

Each of the three sections is read as it is by its monitor in :mod:`streamproc.arrival`
(no copy into a parameter record), so the conversions the monitors need per event
(seconds to milliseconds, smoothing weights, log thresholds) are cached properties here.
"""

from __future__ import annotations

import fnmatch
import logging
import math
from functools import cached_property
from typing import Any

from pydantic import BaseModel, Field, model_validator

from streamproc.settings.frozen import Frozen

_log = logging.getLogger(__name__)


class ArrivalOverride(Frozen):
    """Arrival settings for the models whose id matches the glob."""

    model: str = Field(default="*", description="Glob on the model id.")
    silence: bool | None = Field(default=None, description="Watch for silence.")
    silence_seconds: float | None = Field(
        default=None, gt=0, description="A fixed silence window instead of the derived one."
    )
    silence_factor: float | None = Field(default=None, gt=0)
    silence_floor_seconds: float | None = Field(default=None, gt=0)
    silence_ceiling_seconds: float | None = Field(default=None, gt=0)
    rate: bool | None = Field(default=None, description="Watch the event rate.")
    freshness: bool | None = Field(default=None, description="Watch the event-time lag.")

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.model)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class SilenceSettings(Frozen):
    """When a model counts as silent; the monitor reads these fields as they are."""

    enabled: bool = Field(default=True, description="Alert when a model stops sending.")
    factor: float = Field(
        default=4.0, gt=0, description="Silence window: this times the longest recent gap..."
    )
    floor_seconds: float = Field(default=60.0, gt=0, description="...at least this...")
    ceiling_seconds: float = Field(
        default=3600.0, gt=0, description="...and at most this (also the window until known)."
    )
    memory_seconds: float = Field(
        default=10_800.0, gt=0, description="Half-life of the remembered longest gap."
    )
    min_gaps: int = Field(
        default=20, ge=0, description="Gaps to see before the window is derived from them."
    )
    seconds: float | None = Field(
        default=None,
        gt=0,
        description="A fixed window instead of the derived one; per model only "
        "(arrival.overrides: silence_seconds).",
        json_schema_extra={"env": False},
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> SilenceSettings:
        if self.floor_seconds > self.ceiling_seconds:
            raise ValueError("floor_seconds must not exceed ceiling_seconds")
        return self

    @cached_property
    def fixed_ms(self) -> int | None:
        return None if self.seconds is None else _ms(self.seconds)

    @cached_property
    def floor_ms(self) -> int:
        return _ms(self.floor_seconds)

    @cached_property
    def ceiling_ms(self) -> int:
        return _ms(self.ceiling_seconds)

    @cached_property
    def memory_ms(self) -> int:
        return _ms(self.memory_seconds)

    @cached_property
    def described(self) -> dict[str, Any]:
        """The parameters a silence alert carries (made once per model, shared by its alerts)."""
        return {
            "window_seconds": None if self.fixed_ms is None else self.fixed_ms / 1000,
            "floor_seconds": self.floor_ms / 1000,
            "ceiling_seconds": self.ceiling_ms / 1000,
            "factor": self.factor,
            "memory_seconds": self.memory_ms / 1000,
            "min_gaps": self.min_gaps,
        }


class RateSettings(Frozen):
    """The event-rate CUSUM; the monitor reads these fields as they are."""

    enabled: bool = Field(default=True, description="Alert when a model's event rate changes.")
    bucket_seconds: float = Field(
        default=60.0, ge=0.001, description="Events are counted per bucket of event time."
    )
    baseline_buckets: int = Field(
        default=20, ge=2, description="Horizon of the baseline a bucket is compared with."
    )
    threshold: float = Field(
        default=9.0, gt=0, description="CUSUM threshold, in standard deviations."
    )
    slack: float = Field(
        default=1.0, ge=0, description="CUSUM allowance per bucket, in standard deviations."
    )
    min_count: float = Field(
        default=10.0,
        ge=1,
        description="Judge the rate only while at least this many events per bucket are expected.",
    )
    warmup_buckets: int = Field(
        default=10, ge=1, description="Buckets that only build the baseline."
    )
    cooldown_buckets: int = Field(
        default=30, ge=0, description="After a rate alert, buckets before the next can fire."
    )

    @cached_property
    def bucket_ms(self) -> int:
        return _ms(self.bucket_seconds)

    @cached_property
    def alpha(self) -> float:
        """Weight of the newest bucket in the baseline's exponential smoothing."""
        return 2.0 / (self.baseline_buckets + 1)

    def describe(self) -> dict[str, Any]:
        """The parameters a rate alert carries."""
        return {
            "bucket_seconds": self.bucket_ms / 1000,
            "baseline_buckets": self.baseline_buckets,
            "slack": self.slack,
            "threshold": self.threshold,
            "min_count": self.min_count,
            "warmup_buckets": self.warmup_buckets,
            "cooldown_buckets": self.cooldown_buckets,
        }


class FreshnessSettings(Frozen):
    """The event-time lag detector; the monitor reads these fields as they are."""

    enabled: bool = Field(
        default=True, description="Alert when events arrive much later than usual."
    )
    factor: float = Field(
        default=10.0, gt=1, description="Alert when the recent lag is this many times the usual..."
    )
    min_lag_seconds: float = Field(default=60.0, ge=0, description="...and at least this long.")
    recent_events: int = Field(default=20, ge=1, description="Span of the recent lag, in events.")
    baseline_events: int = Field(
        default=1000, ge=2, description="Span of the usual lag, in events."
    )
    warmup_events: int = Field(
        default=50, ge=1, description="Lags to measure before a freshness alert can fire."
    )

    # Derived once, since the detector runs per event.
    @cached_property
    def recent_alpha(self) -> float:
        return 2.0 / (self.recent_events + 1)

    @cached_property
    def baseline_alpha(self) -> float:
        return 2.0 / (self.baseline_events + 1)

    @cached_property
    def limit(self) -> float:
        """log(factor): how far above the usual lag the recent one must be, on the log scale."""
        return math.log(self.factor)

    @cached_property
    def floor(self) -> float:
        """log(1 + min lag in seconds): the recent lag must reach it too."""
        return math.log1p(round(self.min_lag_seconds * 1000) / 1000.0)

    def describe(self) -> dict[str, Any]:
        """The parameters a freshness alert carries."""
        return {
            "factor": self.factor,
            "min_lag_seconds": round(self.min_lag_seconds * 1000) / 1000,
            "recent_events": self.recent_events,
            "baseline_events": self.baseline_events,
            "warmup": self.warmup_events,
        }


class ArrivalPolicy(Frozen):
    """The resolved arrival settings of one model: defaults with matching overrides applied."""

    silence: SilenceSettings
    rate: bool
    freshness: bool


_SECTION_OF: dict[str, type[BaseModel]] = {
    "silence": SilenceSettings,
    "rate": RateSettings,
    "freshness": FreshnessSettings,
}


class ArrivalSettings(Frozen):
    """Is data arriving? Silence, rate and freshness per model. See docs/arrival.md."""

    enabled: bool = Field(
        default=True,
        description="Watch every model's feature events for silence, rate changes and lateness, "
        "and reject events from the future.",
    )
    tick_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker checks every model for silence."
    )
    max_future_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Events whose ts is further ahead of processing time than this are "
        "rejected (future_timestamp).",
    )
    silence: SilenceSettings = Field(
        default_factory=SilenceSettings, description="When a model counts as silent."
    )
    rate: RateSettings = Field(default_factory=RateSettings, description="The event-rate CUSUM.")
    freshness: FreshnessSettings = Field(
        default_factory=FreshnessSettings, description="The event-time lag detector."
    )
    overrides: tuple[ArrivalOverride, ...] = Field(
        default_factory=tuple, description="Per model glob; applied in order, later matches win."
    )

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, data: Any) -> Any:
        """Before 0.2 these sections were flat (``rate_bucket_seconds``, ``silence: false``);
        such keys still load, into their section, with a deprecation line in the log."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            section, _, name = key.partition("_")
            if section not in _SECTION_OF:
                continue
            if not name and not isinstance(value, dict | BaseModel):
                name = "enabled"
            elif name not in _SECTION_OF[section].model_fields:
                continue
            nested = out.get(section)
            if isinstance(nested, BaseModel):
                nested = nested.model_dump(exclude_unset=True)
            out[section] = {**(nested if isinstance(nested, dict) else {}), name: value}
            if key != section:
                del out[key]
            _log.warning("arrival.%s is deprecated: use arrival.%s.%s", key, section, name)
        return out

    @model_validator(mode="after")
    def _check_fixed_window(self) -> ArrivalSettings:
        if self.silence.seconds is not None:
            raise ValueError("silence.seconds is per model only: set it in arrival.overrides")
        return self

    def policy(self, model: str) -> ArrivalPolicy:
        """Resolve the arrival policy of one model (once per model, not per event)."""
        # silence_seconds is per model only: a fixed window suits some models, never all.
        silence: dict[str, Any] = {}
        switches = {"rate": self.rate.enabled, "freshness": self.freshness.enabled}
        for override in self.overrides:
            if override.matches(model):
                for key, value in override.model_dump(exclude_none=True).items():
                    if key in switches:
                        switches[key] = value
                    elif key.startswith("silence"):
                        silence[key.removeprefix("silence").lstrip("_") or "enabled"] = value
        # Not validated, as before: a per-model floor above the ceiling clamps to the ceiling.
        # (Not model_copy either: it would copy the cached *_ms of the defaults.)
        resolved = self.silence
        if silence:
            resolved = SilenceSettings.model_construct(**{**self.silence.model_dump(), **silence})
        return ArrivalPolicy(silence=resolved, **switches)
