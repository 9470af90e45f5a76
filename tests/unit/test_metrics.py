from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamproc import __version__
from streamproc.metrics import (
    EVENT_LATENCY_BUCKETS,
    OTHER_MODEL,
    BatchHistogram,
    Metrics,
    StreamSeries,
)
from streamproc.settings import Settings
from tests.metrics_samples import populated_metrics
from tests.promtool import REPO, promtool


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def sample_counts(registry: CollectorRegistry) -> Counter[str]:
    """Exported samples per sample name, read back from the text exposition."""
    counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposition(registry)):
        for sample in family.samples:
            counts[sample.name] += 1
    return counts


EXPECTED_TYPES = {
    "streamproc_events": "counter",
    "streamproc_rejected_messages": "counter",
    "streamproc_detector_updates": "counter",
    "streamproc_alerts": "counter",
    "streamproc_streams": "gauge",
    "streamproc_model_streams_in_drift": "gauge",
    "streamproc_stream_estimate": "gauge",
    "streamproc_stream_window_size": "gauge",
    "streamproc_event_latency_seconds": "histogram",
    "streamproc_message_processing_seconds": "histogram",
    "streamproc_consumer_lag_messages": "gauge",
    "streamproc_checkpoint_last_success_timestamp_seconds": "gauge",
    "streamproc_checkpoint_duration_seconds": "histogram",
    "streamproc_build_info": "gauge",
    "streamproc_ready": "gauge",
}


def test_every_documented_metric_is_exported_with_its_type() -> None:
    registry = CollectorRegistry()
    populated_metrics(registry)
    types = {f.name: f.type for f in text_string_to_metric_families(exposition(registry))}
    for name, kind in EXPECTED_TYPES.items():
        assert types.get(name) == kind, name


def test_every_exported_metric_is_documented() -> None:
    registry = CollectorRegistry()
    populated_metrics(registry)
    docs = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for family in text_string_to_metric_families(exposition(registry)):
        if family.name.endswith("_created"):
            continue
        exported = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{exported}`" in docs, exported


def test_exposition_passes_promtool_check_metrics() -> None:
    registry = CollectorRegistry()
    populated_metrics(registry)
    result = promtool("check", "metrics", stdin=generate_latest(registry))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", "lint findings"


def test_counters_count_per_batch() -> None:
    registry = CollectorRegistry()
    populated_metrics(registry)
    value = registry.get_sample_value
    assert value("streamproc_events_total", {"topic": "features", "model": "churn"}) == 100
    assert value("streamproc_events_total", {"topic": "outcomes", "model": "churn"}) == 7
    reason = {"topic": "features", "reason": "invalid_json"}
    assert value("streamproc_rejected_messages_total", reason) == 1
    assert value("streamproc_detector_updates_total") == 1_234
    alert = {"model": "churn", "kind": "value", "detector": "adwin"}
    assert value("streamproc_alerts_total", alert) == 1
    assert value("streamproc_streams", {"kind": "value"}) == 12
    assert value("streamproc_build_info", {"version": __version__, "config_hash": "abc123"}) == 1
    assert value("streamproc_ready") == 1


def test_model_label_is_capped() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_models=2)
    for model in ("a", "b", "c", "d", "a"):
        metrics.events_consumed("features", model, 10)
    metrics.alert_raised("e", "value", "adwin", "x")
    value = registry.get_sample_value
    assert value("streamproc_events_total", {"topic": "features", "model": "a"}) == 20
    assert value("streamproc_events_total", {"topic": "features", "model": OTHER_MODEL}) == 20
    alert = {"model": OTHER_MODEL, "kind": "value", "detector": "adwin"}
    assert value("streamproc_alerts_total", alert) == 1
    assert sample_counts(registry)["streamproc_events_total"] == 3


def test_stream_kinds_and_reasons_may_be_str_enums() -> None:
    from streamproc.domain import StreamKind

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.alert_raised("m", StreamKind.MISSING_RATE, "adwin", "age")
    metrics.streams_tracked(StreamKind.MISSING_RATE, 3)
    alert = {"model": "m", "kind": "missing_rate", "detector": "adwin"}
    assert registry.get_sample_value("streamproc_alerts_total", alert) == 1
    assert registry.get_sample_value("streamproc_streams", {"kind": "missing_rate"}) == 3


def test_100k_streams_keep_per_stream_series_bounded() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_stream_series=1_000)
    for i in range(100_000):
        model, stream = f"model-{i % 37}", f"feature-{i}"
        metrics.stream_state(model, "value", stream, estimate=float(i), window_size=32)
        if i % 97 == 0:
            metrics.alert_raised(model, "value", "adwin", stream)
    counts = sample_counts(registry)
    assert counts["streamproc_stream_estimate"] <= 1_000
    assert counts["streamproc_stream_window_size"] <= 1_000
    assert counts["streamproc_stream_estimate"] == counts["streamproc_stream_window_size"]
    # Admitted streams (their gauges appear at their next state read): the set is full.
    assert len(metrics._streams) == 1_000


def test_alerting_streams_displace_quiet_ones_then_the_least_recent() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_stream_series=2)

    def exported() -> set[str]:
        names = set()
        for family in text_string_to_metric_families(exposition(registry)):
            if family.name == "streamproc_stream_estimate":
                names |= {s.labels["stream"] for s in family.samples}
        return names

    def touch(*streams: str) -> None:
        for s in streams:
            metrics.stream_state("m", "value", s, estimate=1.0, window_size=1)

    touch("q1", "q2", "q3")
    assert exported() == {"q1", "q2"}  # first seen fill the room
    metrics.alert_raised("m", "value", "adwin", "a1")
    touch("a1")
    assert exported() == {"q2", "a1"}  # the earliest quiet stream made room
    metrics.alert_raised("m", "value", "adwin", "q2")  # a quiet stream alerts: no eviction
    metrics.alert_raised("m", "value", "adwin", "a2")
    touch("a2")
    assert exported() == {"q2", "a2"}  # a1 alerted least recently
    assert not metrics.wants_stream("m", "value", "q1")
    assert metrics.wants_stream("m", "value", "a2")


def test_zero_capacity_exports_no_stream_series() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_stream_series=0)
    metrics.alert_raised("m", "value", "adwin", "s")
    metrics.stream_state("m", "value", "s", estimate=1.0, window_size=1)
    assert sample_counts(registry)["streamproc_stream_estimate"] == 0


def test_stream_series_rejects_negative_capacity() -> None:
    with pytest.raises(ValueError, match="capacity"):
        StreamSeries(-1, lambda key: None)


def test_consumer_lag_drops_revoked_partitions() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.consumer_lag({("features", 0): 5, ("features", 1): 7})
    metrics.consumer_lag({("features", 1): 9, ("outcomes", 0): 1})
    value = registry.get_sample_value
    assert (
        value("streamproc_consumer_lag_messages", {"topic": "features", "partition": "0"}) is None
    )
    assert value("streamproc_consumer_lag_messages", {"topic": "features", "partition": "1"}) == 9
    assert value("streamproc_consumer_lag_messages", {"topic": "outcomes", "partition": "0"}) == 1


def test_checkpoint_timestamp_starts_at_startup_and_moves_on_success() -> None:
    clock = FakeClock(1000.0)
    registry = CollectorRegistry()
    metrics = Metrics(registry, clock=clock)
    name = "streamproc_checkpoint_last_success_timestamp_seconds"
    assert registry.get_sample_value(name) == 1000.0
    clock.now = 1010.0
    metrics.checkpoint_succeeded(0.25)
    assert registry.get_sample_value(name) == 1010.0
    assert registry.get_sample_value("streamproc_checkpoint_duration_seconds_count") == 1
    assert registry.get_sample_value("streamproc_checkpoint_duration_seconds_sum") == 0.25


def test_histograms_take_batches() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.event_latencies([-0.5, 0.002, 7200.0])  # skew, fresh, older than the last bucket
    metrics.messages_processed(0.5, 1_000)
    metrics.messages_processed(1.0, 0)
    value = registry.get_sample_value
    assert value("streamproc_event_latency_seconds_count") == 3
    assert value("streamproc_event_latency_seconds_bucket", {"le": "0.001"}) == 1
    assert value("streamproc_event_latency_seconds_bucket", {"le": "3600.0"}) == 2
    assert value("streamproc_message_processing_seconds_count") == 1_000
    assert value("streamproc_message_processing_seconds_bucket", {"le": "0.0005"}) == 1_000
    assert value("streamproc_message_processing_seconds_bucket", {"le": "0.00025"}) == 0


def test_from_settings_takes_caps_and_config_hash() -> None:
    settings = Settings.model_validate({"metrics": {"max_stream_series": 3}})
    registry = CollectorRegistry()
    metrics = Metrics.from_settings(settings, registry)
    labels = {"version": __version__, "config_hash": settings.config_hash()}
    assert registry.get_sample_value("streamproc_build_info", labels) == 1
    for i in range(10):
        metrics.stream_state("m", "value", str(i), estimate=0.0, window_size=0)
    assert sample_counts(registry)["streamproc_stream_estimate"] == 3


def test_max_models_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_models"):
        Metrics(CollectorRegistry(), max_models=0)


def test_batch_histogram_exposes_what_a_client_histogram_would() -> None:
    values = [-1.0, 0.0, 0.0005, 0.001, 0.0011, 2.0, 3599.0, 3600.0, 1e9]
    mine, theirs = CollectorRegistry(), CollectorRegistry()
    BatchHistogram("x_seconds", "X.", EVENT_LATENCY_BUCKETS, mine).observe_many(values)
    reference = Histogram("x_seconds", "X.", buckets=EVENT_LATENCY_BUCKETS, registry=theirs)
    for value in values:
        reference.observe(max(value, 0.0))

    def samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name, s.labels, s.value)
            for f in text_string_to_metric_families(exposition(registry))
            for s in f.samples
            if not s.name.endswith("_created")
        ]

    assert samples(mine) == samples(theirs)


def test_batch_histogram_repeats_one_value() -> None:
    registry = CollectorRegistry()
    BatchHistogram("y_seconds", "Y.", (0.1, 1.0), registry).observe_repeated(0.5, 4)
    assert registry.get_sample_value("y_seconds_bucket", {"le": "0.1"}) == 0
    assert registry.get_sample_value("y_seconds_bucket", {"le": "1.0"}) == 4
    assert registry.get_sample_value("y_seconds_count") == 4
    assert registry.get_sample_value("y_seconds_sum") == 2.0


def test_streams_in_drift_are_capped_by_model_and_drop_to_zero() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_models=1)
    metrics.streams_in_drift({"a": 2, "b": 3, "c": 1})
    value = registry.get_sample_value
    assert value("streamproc_model_streams_in_drift", {"model": "a"}) == 2
    assert value("streamproc_model_streams_in_drift", {"model": OTHER_MODEL}) == 4
    metrics.streams_in_drift({"a": 1})
    assert value("streamproc_model_streams_in_drift", {"model": "a"}) == 1
    assert value("streamproc_model_streams_in_drift", {"model": OTHER_MODEL}) == 0
