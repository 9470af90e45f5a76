"""Stream.update's inlined ADWIN step against River's own ADWIN.update."""

from __future__ import annotations

import random

from river import drift

from streamproc import state
from streamproc.alerts import StreamId
from streamproc.detectors import DetectorSpec
from streamproc.domain import StreamKind
from streamproc.settings import StreamPolicy
from streamproc.stream_detectors import default_factory
from streamproc.streams import Stream


def changing(n: int, seed: int) -> list[float]:
    """A mean that moves every 1,500 values, so ADWIN detects (and resets) several times."""
    rng = random.Random(seed)
    return [rng.gauss(3.0 * ((i // 1500) % 2), 1.0) for i in range(n)]


def raw_stream(detector: DetectorSpec) -> Stream:
    policy = StreamPolicy(detectors=(detector,), standardize=False, warmup=2, cooldown_events=0)
    return Stream(StreamId("m", StreamKind.VALUE, "x"), policy, default_factory)


def test_inlined_adwin_detects_and_ends_exactly_as_river() -> None:
    assert_as_river(DetectorSpec(type="adwin"), drift.ADWIN(), changing(6000, seed=4), 3)


def assert_as_river(
    spec: DetectorSpec, river: drift.base.DriftDetector, values: list[float], changes: int
) -> None:
    """A raw stream of ``spec`` alerts on exactly the events ``river`` detects, at least
    ``changes`` times, and ends in River's exact state."""
    stream = raw_stream(spec)
    ours, theirs = [], []
    for i, x in enumerate(values, start=1):
        if stream.update(x, None, 0, 0):
            ours.append(i)
        river.update(x)
        if river.drift_detected:
            theirs.append(i)
    assert ours == theirs
    assert len(ours) >= changes, "the changes must be detected for the test to mean anything"
    assert stream.to_state()["detectors"] == [state.encode_detector(river)]


class ChattyADWIN(drift.ADWIN):
    """A subclass may change update(): it must take the public path."""

    def update(self, x: float) -> None:
        super().update(x)
        self.calls = getattr(self, "calls", 0) + 1


def test_subclasses_take_the_public_update() -> None:
    detector = ChattyADWIN()
    policy = StreamPolicy(
        detectors=(DetectorSpec(type="adwin"),), standardize=False, warmup=2, cooldown_events=0
    )
    stream = Stream(StreamId("m", StreamKind.VALUE, "x"), policy, lambda spec, std: detector)
    for x in changing(100, seed=1):
        stream.update(x, None, 0, 0)
    assert detector.calls == 100
