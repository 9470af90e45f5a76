"""Configuration, parsed once at the edge into frozen objects.

:class:`Settings` is a pydantic-settings ``BaseSettings``. Sources, later ones winning:
defaults, a YAML file (``--config FILE`` or ``STREAMPROC_CONFIG``), then environment
variables (both sources in :mod:`streamproc.config_sources`). Every scalar setting has an
environment variable named ``STREAMPROC_<SECTION>_<FIELD>``, nested sections joined by
``_`` too (``STREAMPROC_KAFKA_BOOTSTRAP_SERVERS``, ``STREAMPROC_ARRIVAL_RATE_SLACK``);
:func:`env_names` lists them all and docs/configuration.md documents each one next to
its field description. The arrival sections are in :mod:`streamproc.settings.arrival`,
the base of every section in :mod:`streamproc.settings.frozen`.

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
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streamproc import budget, spread
from streamproc.config_sources import (
    ENV_PREFIX,
    EnvironmentSource,
    YamlFileSource,
    config_path,
    describe,
    merge,
)
from streamproc.detectors import DetectorSpec, DetectorType
from streamproc.domain import INT32_MAX, StreamKind
from streamproc.errors import ConfigError
from streamproc.settings.alerts import LifecycleSettings, RollupSettings
from streamproc.settings.arrival import (
    ArrivalOverride,
    ArrivalPolicy,
    ArrivalSettings,
    FreshnessSettings,
    RateSettings,
    SilenceSettings,
)
from streamproc.settings.categories import CategorySettings
from streamproc.settings.frozen import Frozen
from streamproc.settings.labels import LabelSettings
from streamproc.settings.route import RouteSettings

__all__ = [
    "ENV_PREFIX",
    "INT32_MAX",
    "ArrivalOverride",
    "ArrivalPolicy",
    "ArrivalSettings",
    "DetectorDefaults",
    "EngineSettings",
    "FreshnessSettings",
    "Frozen",
    "KafkaSettings",
    "Limits",
    "LogSettings",
    "MetricsSettings",
    "Override",
    "RateSettings",
    "Settings",
    "SilenceSettings",
    "StreamPolicy",
    "TopicSettings",
    "WorkerSettings",
    "check_topic_name",
    "env_names",
    "load_settings",
]

Seasonality = Literal["auto", "on", "off"]
"""engine.seasonality: see :data:`streamproc.seasonal.Mode`."""


def _on_off(value: object) -> object:
    """YAML 1.1 reads an unquoted ``on``/``off`` as a boolean: take it as the word meant."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
"""Kafka's rule for topic names (besides ``.`` and ``..``, which it refuses too)."""


def _specs(*types: DetectorType) -> tuple[DetectorSpec, ...]:
    return tuple(DetectorSpec(type=t) for t in types)


class DetectorDefaults(Frozen):
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


class Override(Frozen):
    """Settings for the streams whose model and name match the globs."""

    model: str = Field(default="*", description="Glob on the model id.")
    stream: str = Field(default="*", description="Glob on the stream name (feature or metric).")
    kind: StreamKind | None = Field(default=None, description="Only streams of this kind.")
    detectors: tuple[DetectorSpec, ...] | None = Field(
        default=None, description="Replaces the kind's detector list."
    )
    standardize: bool | None = Field(default=None, description="Overrides engine.standardize.")
    warmup: int | None = Field(default=None, ge=2, description="Overrides engine.warmup.")
    spread: bool | None = Field(default=None, description="Overrides engine.spread.")
    seasonality: Seasonality | None = Field(
        default=None, description="Overrides engine.seasonality."
    )
    cooldown_events: int | None = Field(
        default=None, ge=0, description="Overrides engine.cooldown_events."
    )

    @field_validator("seasonality", mode="before")
    @classmethod
    def _seasonality_words(cls, value: object) -> object:
        return _on_off(value)

    def matches(self, model: str, kind: StreamKind, name: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and fnmatch.fnmatchcase(model, self.model)
            and fnmatch.fnmatchcase(name, self.stream)
        )


class StreamPolicy(Frozen):
    """The resolved settings of one stream: defaults with every matching override applied."""

    detectors: tuple[DetectorSpec, ...]
    standardize: bool
    warmup: int
    cooldown_events: int
    spread_threshold: float | None = None
    """Threshold of the spread CUSUMs (:mod:`streamproc.spread`); None: no spread test."""
    source_arl0: float | None = None
    """Mean events between false alarms each alarm source of the stream (a detector, a spread
    test) must reach: the model's budget shared out (:mod:`streamproc.budget`). Detector
    parameters not set explicitly derive from it. None (standardization off): River's own."""
    seasonality: Seasonality = "off"
    """Daily and weekly profiles (:mod:`streamproc.seasonal`) of value and prediction streams."""


class EngineSettings(Frozen):
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
    spread: bool = Field(
        default=True,
        description="Watch the spread of standardized streams (variance doubling or halving, "
        "heavier tails) with two CUSUMs on squared standardized values.",
    )
    seasonality: Seasonality = Field(
        default="auto",
        description="Daily and weekly cycles of numeric features and predictions, in event "
        "time: auto (a profile is removed once a test finds it significant), on (removed "
        "without the test), off (docs/detectors.md, Seasonality).",
    )
    false_alarms_per_100k: float = Field(
        default=1.0,
        gt=0,
        description="False-alarm budget per model over all its streams, per 100,000 events; "
        "detector thresholds and the spread tests' are derived from it (docs/detectors.md).",
    )
    streams_per_model: int = Field(
        default=150,
        ge=1,
        description="Streams a model is budgeted for (50 features: about 150 streams); a "
        "bound, since a model's streams appear as its features arrive.",
    )
    detectors: DetectorDefaults = Field(
        default_factory=DetectorDefaults,
        description="Detectors per stream kind: value, prediction, missing_rate, error, "
        "correctness (lists of {type, params}).",
    )
    overrides: tuple[Override, ...] = Field(
        default_factory=tuple, description="Applied in order; later matches win."
    )
    categories: CategorySettings = Field(
        default_factory=CategorySettings,
        description="Category streams of string features and predictions (docs/detectors.md).",
    )
    lifecycle: LifecycleSettings = Field(
        default_factory=LifecycleSettings,
        description="When alerts resolve: {enabled, stable_events} (docs/alerts.md).",
    )
    rollup: RollupSettings = Field(
        default_factory=RollupSettings,
        description="Model rollup alerts: {enabled, min_streams, min_share, window_events}.",
    )

    @field_validator("seasonality", mode="before")
    @classmethod
    def _seasonality_words(cls, value: object) -> object:
        return _on_off(value)

    def policy(self, model: str, kind: StreamKind, name: str) -> StreamPolicy:
        """Resolve the policy of one stream (called once per stream, not per event)."""
        fields: dict[str, Any] = {
            "detectors": self.detectors.for_kind(kind),
            "standardize": self.standardize,
            "warmup": self.warmup,
            "cooldown_events": self.cooldown_events,
            "spread": self.spread,
            "seasonality": self.seasonality,
        }
        for override in self.overrides:
            if override.matches(model, kind, name):
                fields.update(
                    {k: v for k, v in override.model_dump(exclude_none=True).items() if k in fields}
                )
                if override.detectors is not None:
                    fields["detectors"] = override.detectors
        spread_on = fields.pop("spread") and fields["standardize"]
        arl0 = self.source_arl0(len(fields["detectors"]))
        fields["spread_threshold"] = budget.cusum_threshold(arl0) if spread_on else None
        fields["source_arl0"] = arl0 if fields["standardize"] else None
        return StreamPolicy(**fields)

    def source_arl0(self, detectors: int) -> float:
        """ARL0 of each alarm source of a stream: the model's budget shared by its streams and,
        within a stream, by its detectors and the two spread tests (:mod:`streamproc.budget`)."""
        return budget.stream_arl0(
            self.false_alarms_per_100k, self.streams_per_model, detectors + spread.SOURCES
        )

    def spread_threshold(self, detectors: int) -> float:
        """ln(ARL0) of each spread CUSUM (Lorden's bound for a log-likelihood-ratio CUSUM)."""
        return budget.cusum_threshold(self.source_arl0(detectors))


class Limits(Frozen):
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
        default=10_000,
        ge=1,
        description="Most features tracked per model (each feature has a value or category "
        "stream and a missing-rate stream).",
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


class KafkaSettings(Frozen):
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


class TopicSettings(Frozen):
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


MAX_PROCESSES = 1024


class WorkerSettings(Frozen):
    """The streaming worker's behaviour."""

    checkpoint_interval_seconds: float = Field(
        default=10.0, gt=0, description="Detector state is checkpointed at least this often."
    )
    checkpoint_events: int = Field(
        default=200_000,
        ge=1,
        description="...or after this many events, whichever comes first (bounds what a "
        "crash makes the next owner re-process during a burst; a round costs ~0.5 s of CPU "
        "per 2,000 changed streams, docs/performance.md).",
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
    processes: int | Literal["auto"] = Field(
        default=1,
        description="Worker processes of the consumer group run by this command, under one "
        "supervisor (`auto`: one per core this process may use). 1: no supervisor, as before. "
        "The command line's --processes wins (docs/deployment.md).",
    )
    uvloop: bool = Field(
        default=True,
        description="Run the worker on uvloop (10-20% less CPU per event); false: asyncio's "
        "own event loop.",
    )
    fetch_max_wait_ms: int = Field(
        default=30,
        ge=0,
        le=INT32_MAX,
        description="How long the broker may hold a fetch to gather fetch_min_bytes "
        "(Kafka's fetch.max.wait.ms): at most this much latency, for fewer and larger "
        "batches (docs/performance.md, Latency).",
    )
    fetch_min_bytes: int = Field(
        default=1_048_576,
        ge=1,
        le=INT32_MAX,
        description="Bytes a fetch waits for, up to fetch_max_wait_ms (fetch.min.bytes); "
        "1: return whatever arrived, waking the worker for every few records.",
    )

    @field_validator("processes")
    @classmethod
    def _check_processes(cls, processes: int | str) -> int | str:
        if isinstance(processes, int) and not 1 <= processes <= MAX_PROCESSES:
            raise ValueError(f"must be 'auto' or 1 to {MAX_PROCESSES}, got {processes}")
        return processes


class MetricsSettings(Frozen):
    """Prometheus exposition."""

    host: str = Field(default="0.0.0.0", description="Address of the metrics/health server.")
    port: int = Field(
        default=9108, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz."
    )
    max_stream_series: int = Field(
        default=1_000, ge=0, description="At most this many streams export per-stream gauges."
    )


class LogSettings(Frozen):
    """Logging."""

    format: Literal["text", "json"] = Field(
        default="text", description="text for people, json for log pipelines (one per line)."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged."
    )


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
    labels: LabelSettings = Field(default_factory=LabelSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    route: RouteSettings = Field(default_factory=RouteSettings)

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
