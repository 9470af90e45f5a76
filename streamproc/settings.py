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
import math
import os
import re
from collections.abc import Mapping
from enum import StrEnum
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

from streamproc.alert_settings import LifecycleSettings, RollupSettings
from streamproc.config_file import read_yaml
from streamproc.errors import ConfigError

ENV_PREFIX = "STREAMPROC_"

INT32_MAX = 2**31 - 1
"""Ceiling of every number setting without its own: counts, sizes and partitions reach
Kafka and its clients as int32, and 2**31 seconds (68 years) is beyond any interval."""

_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
"""Kafka's rule for topic names (besides ``.`` and ``..``, which it refuses too)."""


def _has_ceiling(field: FieldInfo) -> bool:
    return any(hasattr(m, "le") or hasattr(m, "lt") for m in field.metadata)


def _check_magnitude(value: object) -> None:
    """Refuse a number no consumer of settings can take (bools are ints, and always fit)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > INT32_MAX:
        raise ValueError(f"must be between -{INT32_MAX} and {INT32_MAX} (2**31 - 1)")


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False
    )

    @field_validator("*")
    @classmethod
    def _fits(cls, value: Any, info: ValidationInfo) -> Any:
        """Every number field gets a ceiling, including fields added later without one."""
        if info.field_name is not None and not _has_ceiling(cls.model_fields[info.field_name]):
            _check_magnitude(value)
        return value


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
    MODEL = "model"
    """A model's rollup: several of its streams drifted together (docs/alerts.md)."""


DetectorType = Literal["adwin", "page_hinkley", "kswin", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm"]


class DetectorSpec(_Frozen):
    """One River detector to run on a stream."""

    # check_spec refuses nan and inf itself, naming the detector and the parameter.
    model_config = ConfigDict(allow_inf_nan=True)

    type: DetectorType = Field(description="River detector: adwin, page_hinkley, kswin, ddm, ...")
    params: dict[str, float | int | str | bool | None] = Field(
        default_factory=dict,
        description="Constructor arguments of the River detector; unknown ones are an error.",
    )

    @field_validator("params")
    @classmethod
    def _check_params(
        cls, params: dict[str, float | int | str | bool | None], info: ValidationInfo
    ) -> dict[str, float | int | str | bool | None]:
        """Checked here (not after the model) so an error's location ends in ``.params``."""
        for key, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                continue  # check_spec's message on these says more
            try:
                _check_magnitude(value)
            except ValueError as exc:
                raise ValueError(f"parameter {key!r} {exc}") from None
        if "type" in info.data:
            from streamproc.detectors import check_spec  # detectors builds on these types

            check_spec(cls.model_construct(type=info.data["type"], params=params))
        return params


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
    lifecycle: LifecycleSettings = Field(
        default_factory=LifecycleSettings,
        description="When alerts resolve: {enabled, stable_events} (docs/alerts.md).",
    )
    rollup: RollupSettings = Field(
        default_factory=RollupSettings,
        description="Model rollup alerts: {enabled, min_streams, min_share, window_events}.",
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


class ArrivalPolicy(_Frozen):
    """The resolved arrival settings of one model: defaults with matching overrides applied."""

    silence: bool
    silence_seconds: float | None
    silence_factor: float
    silence_floor_seconds: float
    silence_ceiling_seconds: float
    rate: bool
    freshness: bool


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
    silence: bool = Field(default=True, description="Alert when a model stops sending.")
    silence_factor: float = Field(
        default=4.0, gt=0, description="Silence window: this times the longest recent gap..."
    )
    silence_floor_seconds: float = Field(default=60.0, gt=0, description="...at least this...")
    silence_ceiling_seconds: float = Field(
        default=3600.0, gt=0, description="...and at most this (also the window until known)."
    )
    silence_memory_seconds: float = Field(
        default=10_800.0, gt=0, description="Half-life of the remembered longest gap."
    )
    silence_min_gaps: int = Field(
        default=20, ge=0, description="Gaps to see before the window is derived from them."
    )
    rate: bool = Field(default=True, description="Alert when a model's event rate changes.")
    rate_bucket_seconds: float = Field(
        default=60.0, ge=0.001, description="Events are counted per bucket of event time."
    )
    rate_baseline_buckets: int = Field(
        default=20, ge=2, description="Horizon of the baseline a bucket is compared with."
    )
    rate_threshold: float = Field(
        default=9.0, gt=0, description="CUSUM threshold, in standard deviations."
    )
    rate_slack: float = Field(
        default=1.0, ge=0, description="CUSUM allowance per bucket, in standard deviations."
    )
    rate_min_count: float = Field(
        default=10.0,
        ge=1,
        description="Judge the rate only while at least this many events per bucket are expected.",
    )
    rate_warmup_buckets: int = Field(
        default=10, ge=1, description="Buckets that only build the baseline."
    )
    rate_cooldown_buckets: int = Field(
        default=30, ge=0, description="After a rate alert, buckets before the next can fire."
    )
    freshness: bool = Field(
        default=True, description="Alert when events arrive much later than usual."
    )
    freshness_factor: float = Field(
        default=10.0, gt=1, description="Alert when the recent lag is this many times the usual..."
    )
    freshness_min_lag_seconds: float = Field(
        default=60.0, ge=0, description="...and at least this long."
    )
    freshness_recent_events: int = Field(
        default=20, ge=1, description="Span of the recent lag, in events."
    )
    freshness_baseline_events: int = Field(
        default=1000, ge=2, description="Span of the usual lag, in events."
    )
    freshness_warmup_events: int = Field(
        default=50, ge=1, description="Lags to measure before a freshness alert can fire."
    )
    overrides: tuple[ArrivalOverride, ...] = Field(
        default_factory=tuple, description="Per model glob; applied in order, later matches win."
    )

    @model_validator(mode="after")
    def _check_silence_bounds(self) -> ArrivalSettings:
        if self.silence_floor_seconds > self.silence_ceiling_seconds:
            raise ValueError("silence_floor_seconds must not exceed silence_ceiling_seconds")
        return self

    def policy(self, model: str) -> ArrivalPolicy:
        """Resolve the arrival policy of one model (once per model, not per event)."""
        # silence_seconds is per model only: a fixed window suits some models, never all.
        fields: dict[str, Any] = {
            name: getattr(self, name, None) for name in ArrivalPolicy.model_fields
        }
        for override in self.overrides:
            if override.matches(model):
                fields.update(
                    {k: v for k, v in override.model_dump(exclude_none=True).items() if k in fields}
                )
        return ArrivalPolicy(**fields)


class Settings(_Frozen):
    """Everything streamproc is configured with."""

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


_SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
}


def _is_scalar(annotation: Any) -> bool:
    text = str(annotation)
    return not any(
        s in text
        for s in ("tuple", "dict", "DetectorDefaults", "LifecycleSettings", "RollupSettings")
    )


def env_names() -> dict[str, tuple[str, str]]:
    """Every environment variable streamproc reads, mapped to its (section, field)."""
    names = {f"{ENV_PREFIX}CONFIG": ("", "config")}
    for section, model in _SECTIONS.items():
        for field_name, field in model.model_fields.items():
            if _is_scalar(field.annotation):
                names[f"{ENV_PREFIX}{section}_{field_name}".upper()] = (section, field_name)
    return names


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    known = env_names()
    out: dict[str, dict[str, str]] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        if var not in known:
            raise ConfigError(f"unknown environment variable {var} (see docs/configuration.md)")
        section, field_name = known[var]
        if section:
            out.setdefault(section, {})[field_name] = value
    return out


def _describe(exc: ValidationError, origin: str, env_keys: set[tuple[str, str]]) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = origin
        if len(err["loc"]) >= 2 and (str(err["loc"][0]), str(err["loc"][1])) in env_keys:
            var = f"{ENV_PREFIX}{err['loc'][0]}_{err['loc'][1]}".upper()
            where = f"environment variable {var}"
        lines.append(f"{where}: {loc}: {err['msg']}" if loc else f"{where}: {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the frozen :class:`Settings` from a YAML file and the environment.

    ``environ`` defaults to :data:`os.environ`; tests pass their own mapping.
    Raises :class:`ConfigError` naming the file, key or variable at fault.
    """
    environ = os.environ if environ is None else environ
    if path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        path = environ[f"{ENV_PREFIX}CONFIG"]
    data: dict[str, Any] = read_yaml(Path(path)) if path is not None else {}
    env = _env_overrides(environ)
    for section, values in env.items():
        current = data.get(section) or {}
        if not isinstance(current, dict):
            raise ConfigError(f"config file {path}: {section} must be a mapping")
        data[section] = {**current, **values}
    env_keys = {(s, f) for s, vals in env.items() for f in vals}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        origin = f"config file {path}" if path is not None else "settings"
        raise ConfigError(_describe(exc, origin, env_keys)) from exc
