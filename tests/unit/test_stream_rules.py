"""A stream's and the engine's rules, pinned at their boundaries (issue #14, mutation run).

These tests assert what the public methods report (gauges, counts, restored state,
alerts) for inputs chosen so that an off-by-one, a flipped comparison or a dropped
branch in the core changes the answer.
"""

from __future__ import annotations

from streamproc.domain import StreamKind
from streamproc.engine import Engine
from streamproc.events import FeatureEvent, OutcomeEvent
from streamproc.settings import EngineSettings, Limits

T0 = 1_764_000_000_000


def test_stream_counts_count_every_stream_by_kind() -> None:
    e = Engine(EngineSettings(), Limits())
    e.process(FeatureEvent("m", {"a": 1.0, "b": None, "c": "gold"}, T0, "1"), T0)
    e.process(FeatureEvent("m", {"a": 2.0}, T0, "2", prediction=0.5), T0)
    e.process(OutcomeEvent("m", T0, 1.0, "error", True, "3"), T0)
    e.process(OutcomeEvent("n", T0, 0.5, "loss", None, "4"), T0)
    counts = e.stream_counts()
    assert counts[StreamKind.MISSING_RATE] == 3
    assert counts[StreamKind.VALUE] == 1
    assert counts[StreamKind.CATEGORY] == 1
    assert counts[StreamKind.PREDICTION] == 1
    assert counts[StreamKind.ERROR] == 2
    assert counts[StreamKind.CORRECTNESS] == 1
    assert set(counts) == set(StreamKind)
    assert sum(counts.values()) == 9
