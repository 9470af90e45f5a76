"""The Grafana dashboard queries only metrics streamproc exports, in well-formed PromQL.

The integration test (tests/integration/test_prometheus.py) also has a real
Prometheus evaluate every expression; this one needs no server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.metrics_samples import exported_sample_names

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "streamproc.json"

# Grafana's template variables, replaced by what they expand to.
VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$model": ".*"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
KEYWORDS |= {"and", "or", "unless", "inf", "nan"}
PROMETHEUS_OWN = {"up"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def expressions() -> list[str]:
    """Every panel's PromQL, Grafana variables expanded."""
    exprs = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            exprs.append(expr)
    return exprs


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions,
    keywords, label names or durations."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^{}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\[\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    found = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {name for name in found if name.lower() not in KEYWORDS}


def well_formed(expr: str) -> bool:
    """Brackets balance and nothing is left of Grafana's ``$`` syntax."""
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return all(v == 0 for v in depth.values()) and "$" not in expr


def test_metric_name_parsing() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, job) (rate(a_bucket{model=~".*", x="b c"}[1m])))'
        " / on (job) group_left b_total offset 5m or vector(0) > bool 1e3"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}


def test_every_query_uses_exported_metrics_only() -> None:
    exported = exported_sample_names() | PROMETHEUS_OWN
    for expr in expressions():
        names = metric_names(expr)
        assert names, f"no metric in {expr}"
        assert names <= exported, f"{expr}: unknown {names - exported}"


@pytest.mark.parametrize("expr", expressions())
def test_every_query_is_well_formed(expr: str) -> None:
    assert well_formed(expr), expr


def test_dashboard_covers_what_operators_need() -> None:
    text = " ".join(expressions())
    for needed in (
        "streamproc_events_total",
        "streamproc_consumer_lag_messages",
        "histogram_quantile(0.99, sum by (le) (rate(streamproc_event_latency_seconds_bucket",
        "sum by (model) (increase(streamproc_alerts_total",
        "sum by (reason) (rate(streamproc_rejected_messages_total",
        "topk(10, sum by (model, kind, detector) (increase(streamproc_alerts_total",
        "time() - streamproc_checkpoint_last_success_timestamp_seconds",
        "streamproc_streams",
    ):
        assert needed in text, needed


def test_panels_have_ids_titles_and_fit_the_grid() -> None:
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/streamproc.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http://")
