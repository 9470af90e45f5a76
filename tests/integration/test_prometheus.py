"""A real Prometheus scrapes the health server, and reads streamproc's metrics back.

It also evaluates every dashboard query and alert rule, which catches PromQL a
regex cannot (a wrong function arity, a label in the wrong place).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamproc.health import Health, HealthServer
from tests.integration.prometheus_fixtures import (  # noqa: F401 (a fixture)
    PrometheusFactory,
    prometheus_factory,
)
from tests.metrics_samples import populated_metrics
from tests.promtool import PROMETHEUS_DIR
from tests.unit.test_grafana import expressions


@pytest.fixture
def worker_endpoint() -> Iterator[HealthServer]:
    """The health server of a worker whose metrics hold sample data."""
    registry = CollectorRegistry()
    populated_metrics(registry, now=time.time())
    with HealthServer(Health(), registry, host="127.0.0.1", port=0) as server:
        yield server


def values(result: list[dict[str, Any]]) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


def test_prometheus_scrapes_streamproc_metrics(
    prometheus_factory: PrometheusFactory,  # noqa: F811
    worker_endpoint: HealthServer,
) -> None:
    prometheus = prometheus_factory([f"127.0.0.1:{worker_endpoint.port}"])
    result = prometheus.wait_for('streamproc_events_total{topic="features", model="churn"}')
    assert values(result) == [100.0]
    assert result[0]["metric"]["job"] == "streamproc"
    assert values(prometheus.wait_for('up{job="streamproc"}')) == [1.0]
    lag = prometheus.wait_for("sum(streamproc_consumer_lag_messages)")
    assert values(lag) == [12.0]
    age = prometheus.wait_for("time() - streamproc_checkpoint_last_success_timestamp_seconds")
    assert 0 <= values(age)[0] < 120


def test_dashboard_queries_and_alert_rules_evaluate(
    prometheus_factory: PrometheusFactory,  # noqa: F811
    worker_endpoint: HealthServer,
) -> None:
    prometheus = prometheus_factory(
        [f"127.0.0.1:{worker_endpoint.port}"], rule_files=[PROMETHEUS_DIR / "rules.yml"]
    )
    prometheus.wait_for("streamproc_build_info")
    for expr in expressions():
        answer = prometheus.query(expr)
        assert answer["status"] == "success", f"{expr}: {answer}"

    def evaluated(_: object) -> bool:
        groups = prometheus.api("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert all(rule.get("health") != "err" for rule in rules), rules
        return len(rules) == 6 and all(rule.get("health") == "ok" for rule in rules)

    prometheus.wait_for("vector(1)", evaluated)
