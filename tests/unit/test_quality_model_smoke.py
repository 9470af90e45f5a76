"""The 50-feature model benchmark's own functions on a tiny run: a 1 sigma shift of one
feature is found on that feature's stream, and the bound is the changed stream's share."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from streamproc.settings import load_settings
from tests.unit import bench_scripts


@pytest.fixture(scope="module")
def quality_model() -> ModuleType:
    return bench_scripts.load("quality_model")


def test_a_one_sigma_shift_of_one_feature_is_found_there(quality_model: ModuleType) -> None:
    settings = load_settings(environ={}).engine
    run = quality_model.run(1.0, 1, quality_model.HISTORY + 300, settings)
    assert run.hits, "the shift must be detected"
    index, kind, name, _ = run.hits[0]
    assert (kind, name) == ("value", "f0")
    assert quality_model.HISTORY <= index <= quality_model.HISTORY + 100


def test_the_bound_gives_the_changed_stream_its_share_of_the_budget(
    quality_model: ModuleType,
) -> None:
    settings = load_settings(environ={}).engine
    arl0 = 100_000 * quality_model.STREAMS
    assert quality_model.bound(0.5, settings) == pytest.approx(math.log(arl0) / 0.125)
