"""The detectors' scale: the warm-up's until the spread reference is learned, then that
reference, following the stream slowly; blind to mean shifts, learned afresh after a
spread alert, bounded below, and restored exactly."""

from __future__ import annotations

import math
import random

import pytest

from streamproc import spread
from streamproc.alerts import StreamId
from streamproc.detectors import DetectorSpec, DriftDetector
from streamproc.domain import StreamKind
from streamproc.settings import EngineSettings
from streamproc.stream_detectors import default_factory
from streamproc.streams import CLIP, MIN_VARIANCE_FACTOR, Stream

SID = StreamId("m", StreamKind.VALUE, "x")
WARMUP = 100
LEARNED = WARMUP + spread.LEARN_BATCHES * spread.BATCH
"""The event (1-based) at which the spread reference is learned and becomes the scale."""


class Recorder:
    """A detector that never fires and keeps what it was fed."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def update(self, x: float) -> None:
        self.seen.append(x)

    @property
    def drift_detected(self) -> bool:
        return False


def stream(kind: StreamKind = StreamKind.VALUE) -> tuple[Stream, Recorder]:
    recorder = Recorder()

    def factory(spec: DetectorSpec, standardized: bool) -> DriftDetector:
        return recorder

    settings = EngineSettings(detectors={kind.value: [{"type": "page_hinkley"}]})
    policy = settings.policy("m", kind, "x")
    return Stream(StreamId("m", kind, "x"), policy, factory), recorder


def feed(s: Stream, values: list[float], start: int = 0) -> None:
    for i, v in enumerate(values, start):
        s.update(v, None, i, i)


def gaussian(n: int, seed: int, sd: float = 1.0, mean: float = 0.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def warm_value(s: Stream, x: float) -> float:
    assert s.scale is not None
    return max(-CLIP, min(CLIP, (x - s.offset) / s.scale))


def test_the_warm_up_scale_stands_until_the_reference_is_learned() -> None:
    s, rec = stream()
    xs = gaussian(LEARNED + 1, 1, sd=3.0)
    feed(s, xs[: LEARNED - 1])
    assert rec.seen[-1] == warm_value(s, xs[LEARNED - 2])
    assert s.spread_n == spread.LEARN_BATCHES - 1
    feed(s, xs[LEARNED - 1 : LEARNED], LEARNED - 1)
    assert s.spread_n == spread.LEARN_BATCHES
    assert s.spread_ref != 1.0
    expected = warm_value(s, xs[LEARNED - 1]) * s.scale / math.sqrt(s.spread_ref) / s.scale
    assert rec.seen[-1] == pytest.approx(max(-CLIP, min(CLIP, expected)), rel=1e-12)


def test_a_warm_up_that_misjudged_the_spread_is_corrected() -> None:
    """A warm-up of 100 values drawn narrower than the stream: the detectors see values of
    the stream's true spread once the reference is learned, not the warm-up's."""
    s, rec = stream()
    feed(s, gaussian(WARMUP, 2, sd=0.7) + gaussian(20_000, 3, sd=1.0), 0)
    assert s.scale is not None and s.scale < 0.8
    tail = rec.seen[-10_000:]
    sd = math.sqrt(sum(v * v for v in tail) / len(tail) - (sum(tail) / len(tail)) ** 2)
    assert sd == pytest.approx(1.0, abs=0.05)


def test_a_mean_shift_does_not_move_the_scale() -> None:
    s, _ = stream()
    feed(s, gaussian(5_000, 4))
    before = s.spread_ref
    feed(s, gaussian(5_000, 5, mean=3.0), 5_000)
    assert s.spread_ref == pytest.approx(before, rel=0.1)


def test_after_a_spread_alert_the_scale_is_learned_afresh() -> None:
    s, rec = stream()
    feed(s, gaussian(5_000, 6))
    alerts: list[object] = []
    values = gaussian(5_000, 7, sd=3.0)
    for i, v in enumerate(values, 5_000):
        found = s.update(v, None, i, i)
        alerts.extend(found)
        if found:
            fired_at = i
            break
    assert alerts, "a tripled spread must be alerted"
    assert s.spread_n == 0
    rest = values[fired_at - 5_000 + 1 :]
    feed(s, rest[:1], fired_at + 1)
    assert rec.seen[-1] == warm_value(s, rest[0])
    feed(s, gaussian(spread.LEARN_BATCHES * spread.BATCH, 8, sd=3.0), fired_at + 2)
    assert s.spread_n == spread.LEARN_BATCHES
    assert s.spread_ref == pytest.approx(9.0, rel=0.25)


def test_the_scale_never_falls_below_half_the_warm_ups() -> None:
    """A sparse stream (rare jumps): capped differences drive the reference towards 0."""
    s, rec = stream()
    checked = 0
    for i in range(20_000):
        x = 1.0 if i % 97 == 0 else 0.0
        s.update(x, None, i, i)
        if s.spread_n == spread.LEARN_BATCHES and s.spread_ref < MIN_VARIANCE_FACTOR:
            last = warm_value(s, x) / math.sqrt(MIN_VARIANCE_FACTOR)
            assert rec.seen[-1] == pytest.approx(max(-CLIP, min(CLIP, last)), rel=1e-12)
            checked += 1
    assert checked > 1_000


def test_error_streams_keep_the_warm_up_scale() -> None:
    """An error stream's spread moves with its rate: a scale that followed it would chase
    the change to detect."""
    s, rec = stream(StreamKind.ERROR)
    xs = [1.0 if random.Random(i).random() < 0.05 else 0.0 for i in range(5_000)]
    feed(s, xs)
    assert rec.seen[-1] == warm_value(s, xs[-1])


@pytest.mark.parametrize("split", [WARMUP + 200, LEARNED - 1, LEARNED, 6_000])
def test_restored_mid_stream_the_stream_continues_exactly(split: int) -> None:
    """Page-Hinkley's sums are sums of what it was fed: equal final states mean the
    restored stream's detectors saw the same values."""
    settings = EngineSettings()
    policy = settings.policy("m", StreamKind.VALUE, "x")
    xs = gaussian(8_000, 9, sd=2.0)
    whole = Stream(SID, policy, default_factory)
    feed(whole, xs)
    first = Stream(SID, policy, default_factory)
    feed(first, xs[:split])
    second = Stream(SID, policy, default_factory)
    second.restore(first.to_state())
    feed(second, xs[split:], split)
    assert second.to_state() == whole.to_state()
