"""Golden alert ids: a committed event file (the demo scenario, 120 s at 60 events/s)
must give exactly the committed alerts. An id may change only with ``schema_version``."""

from __future__ import annotations

import gzip

from streamproc.alerts import SCHEMA_VERSION
from tests.support import demo_run, golden_alerts


def test_the_committed_events_are_the_demo_scenario() -> None:
    assert golden_alerts.EVENTS.read_bytes() == golden_alerts.compressed(demo_run.event_lines())


def test_the_demo_events_give_the_golden_alert_ids() -> None:
    lines = gzip.decompress(golden_alerts.EVENTS.read_bytes()).splitlines()
    alerts = demo_run.run(lines)
    got = [
        f"{a.alert_id} {a.stream.model} {a.stream.kind.value}:{a.stream.name} {a.events_seen}"
        for a in alerts
    ]
    assert SCHEMA_VERSION == 2, "a new schema version: regenerate the golden ids"
    assert got == golden_alerts.IDS.read_text().splitlines()
