"""Prometheus metrics of the worker, on an injected registry.

The worker calls these methods once per *batch* (or per stream touched by a
batch), never per feature, so instrumentation stays off the hot path: label
children are cached, and per-stream series are bounded by
:class:`StreamSeries`. Every metric is documented in docs/operations.md.

Cardinality is bounded on purpose. A producer bug that invents model ids must
not make Prometheus the victim: beyond ``max_models`` distinct models the
``model`` label reads ``__other__``, and at most ``max_stream_series`` streams
export per-stream gauges.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from streamproc import __version__
from streamproc.labels import LABEL_DELAY_BUCKETS, LabelTally
from streamproc.settings import Settings

OTHER_MODEL = "__other__"
"""The ``model`` label of every model beyond the first ``max_models`` seen."""

DEFAULT_MAX_MODELS = 500

EVENT_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Event time to processed: 1 ms (keeping up) to 1 h (replaying a backlog)."""

PROCESSING_BUCKETS = (
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
"""Per-message processing: a few microseconds (one small event) to seconds (a big array)."""

CHECKPOINT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

StreamKey = tuple[str, str, str]
"""(model, kind, stream name): one stream's identity."""


class StreamSeries:
    """Chooses which streams export per-stream gauges, at most ``capacity`` of them.

    Policy: the most recently alerting streams first, the rest of the room
    filled by the first streams seen. A stream that alerts always gets in; to
    make room it evicts the earliest admitted stream that never alerted, or
    else the stream whose last alert is oldest. An operator thus always sees
    the streams that drift now, and a steady set of quiet ones as a baseline.
    ``on_evict`` is called with every evicted stream so its series can be removed.
    """

    def __init__(self, capacity: int, on_evict: Callable[[StreamKey], None]) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._on_evict = on_evict
        self._quiet: OrderedDict[StreamKey, None] = OrderedDict()
        self._alerting: OrderedDict[StreamKey, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._quiet) + len(self._alerting)

    def __contains__(self, key: object) -> bool:
        return key in self._alerting or key in self._quiet

    def seen(self, key: StreamKey) -> bool:
        """Admit ``key`` if there is room; True when it exports."""
        if key in self:
            return True
        if len(self) < self.capacity:
            self._quiet[key] = None
            return True
        return False

    def alerted(self, key: StreamKey) -> None:
        """Admit or refresh ``key`` as the most recently alerting stream."""
        if self.capacity == 0:
            return
        if key in self._alerting:
            self._alerting.move_to_end(key)
            return
        if key in self._quiet:
            del self._quiet[key]
        elif len(self) >= self.capacity:
            self._evict()
        self._alerting[key] = None

    def _evict(self) -> None:
        victims = self._quiet if self._quiet else self._alerting
        key, _ = victims.popitem(last=False)
        self._on_evict(key)


def _le(bound: float) -> str:
    """A bucket's ``le`` label as prometheus_client writes it (repr; Go's +Inf)."""
    return "+Inf" if bound == math.inf else repr(bound)


class BatchHistogram(Collector):
    """A histogram that takes a whole batch per call, for the per-event hot path.

    ``prometheus_client.Histogram.observe`` costs about 2 us (a lock per value);
    a batch of 1,000 events would spend milliseconds on bookkeeping. Here a
    batch is binned without a lock and merged under one, and the exposition is
    the same as a Histogram's (``_bucket``, ``_count``, ``_sum``).
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._upper = (*sorted(float(b) for b in buckets), math.inf)
        self._counts = [0] * len(self._upper)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        """Observe each value; negatives count as 0 (clock skew, not time travel)."""
        upper = self._upper
        counts = [0] * len(upper)
        total = 0.0
        for value in values:
            clamped = value if value > 0.0 else 0.0
            counts[bisect_left(upper, clamped)] += 1
            total += clamped
        self._merge(counts, total)

    def observe_repeated(self, value: float, count: int) -> None:
        """Observe ``value`` ``count`` times."""
        counts = [0] * len(self._upper)
        counts[bisect_left(self._upper, value)] = count
        self._merge(counts, value * count)

    def observe_binned(self, counts: list[int], total: float) -> None:
        """Merge values already binned by these buckets (one count per bound, then +Inf)."""
        if len(counts) != len(self._upper):
            raise ValueError(f"expected {len(self._upper)} bucket counts, got {len(counts)}")
        self._merge(counts, total)

    def _merge(self, counts: list[int], total: float) -> None:
        with self._lock:
            for index, count in enumerate(counts):
                if count:
                    self._counts[index] += count
            self._sum += total

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip(self._upper, counts, strict=True):
            cumulative += count
            buckets.append((_le(bound), float(cumulative)))
        yield HistogramMetricFamily(self.name, self.documentation, buckets, total)


class Metrics:
    """All metrics of one worker process, registered on ``registry``.

    Tests pass a fresh :class:`CollectorRegistry`; the worker passes the one
    :class:`streamproc.health.HealthServer` serves. ``clock`` is wall-clock
    seconds (``time.time``), used only for the checkpoint timestamp.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_stream_series: int = 1_000,
        max_models: int = DEFAULT_MAX_MODELS,
        version: str = __version__,
        config_hash: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_models < 1:
            raise ValueError(f"max_models must be >= 1, got {max_models}")
        self.max_models = max_models
        self._clock = clock
        self._models: set[str] = set()
        self._events: dict[tuple[str, str], Counter] = {}
        self._rejections: dict[tuple[str, str], Counter] = {}
        self._misrouted: dict[tuple[str, str], Counter] = {}
        self._stream_gauges: dict[StreamKey, tuple[Gauge, Gauge]] = {}
        self._lag_keys: set[tuple[str, str]] = set()
        self._drifting_labels: set[str] = set()
        self._streams = StreamSeries(max_stream_series, self._remove_stream)
        self._register(registry)
        self._build_info.labels(version=version, config_hash=config_hash).set(1)
        # Until the first checkpoint, age counts from the start: a worker that never
        # checkpoints goes stale like one that stopped checkpointing.
        self._checkpoint_last.set(clock())

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        registry: CollectorRegistry,
        *,
        max_models: int = DEFAULT_MAX_MODELS,
        clock: Callable[[], float] = time.time,
    ) -> Metrics:
        """The worker's metrics: caps from settings, build info from the config in force."""
        return cls(
            registry,
            max_stream_series=settings.metrics.max_stream_series,
            max_models=max_models,
            config_hash=settings.config_hash(),
            clock=clock,
        )

    def _register(self, r: CollectorRegistry) -> None:
        self._events_total = Counter(
            "streamproc_events", "Events consumed.", ["topic", "model"], registry=r
        )
        self._rejected = Counter(
            "streamproc_rejected_messages",
            "Messages sent to the dead-letter topic.",
            ["topic", "reason"],
            registry=r,
        )
        self._wrong_partition = Counter(
            "streamproc_wrong_partition_events",
            "Events rejected for arriving on another partition than their model's "
            "(docs/partitioning.md).",
            ["topic", "model"],
            registry=r,
        )
        self._models_tracked = Gauge(
            "streamproc_models", "Models this worker tracks now.", registry=r
        )
        self._evicted = Counter(
            "streamproc_models_evicted",
            "Models forgotten for being idle (limits.model_idle_seconds).",
            registry=r,
        )
        self._updates = Counter(
            "streamproc_detector_updates", "Values fed to drift detectors.", registry=r
        )
        self._internal_errors = Counter(
            "streamproc_internal_errors",
            "Exceptions caught while processing, by stage; the work they hit is skipped.",
            ["stage"],
            registry=r,
        )
        self._model_resets = Counter(
            "streamproc_model_resets",
            "Models whose state was dropped (to start afresh) after an internal error.",
            registry=r,
        )
        self._alerts = Counter(
            "streamproc_alerts", "Drift alerts raised.", ["model", "kind", "detector"], registry=r
        )
        self._stream_count = Gauge(
            "streamproc_streams", "Streams tracked by this worker.", ["kind"], registry=r
        )
        self._drifting = Gauge(
            "streamproc_model_streams_in_drift",
            "Streams of a model with an active drift alert (docs/alerts.md, Lifecycle).",
            ["model"],
            registry=r,
        )
        stream_labels = ["model", "kind", "stream"]
        self._estimate = Gauge(
            "streamproc_stream_estimate",
            "Detector's current estimate of the stream's mean (bounded set of streams).",
            stream_labels,
            registry=r,
        )
        self._window = Gauge(
            "streamproc_stream_window_size",
            "Values in the detector's window (bounded set of streams).",
            stream_labels,
            registry=r,
        )
        self._latency = BatchHistogram(
            "streamproc_event_latency_seconds",
            "Event time to processed.",
            EVENT_LATENCY_BUCKETS,
            r,
        )
        self._processing = BatchHistogram(
            "streamproc_message_processing_seconds",
            "Processing time per message.",
            PROCESSING_BUCKETS,
            r,
        )
        self._lag = Gauge(
            "streamproc_consumer_lag_messages",
            "Log end offset minus the consumer's position.",
            ["topic", "partition"],
            registry=r,
        )
        self._checkpoint_last = Gauge(
            "streamproc_checkpoint_last_success_timestamp_seconds",
            "Unix time of the last successful detector-state checkpoint.",
            registry=r,
        )
        self._checkpoint_duration = Histogram(
            "streamproc_checkpoint_duration_seconds",
            "Time taken by a successful checkpoint.",
            buckets=CHECKPOINT_BUCKETS,
            registry=r,
        )
        self._checkpoint_invalid = Counter(
            "streamproc_checkpoint_records_invalid",
            "Checkpoint records that failed validation on restore (their model starts afresh).",
            registry=r,
        )
        self._build_info = Gauge(
            "streamproc_build_info",
            "Always 1; labels name the version and configuration in force.",
            ["version", "config_hash"],
            registry=r,
        )
        self._ready = Gauge(
            "streamproc_ready", "1 when the worker is ready (see /readyz), else 0.", registry=r
        )
        self._register_labels(r)

    def _register_labels(self, r: CollectorRegistry) -> None:
        """The label join's counts (docs/events.md, "Labels")."""
        self._label_joins = Counter(
            "streamproc_label_joins", "Labels joined with their prediction.", ["model"], registry=r
        )
        self._label_expired = Counter(
            "streamproc_label_expired",
            "Predictions (side=prediction) and labels (side=label, also dead-lettered) that "
            "waited labels.ttl_seconds unjoined.",
            ["model", "side"],
            registry=r,
        )
        self._label_dropped = Counter(
            "streamproc_label_dropped",
            "Pending predictions and labels dropped to keep labels.max_pending_* (oldest "
            "first), and duplicate labels.",
            ["model", "side"],
            registry=r,
        )
        self._label_delay = BatchHistogram(
            "streamproc_label_delay_seconds",
            "Prediction ts to label ts, per joined label.",
            LABEL_DELAY_BUCKETS,
            r,
        )

    def labels_counted(self, tally: LabelTally) -> None:
        """Add a drained :class:`~streamproc.labels.LabelTally` (from the gauge timer)."""
        for model, n in tally.joins.items():
            self._label_joins.labels(self.model_label(model)).inc(n)
        for (model, side), n in tally.expiries.items():
            self._label_expired.labels(self.model_label(model), side).inc(n)
        for (model, side), n in tally.drops.items():
            self._label_dropped.labels(self.model_label(model), side).inc(n)
        if any(tally.delay_counts):
            self._label_delay.observe_binned(tally.delay_counts, tally.delay_sum)

    def model_label(self, model: str) -> str:
        """``model`` itself for the first ``max_models`` models seen, else ``__other__``."""
        if model in self._models:
            return model
        if len(self._models) < self.max_models:
            self._models.add(model)
            return model
        return OTHER_MODEL

    def events_consumed(self, topic: str, model: str, count: int = 1) -> None:
        """Count ``count`` decoded events of one model (call once per model per batch)."""
        key = (topic, self.model_label(model))  # by label: unknown models share one entry
        child = self._events.get(key)
        if child is None:
            child = self._events[key] = self._events_total.labels(*key)
        child.inc(count)

    def message_rejected(self, topic: str, reason: str, count: int = 1) -> None:
        """Count messages sent to the dead-letter topic; ``reason`` is a Reason code."""
        key = (topic, str(reason))
        child = self._rejections.get(key)
        if child is None:
            child = self._rejections[key] = self._rejected.labels(topic=topic, reason=reason)
        child.inc(count)

    def wrong_partition(self, topic: str, model: str, count: int = 1) -> None:
        """Count events of ``model`` rejected with ``wrong_partition`` (label capped)."""
        key = (topic, self.model_label(model))
        child = self._misrouted.get(key)
        if child is None:
            child = self._misrouted[key] = self._wrong_partition.labels(*key)
        child.inc(count)

    def models_tracked(self, count: int) -> None:
        """Set the number of models the worker holds state for (``limits.max_models``)."""
        self._models_tracked.set(count)

    def models_evicted(self, count: int) -> None:
        """Count models forgotten for being idle."""
        self._evicted.inc(count)

    def internal_error(self, stage: str, *, reset: bool) -> None:
        """Count one exception caught while processing (``stage``: decode, event, tick,
        restore, snapshot, send) and, with ``reset``, the model state it cost."""
        self._internal_errors.labels(stage=stage).inc()
        if reset:
            self._model_resets.inc()

    def detector_updates(self, count: int) -> None:
        """Count values fed to detectors by one batch."""
        self._updates.inc(count)

    def alert_raised(self, model: str, kind: str, detector: str, stream: str) -> None:
        """Count one drift alert and give its stream a per-stream series."""
        self._alerts.labels(model=self.model_label(model), kind=kind, detector=detector).inc()
        self._streams.alerted((model, str(kind), stream))

    def streams_tracked(self, kind: str, count: int) -> None:
        """Set the number of streams of one kind the worker tracks now."""
        self._stream_count.labels(kind=kind).set(count)

    def streams_in_drift(self, counts: Mapping[str, int]) -> None:
        """Set each model's streams in drift (models past the cap add up in ``__other__``);
        a model that was in drift and no longer is reads 0."""
        by_label: dict[str, int] = {}
        for model, count in counts.items():
            label = self.model_label(model)
            by_label[label] = by_label.get(label, 0) + count
        for label in self._drifting_labels - by_label.keys():
            self._drifting.labels(model=label).set(0)
        for label, count in by_label.items():
            self._drifting.labels(model=label).set(count)
        self._drifting_labels |= by_label.keys()

    def wants_stream(self, model: str, kind: str, stream: str) -> bool:
        """True when the stream exports gauges (admitting it while there is room).

        Lets the worker skip reading detector state that would not be exported.
        """
        return self._streams.seen((model, str(kind), stream))

    def stream_state(
        self, model: str, kind: str, stream: str, *, estimate: float, window_size: float
    ) -> None:
        """Export one stream's detector state, if the stream is in the bounded set."""
        key = (model, str(kind), stream)
        gauges = self._stream_gauges.get(key)
        if gauges is None:
            if not self._streams.seen(key):
                return
            gauges = self._stream_gauges[key] = (
                self._estimate.labels(*key),
                self._window.labels(*key),
            )
        gauges[0].set(estimate)
        gauges[1].set(window_size)

    def _remove_stream(self, key: StreamKey) -> None:
        self._stream_gauges.pop(key, None)
        for gauge in (self._estimate, self._window):
            # Older prometheus_client raises on a series never set (alerted, state not yet read).
            with contextlib.suppress(KeyError):
                gauge.remove(*key)

    def event_latencies(self, seconds: Iterable[float]) -> None:
        """Observe event-time-to-processed latencies; clock skew below zero counts as 0."""
        self._latency.observe_many(seconds)

    def messages_processed(self, elapsed: float, count: int = 1) -> None:
        """Observe a batch of ``count`` messages that took ``elapsed`` seconds in all.

        Each message is recorded at the batch mean: the worker times batches,
        not messages, so per-message timing costs nothing extra.
        """
        if count > 0:
            self._processing.observe_repeated(max(elapsed, 0.0) / count, count)

    def consumer_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Replace the lag of every assigned (topic, partition).

        Partitions missing from ``lags`` (revoked in a rebalance) lose their
        series, so two workers never both report one partition.
        """
        keys = {(topic, str(partition)) for topic, partition in lags}
        for gone in self._lag_keys - keys:
            self._lag.remove(*gone)
        for (topic, partition), lag in lags.items():
            self._lag.labels(topic, str(partition)).set(lag)
        self._lag_keys = keys

    def checkpoint_succeeded(self, duration: float) -> None:
        """Record a successful checkpoint that took ``duration`` seconds."""
        self._checkpoint_duration.observe(duration)
        self._checkpoint_last.set(self._clock())

    def checkpoint_records_invalid(self, count: int) -> None:
        """Count checkpoint records a restore set aside as invalid."""
        self._checkpoint_invalid.inc(count)

    def set_ready(self, ready: bool) -> None:
        """Mirror readiness; :class:`streamproc.health.Health` calls this on every change."""
        self._ready.set(1 if ready else 0)
