"""The drift engine: decoded events in, alerts out. Pure, deterministic, no I/O.

The worker and ``streamproc replay`` both drive this class, so a backtest on a
file gives exactly what production gives. All state is per model, and each
stream's sequence depends only on the order of its model's events on one topic
(which Kafka preserves per key), so the same alerts come out however
partitions are spread over workers, and a snapshot restored on another worker
continues exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamproc import lifecycle, snapshot_v1, state
from streamproc.alerts import Alert, StreamId
from streamproc.arrival import ArrivalClock, ArrivalMonitor
from streamproc.categories import CategoryStream
from streamproc.domain import StreamKind
from streamproc.errors import StateError
from streamproc.events import Event, FeatureEvent, LabelEvent, OutcomeEvent, Reason, Rejection
from streamproc.labels import DeadLabel, Joined, LabelJoin, LabelObserver, NoObserver
from streamproc.lifecycle import Episodes, Lifecycle
from streamproc.model_streams import (
    ARRIVAL_ENTRIES,
    FEATURE_FIELDS,
    MODEL_FIELDS,
    FeatureStreams,
    ModelStreams,
    encode_model,
    stream_count,
    stream_of,
    upgraded,
)
from streamproc.rollup import Rollup
from streamproc.settings import ArrivalSettings, EngineSettings, Limits, StreamPolicy
from streamproc.settings.labels import LabelSettings
from streamproc.stream_detectors import default_factory
from streamproc.streams import DetectorFactory, Stream

SNAPSHOT_VERSION = 2
"""2: models, features and streams are mappings with named fields; 1 (positional lists) is
upgraded on restore (:mod:`streamproc.snapshot_v1`)."""


@dataclass(frozen=True, slots=True)
class Processed:
    """What one event did."""

    alerts: list[Alert] = field(default_factory=list)
    """Alerts it triggered, in stream order."""
    rejection: Rejection | None = None
    """Set when the engine refused the event (e.g. too many streams for its model)."""
    updates: int = 0
    """Detector updates it caused (for throughput metrics)."""
    dead_labels: tuple[DeadLabel, ...] = ()
    """Labels that left the label join without a prediction as this event advanced its
    model's clock (expired), or that its prediction could not be compared with."""


@dataclass(frozen=True, slots=True)
class Evicted:
    """Models forgotten for being idle (``limits.model_idle_seconds``)."""

    models: list[str] = field(default_factory=list)
    """Their ids: the caller deletes their checkpoint records."""
    alerts: list[Alert] = field(default_factory=list)
    """Resolutions of their active alerts, then final silence alerts of those not already
    reported silent."""


@dataclass(frozen=True, slots=True)
class RejectedModel:
    """A model whose snapshot record failed validation; it starts afresh."""

    model: str
    reason: str
    """For humans and logs: the first field found at fault."""


@dataclass(frozen=True, slots=True)
class Restored:
    """What :meth:`Engine.restore` did with each model of a snapshot."""

    models: tuple[str, ...] = ()
    """Models whose state was restored, in snapshot order."""
    rejected: tuple[RejectedModel, ...] = ()
    """Models whose state was invalid: they hold no state now, so their next event starts
    them afresh, as if they were new."""


_NOTHING = Processed()
"""An event that changed no stream (shared: it is never mutated)."""
_ERROR_STREAMS = frozenset({"error", "loss"})
"""The names :class:`~streamproc.events.OutcomeEvent` gives error streams."""


class Engine:
    """Per-stream River detectors for every model, with cooldown and alert building."""

    def __init__(
        self,
        settings: EngineSettings,
        limits: Limits,
        detector_factory: DetectorFactory = default_factory,
        arrival: ArrivalSettings | None = None,
        arrival_clock: ArrivalClock = "processing",
        *,
        labels: LabelSettings | None = None,
        label_observer: LabelObserver | None = None,
    ) -> None:
        """``arrival`` turns on arrival monitoring (silence, rate, freshness, future
        timestamps; docs/arrival.md) when enabled in it; ``arrival_clock`` says whether
        ``now_ms`` is processing time (the worker) or event time (``replay``)."""
        self._settings = settings
        self._limits = limits
        self._factory = detector_factory
        self._models: dict[str, ModelStreams] = {}
        self._arrival: ArrivalMonitor | None = None
        self._event_time = arrival_clock == "event"
        self._idle_ms = round(limits.model_idle_seconds * 1000)
        if arrival is not None and arrival.enabled:
            self._arrival = ArrivalMonitor(arrival, arrival_clock)
        self._policies: dict[tuple[StreamKind, tuple[int, ...]], StreamPolicy] = {}
        self._labels = labels or LabelSettings()
        self._label_observer = label_observer or NoObserver()
        self._categories = settings.categories.enabled
        rollup = Rollup(settings.rollup) if settings.rollup.enabled else None
        self._lifecycle = Lifecycle(settings.lifecycle, settings.cooldown_events, rollup)
        self._quiet: dict[int, Processed] = {}
        """Results without alerts by their update count, shared (see :meth:`_result`)."""

    def process(
        self, event: Event, now_ms: int, arrived_ms: int | None = None, source: int = -1
    ) -> Processed:
        """Feed one event; ``now_ms`` is the processing time stamped on alerts, ``arrived_ms``
        when the event reached Kafka (for freshness; default ``now_ms``), ``source`` where a
        label came from (record offset or line: kept for its dead letter if it expires).

        A feature whose mean moves from about 43 to about 53 after 1,000 events:

        >>> from streamproc.events import FeatureEvent
        >>> from streamproc.settings import EngineSettings, Limits
        >>> engine = Engine(EngineSettings(), Limits())
        >>> def event(i: int) -> FeatureEvent:
        ...     age = (40.0 if i < 1000 else 50.0) + i % 7
        ...     return FeatureEvent(model="churn", features={"age": age}, ts=i)
        >>> alerts = [a for i in range(2000) for a in engine.process(event(i), now_ms=i).alerts]
        >>> [(a.stream.name, a.events_seen, a.detector["type"], a.severity) for a in alerts]
        [('age', 1007, 'page_hinkley', <Severity.WARNING: 'warning'>)]
        """
        arrival = self._arrival
        if arrival is not None:
            rejection = arrival.check(event, now_ms)
            if rejection is not None:
                return Processed(rejection=rejection)
        model = self._models.get(event.model)
        if model is None:
            if len(self._models) >= self._limits.max_models:
                return Processed(rejection=self._too_many_models(event))
            model = self._models[event.model] = ModelStreams()
            if self._labels.models and self._labels.joins_from_start(event.model):
                model.labels = LabelJoin(event.model, self._labels, self._label_observer)
        model.seen = event.ts if self._event_time else now_ms
        if isinstance(event, FeatureEvent):
            result = self._features(model, event, now_ms)
            if model.labels is not None and result.rejection is None:
                result = self._predicted(model, event, now_ms, result)
            if arrival is not None and result.rejection is None:
                result = self._arrived(arrival, model, event, now_ms, arrived_ms, result)
        elif isinstance(event, LabelEvent):
            return self._label(model, event, now_ms, source)
        else:
            result = self._outcome(model, event, now_ms)
        if model.episodes is None and not result.alerts:
            return result  # the common case: no alert now, none active
        if result.rejection is None:
            return self._settle(model, event, now_ms, result)
        return result

    def _settle(
        self, model: ModelStreams, event: Event, now_ms: int, result: Processed
    ) -> Processed:
        """The lifecycle and rollup of a model with alerts, new or active (docs/alerts.md)."""
        episodes = model.episodes
        if episodes is None:
            episodes = model.episodes = Episodes()
        if isinstance(event, FeatureEvent):
            episodes.events += 1
        if not result.alerts and not self._lifecycle.due(episodes):
            return result  # alerts active, none over: no allocation
        messages = self._lifecycle.settle(
            episodes,
            result.alerts,
            (event.id, event.ts),
            now_ms,
            functools.partial(stream_of, model),
            functools.partial(stream_count, model),
        )
        if len(messages) == len(result.alerts):
            return result
        return Processed(messages, None, result.updates)

    def _settle_tick(self, alerts: list[Alert], now_ms: int) -> list[Alert]:
        """Silence alerts from a tick, registered as active (their model's ``recovered``
        resolves them)."""
        out: list[Alert] = []
        for alert in alerts:
            model = self._models.get(alert.model)
            if model is None:
                out.append(alert)
                continue
            if model.episodes is None:
                model.episodes = Episodes()
            out += self._lifecycle.settle(
                model.episodes,
                (alert,),
                None,
                now_ms,
                functools.partial(stream_of, model),
                functools.partial(stream_count, model),
            )
        return out

    def _arrived(  # noqa: PLR0917  (the hot path: no keyword packing per event)
        self,
        arrival: ArrivalMonitor,
        model: ModelStreams,
        event: FeatureEvent,
        now_ms: int,
        arrived_ms: int | None,
        result: Processed,
    ) -> Processed:
        state = model.arrival
        if state is None:
            state = model.arrival = arrival.new(event.model)
        alerts = arrival.observe(state, event, now_ms, arrived_ms)
        if not alerts:
            return result
        return Processed(result.alerts + alerts, None, result.updates)

    def tick(self, now_ms: int, failed: list[tuple[str, Exception]] | None = None) -> list[Alert]:
        """Let the arrival monitor see that time passed: silence alerts, if any (the worker
        calls this from a timer; ``replay`` with event time). With ``failed``, a model whose
        check raises is listed there and the others are still checked."""
        arrival = self._arrival
        if arrival is None:
            return []
        models = ((n, m.arrival) for n, m in self._models.items() if m.arrival is not None)
        alerts = arrival.tick(models, now_ms, failed)
        return self._settle_tick(alerts, now_ms) if alerts else alerts

    def evict_idle(self, now_ms: int) -> Evicted:
        """Forget the models that sent nothing for ``limits.model_idle_seconds`` (clock time
        ``now_ms``, as for :meth:`tick`), so that ids that stop for good do not hold memory
        and checkpoint space forever. One that was not reported silent yet gets a final
        silence alert first: a model is never dropped unnoticed."""
        idle_ms = self._idle_ms
        if not idle_ms:
            return Evicted()
        idle = []
        for name, model in self._models.items():
            seen = model.seen
            if seen is None:
                model.seen = now_ms
            elif now_ms - seen > idle_ms:
                idle.append(name)
        alerts = []
        for name in idle:
            model = self._models.pop(name)
            if model.episodes is not None and self._settings.lifecycle.enabled:
                alerts += lifecycle.close(model.episodes, now_ms)
            if model.arrival is not None and self._arrival is not None:
                alert = self._arrival.farewell(name, model.arrival, now_ms)
                if alert is not None:
                    alerts.append(alert)
        return Evicted(idle, alerts)

    def _too_many_models(self, event: Event) -> Rejection:
        limit = self._limits.max_models
        return Rejection(
            Reason.TOO_MANY_MODELS,
            f"model: {event.model!r} would be a new model, but this worker already tracks "
            f"limits.max_models={limit}",
            model=event.model,
        )

    def _stream(self, model: str, kind: StreamKind, name: str) -> Stream:
        return Stream(StreamId(model, kind, name), self._policy(model, kind, name), self._factory)

    def _policy(self, model: str, kind: StreamKind, name: str) -> StreamPolicy:
        """A policy depends only on the kind and on which overrides match, so streams that
        share both share one resolved policy (resolving builds a pydantic model: recovery
        creates 100,000s of streams)."""
        overrides = self._settings.overrides
        key = (kind, tuple(i for i, o in enumerate(overrides) if o.matches(model, kind, name)))
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = self._settings.policy(model, kind, name)
        return policy

    def _features(self, model: ModelStreams, event: FeatureEvent, now_ms: int) -> Processed:
        known = model.features
        values = event.features
        if not values.keys() <= known.keys():
            rejection = self._new_features(event, known)
            if rejection is not None:
                return Processed(rejection=rejection)
        alerts: list[Alert] = []
        updates = 0
        eid, ts, timed = event.id, event.ts, event.ts_given
        for name, value in values.items():
            feature = known[name]
            missing = feature.missing
            updates += missing.updates_per_value
            if value is None:
                found = missing.update(1.0, eid, ts, now_ms)
                if found:
                    alerts += found
                continue
            found = missing.update(0.0, eid, ts, now_ms)
            if found:
                alerts += found
            if isinstance(value, float):
                stream = feature.value
                if stream is None:
                    stream = feature.value = self._stream(event.model, StreamKind.VALUE, name)
                found = stream.update(value, eid, ts, now_ms, timed)
                if found:
                    alerts += found
                updates += stream.updates_per_value
            elif self._categories:
                cats = feature.category
                if cats is None:
                    cats = feature.category = self._category(event.model, name)
                alerts += cats.update(value, eid, ts, now_ms)
                updates += 1
        if len(known) > len(values):
            for name, feature in known.items():
                if name not in values:
                    alerts += feature.missing.update(1.0, eid, ts, now_ms)
                    updates += feature.missing.updates_per_value
        prediction = event.prediction
        if isinstance(prediction, float):
            stream = model.prediction
            if stream is None:
                stream = model.prediction = self._stream(
                    event.model, StreamKind.PREDICTION, "prediction"
                )
            alerts += stream.update(prediction, eid, ts, now_ms, timed)
            updates += stream.updates_per_value
        elif prediction is not None and self._categories:
            cats = model.prediction_category
            if cats is None:
                cats = model.prediction_category = self._category(event.model, "prediction")
            alerts += cats.update(prediction, eid, ts, now_ms)
            updates += 1
        return self._result(alerts, updates)

    def _new_features(
        self, event: FeatureEvent, known: dict[str, FeatureStreams]
    ) -> Rejection | None:
        """Add the event's features the model has not seen, or refuse them all (the limit)."""
        new = [name for name in event.features if name not in known]
        if len(known) + len(new) > self._limits.max_streams_per_model:
            return self._too_many(event, len(known), len(new))
        for name in new:
            known[name] = FeatureStreams(self._stream(event.model, StreamKind.MISSING_RATE, name))
        return None

    def _result(self, alerts: list[Alert], updates: int) -> Processed:
        """What a feature or outcome event did. Most fire nothing: their result is one shared
        per update count (never mutated, like :data:`_NOTHING`), since building a frozen
        record costs about a microsecond, on the order of a detector update."""
        if alerts:
            return Processed(alerts, None, updates)
        quiet = self._quiet.get(updates)
        if quiet is None:
            quiet = self._quiet[updates] = Processed([], None, updates)
        return quiet

    def _category(self, model: str, name: str) -> CategoryStream:
        return CategoryStream(StreamId(model, StreamKind.CATEGORY, name), self._settings.categories)

    def _too_many(self, event: FeatureEvent, known: int, new: int) -> Rejection:
        limit = self._limits.max_streams_per_model
        return Rejection(
            Reason.TOO_MANY_STREAMS,
            f"features: model {event.model!r} tracks {known} features and this event adds "
            f"{new} more, over limits.max_streams_per_model={limit}",
            model=event.model,
        )

    def _outcome(self, model: ModelStreams, event: OutcomeEvent, now_ms: int) -> Processed:
        eid, ts = event.id, event.ts
        stream = model.errors.get(event.error_name)
        if stream is None:
            stream = model.errors[event.error_name] = self._stream(
                event.model, StreamKind.ERROR, event.error_name
            )
        alerts = list(stream.update(event.error, eid, ts, now_ms))
        updates = stream.updates_per_value
        if event.correct is not None:
            correctness = model.correctness
            if correctness is None:
                correctness = model.correctness = self._stream(
                    event.model, StreamKind.CORRECTNESS, "correctness"
                )
            alerts += correctness.update(1.0 if event.correct else 0.0, eid, ts, now_ms)
            updates += correctness.updates_per_value
        return self._result(alerts, updates)

    def _label(self, model: ModelStreams, event: LabelEvent, now_ms: int, source: int) -> Processed:
        join = model.labels
        if join is None:
            join = model.labels = LabelJoin(event.model, self._labels, self._label_observer)
        dead = join.advance(event.ts)
        joined = join.label(event, source)
        if isinstance(joined, Rejection):
            return Processed(rejection=joined, dead_labels=dead)
        if joined is None:
            return Processed(dead_labels=dead) if dead else _NOTHING
        alerts, updates = self._joined(model, event.model, joined, now_ms)
        return Processed(alerts, None, updates, dead)

    def _predicted(
        self, model: ModelStreams, event: FeatureEvent, now_ms: int, result: Processed
    ) -> Processed:
        """A feature event of a model that receives labels: its prediction joins or waits."""
        join = model.labels
        assert join is not None
        dead = join.advance(event.ts)
        stopped = join.stopped(now_ms)
        if stopped is not None:
            result = Processed([*result.alerts, stopped], None, result.updates)
        prediction = event.prediction
        if event.id is None or prediction is None:
            return Processed(result.alerts, None, result.updates, dead) if dead else result
        joined = join.prediction(event.id, prediction, event.ts)
        if isinstance(joined, DeadLabel):
            dead = (*dead, joined)
        elif joined is not None:
            alerts, updates = self._joined(model, event.model, joined, now_ms)
            return Processed(result.alerts + alerts, None, result.updates + updates, dead)
        return Processed(result.alerts, None, result.updates, dead) if dead else result

    def _joined(
        self, model: ModelStreams, name: str, joined: Joined, now_ms: int
    ) -> tuple[list[Alert], int]:
        """A joined pair feeds the streams an outcome with ``y_true`` and ``y_pred`` would."""
        outcome = OutcomeEvent(name, joined.ts, joined.error, "error", joined.correct, joined.id)
        result = self._outcome(model, outcome, now_ms)
        return result.alerts, result.updates

    @property
    def models(self) -> list[str]:
        return list(self._models)

    def drifting(self) -> dict[str, int]:
        """Streams in drift (an active drift alert) per model that has any, for the gauge."""
        counts = {}
        for name, model in self._models.items():
            episodes = model.episodes
            if episodes is not None and episodes.active:
                n = episodes.drifting()
                if n:
                    counts[name] = n
        return counts

    def stream_counts(self) -> dict[StreamKind, int]:
        """Streams tracked, by kind (for the streams gauge)."""
        counts = dict.fromkeys(StreamKind, 0)
        for stream in self.streams():
            counts[stream.id.kind] += 1
        return counts

    def streams(self, models: Iterable[str] | None = None) -> Iterable[Stream | CategoryStream]:
        for name in self._models if models is None else models:
            model = self._models.get(name)
            if model is None:
                continue
            for feature in model.features.values():
                yield feature.missing
                if feature.value is not None:
                    yield feature.value
                if feature.category is not None:
                    yield feature.category
            if model.prediction is not None:
                yield model.prediction
            if model.prediction_category is not None:
                yield model.prediction_category
            yield from model.errors.values()
            if model.correctness is not None:
                yield model.correctness

    def forget(self, models: Iterable[str]) -> None:
        """Drop the state of models this process no longer owns (partitions revoked)."""
        for name in models:
            self._models.pop(name, None)

    def snapshot(self, models: Iterable[str] | None = None) -> bytes:
        """Encode the state of ``models`` (default: all) for :meth:`restore`."""
        names = list(self._models) if models is None else models
        body = {name: encode_model(self._models[name]) for name in names if name in self._models}
        return state.dumps({"version": SNAPSHOT_VERSION, "models": body})

    def restore(self, data: bytes, only: Iterable[str] | None = None) -> Restored:
        """Load the models of a snapshot, replacing any state held for them.

        Each model is validated on its own (types and ranges of every field, detector state
        included): a model that fails holds no state afterwards, and is listed in
        :attr:`Restored.rejected` with the reason, while the others restore. Raises
        :class:`StateError` only when the snapshot as a whole is unreadable (not JSON, of an
        unknown version, without a ``models`` mapping) or carries a model outside ``only``
        (a checkpoint record may restore its own model and no other).
        """
        body = state.loads(data)
        version = body.get("version") if isinstance(body, dict) else None
        if version not in (snapshot_v1.VERSION, SNAPSHOT_VERSION):
            raise StateError("snapshot: unknown format or version")
        models = body.get("models")
        if not isinstance(models, dict):
            raise StateError("snapshot: 'models' must be a mapping")
        if version == snapshot_v1.VERSION:
            models = {name: upgraded(m) for name, m in models.items()}
        if only is not None and not set(models) <= set(only):
            raise StateError(f"snapshot carries other models: {sorted(set(models))[:3]}")
        restored: list[str] = []
        rejected: list[RejectedModel] = []
        for name, encoded in models.items():
            try:
                self._models[name] = self._decode_model(name, encoded)
            except StateError as exc:
                self._models.pop(name, None)
                rejected.append(RejectedModel(name, str(exc)))
            else:
                restored.append(name)
        return Restored(tuple(restored), tuple(rejected))

    def _decode_model(self, name: str, encoded: Any) -> ModelStreams:
        """One model's record, checked throughout; StateError names the first fault."""
        where = f"model {name!r}"
        (
            features,
            prediction,
            errors,
            correctness,
            arrival,
            labels,
            prediction_category,
            episodes,
        ) = state.named(encoded, MODEL_FIELDS, where)
        if type(features) is not dict or type(errors) is not dict:
            raise StateError(f"{where}: features and errors must be mappings")
        model = ModelStreams()
        for fname, encoded_feature in features.items():
            model.features[fname] = self._decode_feature(name, fname, encoded_feature)
        if prediction is not None:
            model.prediction = self._restored(name, StreamKind.PREDICTION, "prediction", prediction)
        for ename, encoded_error in errors.items():
            if ename not in _ERROR_STREAMS:
                raise StateError(f"{where}: unknown error stream {ename[:40]!r}")
            model.errors[ename] = self._restored(name, StreamKind.ERROR, ename, encoded_error)
        if correctness is not None:
            model.correctness = self._restored(
                name, StreamKind.CORRECTNESS, "correctness", correctness
            )
        if arrival is not None and self._arrival is not None:
            model.arrival = self._arrival.restore(name, arrival)
        if labels is not None or (self._labels.models and self._labels.joins_from_start(name)):
            model.labels = LabelJoin(name, self._labels, self._label_observer)
        if labels is not None and model.labels is not None:
            model.labels.restore(labels, where)
        if prediction_category is not None:
            model.prediction_category = self._restored_category(
                name, "prediction", prediction_category
            )
        if episodes is not None:
            model.episodes = lifecycle.decode(
                name,
                episodes,
                functools.partial(stream_of, model),
                stream_count(model) + ARRIVAL_ENTRIES,
            )
        return model

    def _decode_feature(self, model: str, name: str, encoded: Any) -> FeatureStreams:
        where = f"model {model!r}, feature {name[:40]!r}"
        value, missing, category = state.named(encoded, FEATURE_FIELDS, where)
        feature = FeatureStreams(self._restored(model, StreamKind.MISSING_RATE, name, missing))
        if value is not None:
            feature.value = self._restored(model, StreamKind.VALUE, name, value)
        if category is not None:
            feature.category = self._restored_category(model, name, category)
        return feature

    def _restored_category(self, model: str, name: str, values: Any) -> CategoryStream | None:
        """None when category streams are off (the state is dropped, as on a restart)."""
        if not self._categories:
            return None
        stream = self._category(model, name)
        stream.restore(values)
        return stream

    def _restored(self, model: str, kind: StreamKind, name: str, values: Any) -> Stream:
        stream = self._stream(model, kind, name)
        stream.restore(values)
        return stream
