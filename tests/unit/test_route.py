"""The router's pure parts: parsing, grouping, the Alertmanager payload, retries, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streamproc.cli import main
from streamproc.errors import ConfigError
from streamproc.route.alertmanager import labels, to_alertmanager
from streamproc.route.delivery import (
    Backoff,
    Delivered,
    Failed,
    Outcome,
    Rejected,
    deliver,
    http_outcome,
)
from streamproc.route.grouping import Grouper
from streamproc.route.messages import RoutedAlert, Unroutable, parse
from streamproc.route.metrics import RouteMetrics
from streamproc.route.router import Offsets
from streamproc.route.webhook import signature, verify
from streamproc.settings import env_names, load_settings


def alert_body(
    alert_id: str = "a1",
    *,
    model: str = "m",
    kind: str = "value",
    name: str = "amount",
    **extra: Any,
) -> dict[str, Any]:
    """A worker alert (contract v2), with ``extra`` fields added or replaced."""
    body: dict[str, Any] = {
        "schema_version": 2,
        "alert_id": alert_id,
        "model": model,
        "stream": {"model": model, "kind": kind, "name": name},
        "detector": {"type": "adwin", "params": {}},
        "event_id": "e1",
        "event_ts": 1_700_000_000_000,
        "detected_at": 1_700_000_000_500,
        "events_seen": 1047,
        "change": {
            "mean_before": 1.0,
            "mean_after": 3.0,
            "scale": 1.0,
            "magnitude": 2.0,
            "direction": "up",
            "window": 96,
        },
        "severity": "critical",
    }
    body.update(extra)
    return body


def routed(alert_id: str = "a1", **kwargs: Any) -> RoutedAlert:
    return parse(orjson.dumps(alert_body(alert_id, **kwargs)))


def model_alert(alert_id: str, members: list[Any], **extra: Any) -> RoutedAlert:
    return routed(alert_id, kind="model", name="m", members=members, **extra)


# --- parsing ----------------------------------------------------------------------------------


def test_a_worker_alert_parses_with_its_summary() -> None:
    alert = routed()
    assert (alert.model, alert.kind, alert.stream, alert.detector) == (
        "m",
        "value",
        "amount",
        "adwin",
    )
    assert alert.status == "firing" and alert.resolved_at is None
    assert "model=m value:amount" in alert.summary and "+2.00 sd" in alert.summary


def test_newer_contract_fields_are_understood() -> None:
    resolved = routed(status="resolved", resolved_at=1_700_000_100_000)
    assert (resolved.status, resolved.resolved_at) == ("resolved", 1_700_000_100_000)
    rollup = model_alert(
        "r1", [{"kind": "value", "name": "amount"}, {"stream": {"kind": "error", "name": "loss"}}]
    )
    assert rollup.is_model_alert and rollup.kind == "model"
    assert routed("a1").covered_by(rollup) and routed("a2", kind="error", name="loss").covered_by(
        rollup
    )
    assert not routed("a3", name="age").covered_by(rollup)
    by_id = model_alert("r2", ["a9", {"alert_id": "a8"}])
    assert routed("a9", name="x").covered_by(by_id) and routed("a8", name="y").covered_by(by_id)


@pytest.mark.parametrize(
    "payload", [None, b"", b"{", b"[1]", b'{"alert_id": "x"}', orjson.dumps(alert_body(status="x"))]
)
def test_a_message_that_is_no_alert_is_unroutable(payload: bytes | None) -> None:
    with pytest.raises(Unroutable):
        parse(payload)


def test_delivery_ids_depend_on_alert_id_and_status_only() -> None:
    firing, again = routed("a1"), routed("a1", detected_at=5)
    assert firing.delivery_id == again.delivery_id
    assert firing.delivery_id != routed("a1", status="resolved").delivery_id
    assert firing.delivery_id != routed("a2").delivery_id


# --- grouping ---------------------------------------------------------------------------------


def test_stream_alerts_are_held_for_the_delay_then_released_in_order() -> None:
    grouper: Grouper[str] = Grouper(delay=10.0)
    assert grouper.add("s1", routed("a1"), now=0.0) == []
    assert grouper.add("s2", routed("a2", name="age"), now=1.0) == []
    assert grouper.release(now=9.0) == []
    assert grouper.next_due() == 10.0
    assert grouper.release(now=10.0) == ["s1"]
    assert grouper.release(now=11.0) == ["s2"]
    assert len(grouper) == 0 and grouper.next_due() is None


def test_a_model_alert_within_the_delay_drops_the_stream_alerts_it_covers() -> None:
    grouper: Grouper[str] = Grouper(delay=10.0)
    grouper.add("s1", routed("a1"), now=0.0)
    grouper.add("other-model", routed("b1", model="n"), now=0.0)
    grouper.add("s2", routed("a2", name="age"), now=1.0)
    rollup = model_alert("r1", [{"kind": "value", "name": "amount"}])
    assert grouper.add("model", rollup, now=2.0) == ["s1"]
    # order per model: the model alert waits behind the held alert it does not cover
    assert grouper.release(now=2.0) == []
    released = grouper.release(now=11.0)
    assert sorted(released) == ["model", "other-model", "s2"]
    assert [r for r in released if r != "other-model"] == ["s2", "model"]
    # later alerts of a covered stream, and resolutions of dropped ones, are dropped too
    assert grouper.add("s1-again", routed("a3"), now=12.0) == ["s1-again"]
    assert grouper.add("s1-end", routed("a1", status="resolved"), now=13.0) == ["s1-end"]
    grouper.add("model-end", model_alert("r1", [], status="resolved"), now=14.0)
    assert grouper.add("s1-later", routed("a4"), now=15.0) == []


def test_resolutions_and_model_alerts_are_not_held() -> None:
    grouper: Grouper[str] = Grouper(delay=10.0)
    grouper.add("end", routed("a0", status="resolved"), now=0.0)
    grouper.add("model", model_alert("r1", []), now=0.0)
    assert grouper.release(now=0.0) == ["end", "model"]


# --- Alertmanager payload ---------------------------------------------------------------------


def test_alertmanager_alert_has_the_documented_labels_and_times() -> None:
    alert = routed()
    entry = to_alertmanager(alert, ttl_seconds=3600, now_ms=0)
    assert entry["labels"] == {
        "alertname": "StreamprocDrift",
        "model": "m",
        "stream_kind": "value",
        "stream": "amount",
        "detector": "adwin",
        "severity": "critical",
    }
    assert entry["annotations"]["alert_id"] == "a1"
    assert orjson.loads(entry["annotations"]["change"])["magnitude"] == 2.0
    assert entry["startsAt"] == "2023-11-14T22:13:20.500000+00:00".replace("500000", "500")
    assert entry["endsAt"] == "2023-11-14T23:13:20.500+00:00"
    resolved = routed(status="resolved", resolved_at=1_700_000_060_000)
    assert to_alertmanager(resolved, 3600, now_ms=0)["endsAt"] == "2023-11-14T22:14:20.000+00:00"
    assert labels(routed(kind="rate", name="events"))["alertname"] == "StreamprocArrival"
    assert labels(model_alert("r", []))["alertname"] == "StreamprocModel"


# --- delivery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, Delivered), (202, Delivered), (500, Failed), (503, Failed), (429, Failed),
     (400, Rejected), (401, Rejected), (404, Rejected)],
)  # fmt: skip
def test_http_status_decides_retry_or_dead_letter(status: int, expected: type) -> None:
    assert isinstance(http_outcome(status, "body"), expected)


class ScriptedSink:
    name = "scripted"

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def send(self, alert: RoutedAlert) -> Outcome:
        self.calls += 1
        return self.outcomes.pop(0)


async def test_deliver_retries_with_backoff_until_the_sink_accepts() -> None:
    sink = ScriptedSink(Failed("down"), Failed("down"), Failed("down"), Delivered())
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    metrics = RouteMetrics(CollectorRegistry())
    outcome = await deliver(sink, routed(), Backoff(0.5, 1.0), metrics, sleep)
    assert isinstance(outcome, Delivered) and sink.calls == 4
    assert slept == [0.5, 1.0, 1.0]
    assert metrics.failed.labels("scripted")._value.get() == 3
    assert metrics.retried.labels("scripted")._value.get() == 3
    assert metrics.delivered.labels("scripted")._value.get() == 1


async def test_deliver_stops_at_a_refusal() -> None:
    sink = ScriptedSink(Rejected(400, "bad"))
    outcome = await deliver(sink, routed(), Backoff(1, 1), RouteMetrics(CollectorRegistry()))
    assert outcome == Rejected(400, "bad") and sink.calls == 1


def test_webhook_signature_verifies_only_the_signed_body() -> None:
    header = signature(b"k", b"{}")
    assert header.startswith("sha256=") and verify(b"k", b"{}", header)
    assert not verify(b"k", b"{ }", header) and not verify(b"other", b"{}", header)


# --- settings ---------------------------------------------------------------------------------


def route_env(**values: str) -> dict[str, str]:
    return {f"STREAMPROC_ROUTE_{k.upper()}": v for k, v in values.items()}


def test_route_settings_from_the_environment() -> None:
    settings = load_settings(
        None,
        route_env(
            alertmanager_urls="http://am-0:9093, http://am-1:9093/",
            alertmanager_bearer_token="t0ken",
            webhook_url="https://hooks.example/x",
            webhook_secret="s3cret",
        ),
    ).route
    assert settings.alertmanager_url_list == ("http://am-0:9093", "http://am-1:9093")
    assert settings.sinks == ("alertmanager", "webhook")
    assert "t0ken" not in repr(settings) and "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        (route_env(webhook_url="http://h/x"), "route: .*webhook_url needs webhook_secret"),
        (route_env(alertmanager_urls="am:9093"), "route.alertmanager_urls"),
        (route_env(alertmanager_urls="http://u:p@am:9093"), "route.alertmanager_urls"),
        (route_env(alertmanager_username="u"), "go together"),
        (
            route_env(alertmanager_bearer_token="t", alertmanager_username="u",
                      alertmanager_password="p"),
            "exclude each other",
        ),
        (route_env(group_delay_seconds="-1"), "route.group_delay_seconds"),
        (route_env(retry_initial_seconds="60"), "retry_initial_seconds must not exceed"),
    ],
)  # fmt: skip
def test_bad_route_settings_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings(None, env)


def test_check_config_masks_route_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    env = route_env(
        alertmanager_urls="http://am:9093",
        alertmanager_username="u",
        alertmanager_password="hunter2",
        webhook_url="http://h/x",
        webhook_secret="sekrit",
    )
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "sekrit" not in out and "**********" in out


def test_route_without_a_sink_refuses_to_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    assert main(["route"]) == 2
    assert "route.alertmanager_urls" in capsys.readouterr().err


def test_a_resolution_stamped_before_the_detection_still_ends_after_it() -> None:
    early = routed(status="resolved", resolved_at=1_700_000_000_000)  # detected at ...500
    assert to_alertmanager(early, 3600, now_ms=0)["endsAt"] == "2023-11-14T22:13:20.501+00:00"


def test_every_router_metric_is_documented() -> None:
    registry = CollectorRegistry()
    RouteMetrics(registry)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for family in registry.collect():
        exported = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{exported}`" in docs, exported


def test_route_refuses_the_workers_consumer_group(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STREAMPROC_ROUTE_ALERTMANAGER_URLS", "http://am:9093")
    monkeypatch.setenv("STREAMPROC_ROUTE_GROUP_ID", "streamproc")
    assert main(["route"]) == 2
    assert "route.group_id" in capsys.readouterr().err


def test_offsets_commit_the_lowest_offset_not_done() -> None:
    tp = TopicPartition("alerts", 0)
    offsets = Offsets()
    for n in range(3):
        offsets.read(tp, n)
    offsets.done(tp, 1)
    assert offsets.committable() == {tp: 0}
    offsets.committed({tp: 0})
    assert offsets.committable() == {}
    offsets.done(tp, 0)
    assert offsets.committable() == {tp: 2}
    offsets.done(tp, 2)
    assert offsets.committable() == {tp: 3} and len(offsets) == 0
