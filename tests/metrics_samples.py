"""A :class:`Metrics` with data in every metric, for exposition checks and the Prometheus tests."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamproc.metrics import Metrics


def populated_metrics(registry: CollectorRegistry, *, now: float = 1_700_000_000.0) -> Metrics:
    """Every metric holding some data; ``now`` is the wall clock for the checkpoint time."""
    metrics = Metrics(registry, max_stream_series=10, config_hash="abc123", clock=lambda: now)
    metrics.events_consumed("features", "churn", 100)
    metrics.events_consumed("outcomes", "churn", 7)
    metrics.message_rejected("features", "invalid_json")
    metrics.detector_updates(1_234)
    metrics.alert_raised("churn", "value", "adwin", "age")
    metrics.streams_tracked("value", 12)
    metrics.streams_in_drift({"churn": 2})
    metrics.models_tracked(3)
    metrics.models_evicted(1)
    metrics.wrong_partition("features", "churn")
    metrics.stream_state("churn", "value", "age", estimate=41.5, window_size=320)
    metrics.event_latencies([0.004, 0.2, 12.0])
    metrics.messages_processed(0.01, 100)
    metrics.consumer_lag({("features", 0): 12, ("features", 1): 0})
    metrics.checkpoint_succeeded(0.05)
    metrics.set_ready(True)
    return metrics


def exported_sample_names() -> set[str]:
    """Every sample name a populated Metrics exposes (``_total``, ``_bucket``, ...)."""
    registry = CollectorRegistry()
    populated_metrics(registry)
    text = generate_latest(registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}
