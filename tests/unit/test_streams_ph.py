"""Stream.update's inlined PageHinkley step against River's own PageHinkley.update."""

from __future__ import annotations

import pytest
from river import drift

from streamproc import state
from streamproc.detectors import DetectorSpec
from tests.unit.test_streams import changing, raw_stream


@pytest.mark.parametrize("mode", ["both", "up", "down"])
@pytest.mark.parametrize("alpha", [1.0, 1 - 0.0001])
def test_inlined_page_hinkley_detects_and_ends_exactly_as_river(mode: str, alpha: float) -> None:
    params = {"delta": 0.25, "threshold": 20.0, "alpha": alpha, "mode": mode}
    values = changing(9000, seed=5)
    stream = raw_stream(DetectorSpec(type="page_hinkley", params=params))
    river = drift.PageHinkley(**params)
    ours, theirs = [], []
    for i, x in enumerate(values, start=1):
        if stream.update(x, None, 0, 0):
            ours.append(i)
        river.update(x)
        if river.drift_detected:
            theirs.append(i)
    assert ours == theirs
    assert len(ours) >= 2, "the changes must be detected for the test to mean anything"
    assert stream.to_state()["detectors"] == [state.encode_detector(river)]
