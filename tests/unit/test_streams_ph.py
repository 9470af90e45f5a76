"""Stream.update's inlined PageHinkley step against River's own PageHinkley.update."""

from __future__ import annotations

import pytest
from river import drift

from streamproc.detectors import DetectorSpec
from tests.unit.test_streams import assert_as_river, changing


@pytest.mark.parametrize("mode", ["both", "up", "down"])
@pytest.mark.parametrize("alpha", [1.0, 1 - 0.0001])
def test_inlined_page_hinkley_detects_and_ends_exactly_as_river(mode: str, alpha: float) -> None:
    params = {"delta": 0.25, "threshold": 20.0, "alpha": alpha, "mode": mode}
    spec = DetectorSpec(type="page_hinkley", params=params)
    assert_as_river(spec, drift.PageHinkley(**params), changing(9000, seed=5), 2)
