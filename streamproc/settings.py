"""Configuration, parsed once at the edge into frozen objects.

Sources, later ones winning: defaults, a YAML file (``--config FILE`` or
``STREAMPROC_CONFIG``), then environment variables. Every scalar setting has an
environment variable named ``STREAMPROC_<SECTION>_<FIELD>`` (for example
``STREAMPROC_KAFKA_BOOTSTRAP_SERVERS``); :func:`env_names` lists them all and
docs/configuration.md documents each one next to its field description.

Errors name the key at fault (``engine.overrides.0.detectors.1.params.delta``)
and, for environment variables, the variable. Rules every setting follows,
checked here so that a bad value stops the program at start-up rather than
when a Kafka client, a timer or a checkpoint first uses it: numbers are finite
and, unless a field sets its own ceiling, at most :data:`INT32_MAX`; topic
names are ones Kafka accepts, and no two of the worker's topics are the same.
Secrets are :class:`pydantic.SecretStr`, so they print as ``**********`` in logs
and dumps.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streamproc.config_sources import (
    ENV_PREFIX,
    EnvironmentSource,
    YamlFileSource,
    config_path,
    describe,
    merge,
)
from streamproc.detectors import DetectorSpec, DetectorType
from streamproc.domain import INT32_MAX, StreamKind, check_magnitude
from streamproc.errors import ConfigError

_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
"""Kafka's rule for topic names (besides ``.`` and ``..``, which it refuses too)."""


def _has_ceiling(field: FieldInfo) -> bool:
    return any(hasattr(m, "le") or hasattr(m, "lt") for m in field.metadata)


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False
    )

    @field_validator("*")
    @classmethod
    def _fits(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number field gets a ceiling, including fields added later without one."""
        if info.field_name is not None and not _has_ceiling(cls.model_fields[info.field_name]):
            check_magnitude(value)
        return value


def _specs(*types: DetectorType) -> tuple[DetectorSpec, ...]:
    return tuple(DetectorSpec(type=t) for t in types)


class DetectorDefaults(_Frozen):
    """Detectors per stream kind, before overrides."""

    # ADWIN plus Page-Hinkley, on standardized values clipped at +/-4 (streams.CLIP): the
    # clipping is what keeps Page-Hinkley quiet on heavy tails (docs/quality.md).
    value: tuple[DetectorSpec, ...] = Field(
        default_factory=lambda: _specs("adwin", "page_hinkley"),
        description="Detectors on numeric feature streams.",
    )
    prediction: tuple[DetectorSpec, ...] = Field(
        default_factory=lambda: _specs("adwin", "page_hinkley"),
        description="Detectors on the numeric prediction stream.",
    )
    missing_rate: tuple[DetectorSpec, ...] = Field(
        default_factory=lambda: _specs("adwin"),
        description="Detectors on per-feature 0/1 missing indicators.",
    )
    error: tuple[DetectorSpec, ...] = Field(
        default_factory=lambda: _specs("adwin"),
        description="Detectors on the per-outcome error stream.",
    )
    correctness: tuple[DetectorSpec, ...] = Field(
        default_factory=tuple,
        description="Detectors on the 0/1 correctness stream (binary ones: ddm, eddm, ...).",
    )

    def for_kind(self, kind: StreamKind) -> tuple[DetectorSpec, ...]:
        specs: tuple[DetectorSpec, ...] = getattr(self, kind.value)
        return specs


class Override(_Frozen):
    """Settings for the streams whose model and name match the globs."""

    model: str = Field(default="*", description="Glob on the model id.")
    stream: str = Field(default="*", description="Glob on the stream name (feature or metric).")
    kind: StreamKind | None = Field(default=None, description="Only streams of this kind.")
    detectors: tuple[DetectorSpec, ...] | None = Field(
        default=None, description="Replaces the kind's detector list."
    )
    standardize: bool | None = Field(default=None, description="Overrides engine.standardize.")
    warmup: int | None = Field(default=None, ge=2, description="Overrides engine.warmup.")
    cooldown_events: int | None = Field(
        default=None, ge=0, description="Overrides engine.cooldown_events."
    )

    def matches(self, model: str, kind: StreamKind, name: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and fnmatch.fnmatchcase(model, self.model)
            and fnmatch.fnmatchcase(name, self.stream)
        )


class StreamPolicy(_Frozen):
    """The resolved settings of one stream: defaults with every matching override applied."""

    detectors: tuple[DetectorSpec, ...]
    standardize: bool
    warmup: int
    cooldown_events: int


class EngineSettings(_Frozen):
    """How streams are watched. See docs/detectors.md."""

    standardize: bool = Field(
        default=True,
        description="Feed detectors values scaled by a warm-up estimate of the stream's spread, "
        "so thresholds mean the same at any scale. Off: raw values, exactly as River sees them.",
    )
    warmup: int = Field(
        default=100, ge=2, description="Events per stream used to estimate the scale."
    )
    cooldown_events: int = Field(
        default=1000,
        ge=0,
        description="After an alert, further alerts of the same stream are held back for this "
        "many of its events, so one change gives one alert.",
    )
    detectors: DetectorDefaults = Field(
        default_factory=DetectorDefaults,
        description="Detectors per stream kind: value, prediction, missing_rate, error, "
        "correctness (lists of {type, params}).",
    )
    overrides: tuple[Override, ...] = Field(
        default_factory=tuple, description="Applied in order; later matches win."
    )

    def policy(self, model: str, kind: StreamKind, name: str) -> StreamPolicy:
        """Resolve the policy of one stream (called once per stream, not per event)."""
        fields: dict[str, Any] = {
            "detectors": self.detectors.for_kind(kind),
            "standardize": self.standardize,
            "warmup": self.warmup,
            "cooldown_events": self.cooldown_events,
        }
        for override in self.overrides:
            if override.matches(model, kind, name):
                fields.update(
                    {k: v for k, v in override.model_dump(exclude_none=True).items() if k in fields}
                )
                if override.detectors is not None:
                    fields["detectors"] = override.detectors
        return StreamPolicy(**fields)


class Limits(_Frozen):
    """Bounds on input, enforced with a reason code so a producer bug cannot exhaust memory."""

    max_message_bytes: int = Field(
        default=1_048_576, ge=16, description="Largest message accepted."
    )
    max_batch_events: int = Field(
        default=10_000, ge=1, description="Most events in one array message."
    )
    max_features_per_event: int = Field(
        default=1_000, ge=1, description="Most features in one event."
    )
    max_name_length: int = Field(
        default=200, ge=1, description="Longest model id, feature name or event id."
    )
    max_streams_per_model: int = Field(
        default=10_000, ge=1, description="Most feature streams tracked per model."
    )
    max_category_length: int = Field(
        default=200,
        ge=1,
        description="Longest string feature value or prediction label (a category).",
    )
    max_models: int = Field(
        default=10_000,
        ge=1,
        description="Most models one worker tracks; events of further new models are "
        "rejected (too_many_models).",
    )
    model_idle_seconds: float = Field(
        default=604_800.0,
        ge=0,
        description="A model with no events for this long is forgotten (memory and "
        "checkpoint) after a final silence alert; 0 keeps models forever.",
    )


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(_Frozen):
    """How to reach the cluster."""

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list."
    )
    client_id: str = Field(default="streamproc", description="Kafka client id.")
    group_id: str = Field(default="streamproc", description="Consumer group of the workers.")
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: SaslMechanism = Field(
        default="PLAIN", description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL only)."
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password; never logged or printed."
    )
    ssl_cafile: Path | None = Field(default=None, description="CA bundle to verify the brokers.")
    ssl_certfile: Path | None = Field(default=None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(default=None, description="Client private key (mutual TLS).")
    ssl_password: SecretStr | None = Field(default=None, description="Password of the key file.")

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_username and sasl_password"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")
        return self


class TopicSettings(_Frozen):
    """Topic names and how missing ones are created."""

    features: str = Field(default="features", description="Feature events, keyed by model.")
    outcomes: str = Field(default="outcomes", description="Outcome events, keyed by model.")
    alerts: str = Field(default="drift-alerts", description="Where alerts are published.")
    dead_letters: str = Field(
        default="streamproc-dead-letters",
        description="Rejected messages, with the reason in headers (docs/dead-letters.md).",
    )
    checkpoints: str | None = Field(
        default=None,
        description="Compacted topic of detector-state checkpoints; default "
        "'<kafka.group_id>-checkpoints'. Created with the feature topic's partition count.",
    )
    partitions: int = Field(default=8, ge=1, description="Partitions of topics the worker creates.")
    replication_factor: int = Field(
        default=1, ge=1, le=32_767, description="Replication of created topics."
    )

    @field_validator("features", "outcomes", "alerts", "dead_letters", "checkpoints")
    @classmethod
    def _check_name(cls, name: str | None) -> str | None:
        if name is not None:
            check_topic_name(name)
        return name


def check_topic_name(name: str) -> None:
    """Raise ValueError unless Kafka accepts ``name`` as a topic name."""
    if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"{name!r} is not a topic name Kafka accepts: 1 to 249 of the characters "
            "a-z A-Z 0-9 . _ -, and not '.' or '..'"
        )


class WorkerSettings(_Frozen):
    """The streaming worker's behaviour."""

    checkpoint_interval_seconds: float = Field(
        default=10.0, gt=0, description="Detector state is checkpointed at least this often."
    )
    checkpoint_events: int = Field(
        default=50_000, ge=1, description="...or after this many events, whichever comes first."
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, gt=0, description="On SIGTERM, the longest a graceful stop may take."
    )
    session_timeout_seconds: float = Field(
        default=30.0,
        ge=6.0,
        le=INT32_MAX // 1000,  # Kafka takes it in milliseconds, as an int32
        description="Consumer group session timeout: how long a crashed worker's partitions "
        "wait before the group hands them to the others.",
    )
    data_dir: Path = Field(default=Path("var/worker"), description="Faust's local data directory.")
    web_port: int = Field(default=6066, ge=0, le=65535, description="Faust's web server port.")


class MetricsSettings(_Frozen):
    """Prometheus exposition."""

    host: str = Field(default="0.0.0.0", description="Address of the metrics/health server.")
    port: int = Field(
        default=9108, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz."
    )
    max_stream_series: int = Field(
        default=1_000, ge=0, description="At most this many streams export per-stream gauges."
    )


class LogSettings(_Frozen):
    """Logging."""

    format: Literal["text", "json"] = Field(
        default="text", description="text for people, json for log pipelines (one per line)."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged."
    )


class ArrivalOverride(_Frozen):
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


class SilenceSettings(_Frozen):
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


class RateSettings(_Frozen):
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


class FreshnessSettings(_Frozen):
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


class ArrivalPolicy(_Frozen):
    """The resolved arrival settings of one model: defaults with matching overrides applied."""

    silence: SilenceSettings
    rate: bool
    freshness: bool


_SECTION_OF: dict[str, type[BaseModel]] = {
    "silence": SilenceSettings,
    "rate": RateSettings,
    "freshness": FreshnessSettings,
}
_log = logging.getLogger(__name__)


class ArrivalSettings(_Frozen):
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


class Settings(BaseSettings):
    """Everything streamproc is configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        frozen=True,
        extra="forbid",
        validate_default=True,
        allow_inf_nan=False,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    limits: Limits = Field(default_factory=Limits)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    arrival: ArrivalSettings = Field(default_factory=ArrivalSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _check_topics_apart(self) -> Settings:
        """The worker reads two topics and writes three: a sink equal to a source (or a
        sink shared by two roles) would feed its output back in as input, a dead-letter
        loop. Kafka also refuses names that differ only in '.' versus '_'."""
        if self.topics.checkpoints is None:
            try:
                check_topic_name(self.checkpoint_topic)
            except ValueError as exc:
                raise ValueError(
                    f"kafka.group_id: the checkpoint topic named after it is invalid ({exc}); "
                    "set topics.checkpoints"
                ) from None
        roles = self.topic_roles()
        seen: dict[str, str] = {}
        for key, name in roles.items():
            other = seen.setdefault(name.replace(".", "_"), key)
            if other == key:
                continue
            if roles[other] == name:
                raise ValueError(f"{key} {name!r} is the same topic as {other}: a feedback loop")
            raise ValueError(
                f"{key} {name!r} and {other} {roles[other]!r} collide in Kafka, "
                "which treats '.' and '_' alike"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings()``: keyword arguments, then the environment, then the YAML file; no
        ``.env`` file or secrets directory. :func:`load_settings` adds error messages."""
        file = config_path(None, os.environ)
        return (
            init_settings,
            EnvironmentSource(settings_cls, os.environ, env_names()),
            YamlFileSource(settings_cls, file),
        )

    def topic_roles(self) -> dict[str, str]:
        """The worker's topics by setting key; the checkpoint one under ``topics.checkpoints``
        also when derived from ``kafka.group_id``."""
        t = self.topics
        return {
            "topics.features": t.features,
            "topics.outcomes": t.outcomes,
            "topics.alerts": t.alerts,
            "topics.dead_letters": t.dead_letters,
            "topics.checkpoints": self.checkpoint_topic,
        }

    @property
    def checkpoint_topic(self) -> str:
        return self.topics.checkpoints or f"{self.kafka.group_id}-checkpoints"

    def config_hash(self) -> str:
        """A short, stable digest of the effective configuration (secrets excluded)."""
        dumped = self.model_dump(mode="json", exclude={"kafka": {"sasl_password", "ssl_password"}})
        return hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def _is_scalar(field: FieldInfo) -> bool:
    """Set by one environment variable: not a list or mapping, nor marked file-only."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("env") is False:
        return False
    return not any(s in str(field.annotation) for s in ("tuple", "dict"))


def _keys(model: type[BaseModel], path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _keys(field.annotation, (*path, name))
        elif _is_scalar(field):
            yield (*path, name)


def env_names() -> dict[str, tuple[str, ...]]:
    """Every environment variable streamproc reads, mapped to the path of its key.

    The name is the prefix and the path joined by ``_`` (the nested delimiter), in capitals.
    """
    names: dict[str, tuple[str, ...]] = {f"{ENV_PREFIX}CONFIG": ("config",)}
    for path in _keys(Settings, ()):
        var = f"{ENV_PREFIX}{'_'.join(path)}".upper()
        assert var not in names, f"{var} would name two settings"
        names[var] = path
    return names


def load_settings(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the frozen :class:`Settings` from a YAML file and the environment.

    ``environ`` defaults to :data:`os.environ`; tests pass their own mapping.
    Raises :class:`ConfigError` naming the file, key or variable at fault.
    """
    environ = os.environ if environ is None else environ
    file = config_path(path, environ)
    env = EnvironmentSource(Settings, environ, env_names())
    values, data = env(), YamlFileSource(Settings, file)()
    merge(data, values, f"config file {file}")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        origin = f"config file {file}" if file is not None else "settings"
        raise ConfigError(describe(exc, origin, env.origins)) from exc
