"""Alert ids: two different streams never share an id, whatever characters their names hold."""

from __future__ import annotations

import json
import random
import re
from importlib import resources
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from streamproc.alerts import SCHEMA_VERSION, Alert, StreamId, alert_id, from_json
from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import Event, FeatureEvent
from streamproc.settings import EngineSettings, Limits

NOW = 1_700_000_000_000
ROOT = Path(__file__).resolve().parents[2]

# The two streams' parts, joined with the old separator, spell the same string.
LOOKALIKES = (
    StreamId("a\x1fvalue\x1fb", StreamKind.VALUE, "c"),
    StreamId("a", StreamKind.VALUE, "b\x1fvalue\x1fc"),
)


def test_streams_whose_parts_join_alike_get_different_ids() -> None:
    first, second = (alert_id(stream, 0, "adwin", 5) for stream in LOOKALIKES)
    assert first != second


_names = st.text(max_size=8)


@given(_names, _names, _names, st.sampled_from(list(StreamKind)), st.sampled_from(["\x1f", ","]))
def test_moving_a_separator_between_model_and_name_changes_the_id(
    head: str, middle: str, tail: str, kind: StreamKind, sep: str
) -> None:
    """Whatever separator an encoding might use, a name that holds it cannot pose as another."""
    glue = f"{sep}{kind.value}{sep}"
    one = StreamId(f"{head}{glue}{middle}", kind, tail)
    two = StreamId(head, kind, f"{middle}{glue}{tail}")
    assert alert_id(one, 0, "adwin", 10) != alert_id(two, 0, "adwin", 10)


def shifting_events(model: str, name: str) -> list[Event]:
    rng = random.Random(7)
    values = [rng.gauss(0, 1) + (3.0 if i >= 1500 else 0.0) for i in range(3000)]
    return [
        FeatureEvent(model=model, features={name: v}, ts=NOW + i, id=str(i))
        for i, v in enumerate(values)
    ]


def alerts_of(events: list[Event]) -> list[Alert]:
    engine = Engine(EngineSettings(), Limits())
    return [alert for event in events for alert in engine.process(event, NOW).alerts]


def test_the_engine_gives_lookalike_streams_different_ids() -> None:
    """Same values, same positions: only the names differ, and so must every id."""
    first, second = (alerts_of(shifting_events(s.model, s.name)) for s in LOOKALIKES)
    assert first, "the shift must be detected for the test to mean anything"
    assert [a.events_seen for a in first] == [a.events_seen for a in second]
    assert not {a.alert_id for a in first} & {a.alert_id for a in second}


def test_changed_ids_come_with_a_new_schema_version() -> None:
    (alert,) = alerts_of(shifting_events("m", "x"))[:1]
    assert alert.schema_version == SCHEMA_VERSION == 2
    assert from_json(alert.to_json()).schema_version == 2


def test_schema_and_docs_state_the_same_version() -> None:
    schema = json.loads(
        resources.files("streamproc").joinpath("schemas/alert.schema.json").read_text()
    )
    assert schema["properties"]["schema_version"] == {"const": 2}
    for doc in ("README.md", "docs/alerts.md"):
        versions = re.findall(r'"schema_version": (\d+)', (ROOT / doc).read_text())
        assert versions and set(versions) == {"2"}, doc
