"""What an alert says, pinned against hand-computed values (issue #14 item 5).

A scripted detector fires at chosen positions, so each test knows exactly which
events form the reference (``mean_before``), the recent mean, the scale, and when the
cooldown ends: the alert's fields are asserted, not compared with a second run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import pytest

from streamproc import change as change_rules
from streamproc.alerts import Alert, Change, Severity, StreamId, alert_id
from streamproc.detectors import DetectorSpec
from streamproc.domain import StreamKind
from streamproc.settings import StreamPolicy
from streamproc.stream_detectors import default_factory
from streamproc.streams import CLIP, RECENT_SPAN, Stream
from streamproc.summaries import summarize


class Scripted:
    """Fires when it has seen one of ``at`` values; records what it was fed."""

    def __init__(self, at: Iterable[int], width: float | None = None) -> None:
        self.at = frozenset(at)
        self.seen: list[float] = []
        self.drift_detected = False
        if width is not None:
            self.width = width

    def update(self, x: float) -> None:
        self.seen.append(x)
        self.drift_detected = len(self.seen) in self.at


def stream_of(
    kind: StreamKind,
    dets: list[Scripted],
    *,
    name: str = "x",
    cooldown: int = 0,
    warmup: int = 100,
    standardize: bool = True,
) -> Stream:
    specs = tuple(DetectorSpec(type="page_hinkley") for _ in dets)
    policy = StreamPolicy(
        detectors=specs, standardize=standardize, warmup=warmup, cooldown_events=cooldown
    )
    made = iter(dets)
    return Stream(StreamId("m", kind, name), policy, lambda spec, std: next(made))


def feed(stream: Stream, values: Iterable[float]) -> list[Alert]:
    alerts: list[Alert] = []
    for x in values:
        alerts += stream.update(x, None, 0, 0)
    return alerts


def ewma(start: float, values: list[float]) -> float:
    alpha = 2.0 / (RECENT_SPAN + 1)
    m = start
    for x in values:
        m += alpha * (x - m)
    return m


def test_before_is_the_regime_since_the_latest_change_not_what_the_cooldown_hid() -> None:
    """10, up to 40 (alert), down to 10 inside the cooldown (a held-back detection), then
    up to 25: the last alert is a rise from 10, not a fall from the 40/10 mix."""
    det = Scripted(at=[110, 205, 310])  # raw detector (standardize off): counts every value
    stream = stream_of(StreamKind.VALUE, [det], cooldown=150, standardize=False)
    values = [10.0] * 100 + [40.0] * 100 + [10.0] * 100 + [25.0] * 10
    alerts = feed(stream, values)
    assert [a.events_seen for a in alerts] == [110, 310]
    last = alerts[-1].change
    assert last.mean_before == pytest.approx((95 * 10.0 + 10 * 25.0) / 105)
    assert last.direction == "up"
    assert last.mean_after is not None and last.mean_after > last.mean_before


def test_each_detector_reports_its_own_window_as_an_int() -> None:
    first, second = Scripted(at=[150], width=96.0), Scripted(at=[150], width=40.0)
    stream = stream_of(StreamKind.VALUE, [first, second], standardize=False)
    alerts = feed(stream, [float(i % 7) for i in range(150)])
    assert [a.change.window for a in alerts] == [96, 40]
    assert all(type(a.change.window) is int for a in alerts)
    assert b'"window":96' in alerts[0].to_json()


@pytest.mark.parametrize(
    ("before", "after"), [(0.12, 0.31), (0.04, 0.26)], ids=["0.12-0.31", "0.04-0.26"]
)
def test_an_error_rate_that_more_than_doubles_is_critical(before: float, after: float) -> None:
    """0/1 errors on a standardized stream, the case docs/alerts.md promises is critical."""
    rng = random.Random(7)
    n_before, n_after = 2000, 400
    det = Scripted(at=[n_before + n_after - 100])  # standardized: fed after the warm-up
    stream = stream_of(StreamKind.ERROR, [det], name="error", cooldown=1000)
    values = [float(rng.random() < before) for _ in range(n_before)]
    values += [float(rng.random() < after) for _ in range(n_after)]
    (alert,) = feed(stream, values)
    assert alert.severity is Severity.CRITICAL
    assert alert.change.scale is None
    assert alert.change.magnitude == pytest.approx(
        alert.change.mean_after - alert.change.mean_before  # type: ignore[operator]
    )


def test_a_rate_without_warm_up_spread_speaks_in_percentage_points() -> None:
    det = Scripted(at=[300])
    stream = stream_of(StreamKind.MISSING_RATE, [det], name="tenure")
    values = [0.0] * 200 + [1.0 if i % 5 == 0 else 0.0 for i in range(100)]
    (alert,) = feed(stream, values)
    c = alert.change
    assert c.scale is None
    assert c.mean_before is not None and c.mean_after is not None
    assert c.magnitude == pytest.approx(c.mean_after - c.mean_before)
    assert f"({100 * c.magnitude:+.1f} pp)" in summarize(alert)
    assert " sd)" not in summarize(alert)


def test_cooldown_gives_one_alert_per_change_and_reopens_exactly_at_its_boundary() -> None:
    det = Scripted(at=range(150, 1000))  # fires on every value from 150 on
    stream = stream_of(StreamKind.VALUE, [det], cooldown=100, standardize=False)
    alerts = feed(stream, [float(i % 3) for i in range(460)])
    assert [a.events_seen for a in alerts] == [150, 250, 350, 450]


def test_with_cooldown_the_first_detector_speaks_and_without_it_every_one_does() -> None:
    for cooldown, expected in ((10, 1), (0, 2)):
        dets = [Scripted(at=[120]), Scripted(at=[120])]
        stream = stream_of(StreamKind.VALUE, dets, cooldown=cooldown, standardize=False)
        alerts = feed(stream, [1.0, 2.0] * 60)
        assert len(alerts) == expected
        assert len({a.alert_id for a in alerts}) == expected


def test_magnitude_has_the_sign_and_size_of_the_shift_in_warm_up_sds() -> None:
    warm = [8.0, 12.0] * 50  # mean 10, sample sd sqrt(400 / 99)
    sd = math.sqrt(400 / 99)
    det = Scripted(at=[30])  # standardized: the 30th value after the warm-up
    stream = stream_of(StreamKind.VALUE, [det], warmup=100)
    tail = [4.0] * 30
    (alert,) = feed(stream, warm + tail)
    c = alert.change
    assert c.scale == pytest.approx(sd)
    assert c.mean_before == pytest.approx((sum(warm) + sum(tail)) / 130)
    assert c.mean_after == pytest.approx(ewma(ewma(8.0, [12.0, 8.0] * 49 + [12.0]), tail))
    assert c.magnitude == pytest.approx((c.mean_after - c.mean_before) / sd)
    assert c.magnitude < 0 and c.direction == "down"


def test_standardized_detectors_start_right_after_the_warm_up() -> None:
    det = Scripted(at=[])
    stream = stream_of(StreamKind.VALUE, [det], warmup=10)
    feed(stream, [1.0, 3.0] * 5)
    assert det.seen == [] and stream.scale is not None
    feed(stream, [2.0])
    assert det.seen == [pytest.approx(0.0)]


def test_warm_up_scale_is_unset_one_value_before_the_boundary() -> None:
    stream = stream_of(StreamKind.VALUE, [Scripted(at=[])], warmup=10)
    feed(stream, [1.0, 3.0] * 4 + [1.0])
    assert stream.scale is None
    feed(stream, [3.0])
    assert stream.scale == pytest.approx(math.sqrt(10 / 9))


def test_standardized_values_are_clipped_at_four_sds_both_ways() -> None:
    det = Scripted(at=[])
    stream = stream_of(StreamKind.VALUE, [det], warmup=10)
    feed(stream, [9.0, 11.0] * 5)  # mean 10, sd sqrt(10 / 9)
    sd = math.sqrt(10 / 9)
    feed(stream, [1e6, -1e6, 10.0 + 3.5 * sd, 10.0 - 3.5 * sd])
    assert det.seen == [CLIP, -CLIP, pytest.approx(3.5), pytest.approx(-3.5)]
    assert CLIP == 4.0


RATE = StreamId("m", StreamKind.MISSING_RATE, "f")
ERRORS = StreamId("m", StreamKind.ERROR, "error")
CORRECT = StreamId("m", StreamKind.CORRECTNESS, "correctness")
LOSS = StreamId("m", StreamKind.ERROR, "loss")
VALUE = StreamId("m", StreamKind.VALUE, "x")
PRED = StreamId("m", StreamKind.PREDICTION, "prediction")


@pytest.mark.parametrize(
    ("sid", "before", "after", "sd", "expected"),
    [
        (RATE, 0.01, 0.02, None, Severity.CRITICAL),
        (RATE, 0.01, 0.0199, None, Severity.WARNING),
        (RATE, 0.0, 0.01, None, Severity.CRITICAL),
        (RATE, 0.2, 0.1, None, Severity.INFO),
        (ERRORS, 0.12, 0.31, 0.3, Severity.CRITICAL),
        (ERRORS, 0.04, 0.26, 0.2, Severity.CRITICAL),
        (ERRORS, 0.10, 0.15, 0.3, Severity.WARNING),
        (ERRORS, 0.30, 0.10, 0.3, Severity.INFO),
        (CORRECT, 0.90, 0.80, None, Severity.CRITICAL),  # errors 10% -> 20%
        (CORRECT, 0.90, 0.85, None, Severity.WARNING),
        (CORRECT, 0.80, 0.90, None, Severity.INFO),
        (CORRECT, 1.0, 1.0, None, Severity.WARNING),
        (LOSS, 1.0, 3.0, 1.0, Severity.CRITICAL),
        (LOSS, 1.0, 2.99, 1.0, Severity.WARNING),
        (LOSS, 3.0, 1.0, 1.0, Severity.INFO),
        (VALUE, 10.0, 14.0, 2.0, Severity.CRITICAL),
        (VALUE, 10.0, 6.0, 2.0, Severity.CRITICAL),
        (VALUE, 10.0, 13.9, 2.0, Severity.WARNING),
        (VALUE, 10.0, 6.1, 2.0, Severity.WARNING),
        (PRED, 0.5, 0.1, 0.2, Severity.CRITICAL),
        (VALUE, 10.0, 30.0, None, Severity.WARNING),
    ],
)
def test_severity_table(
    sid: StreamId, before: float, after: float, sd: float | None, expected: Severity
) -> None:
    """The table of docs/alerts.md, one row per rule and boundary."""
    change = change_rules.summarize(sid, before, after, sd, None)
    assert change_rules.severity(sid, change) is expected


def test_rate_changes_have_no_scale_and_value_changes_speak_in_sds() -> None:
    assert change_rules.summarize(RATE, 0.1, 0.3, 0.5, 7) == Change(
        0.1, 0.3, None, pytest.approx(0.2), "up", 7
    )
    assert change_rules.summarize(VALUE, 10.0, 6.0, 2.0, None) == Change(
        10.0, 6.0, 2.0, -2.0, "down", None
    )
    assert change_rules.summarize(VALUE, 1.0, 1.0, 2.0, None).direction == "none"
    assert change_rules.summarize(VALUE, None, 1.0, 2.0, None).magnitude is None


def test_ddm_on_correctness_catches_a_degradation_as_docs_detectors_says() -> None:
    """docs/detectors.md: the engine flips DDM's input on correctness streams."""
    policy = StreamPolicy(
        detectors=(DetectorSpec(type="ddm"),), standardize=True, warmup=100, cooldown_events=0
    )
    stream = Stream(StreamId("m", StreamKind.CORRECTNESS, "correctness"), policy, default_factory)
    rng = random.Random(3)
    values = [float(rng.random() < 0.95) for _ in range(2000)]
    values += [float(rng.random() < 0.6) for _ in range(1000)]
    alerts = feed(stream, values)
    after = [a for a in alerts if 2000 < a.events_seen <= 2300]
    assert after, "DDM must catch the fall from 95% to 60% correct"
    assert after[0].change.direction == "down"
    assert after[0].severity is Severity.CRITICAL


def test_an_alert_carries_its_event_and_times_on_both_paths() -> None:
    """After the warm-up (standardized detector) and during it (a binary detector, which
    reads raw values from the start): id, event time, detection time and position."""
    dets = [Scripted(at=[3]), Scripted(at=[3])]
    specs = (DetectorSpec(type="ddm"), DetectorSpec(type="page_hinkley"))
    policy = StreamPolicy(detectors=specs, standardize=True, warmup=4, cooldown_events=0)
    made = iter(dets)
    stream = Stream(StreamId("m", StreamKind.VALUE, "x"), policy, lambda s, std: next(made))
    got = []
    for n, x in enumerate([1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 2.0], start=1):
        got += stream.update(x, f"e{n}", 1000 + n, 2000 + n)
    assert [(a.event_id, a.event_ts, a.detected_at, a.events_seen) for a in got] == [
        ("e3", 1003, 2003, 3),  # ddm: its 3rd value, read raw during the warm-up
        ("e7", 1007, 2007, 7),  # page_hinkley: its 3rd, the warm-up took 4
    ]
    assert dets[0].seen == [1.0, 3.0, 1.0, 3.0, 1.0, 3.0, 2.0]
    assert got[1].detector["params"]["delta"] == 0.35  # scale-free default: standardized
    assert got[0].detector == {"type": "ddm", "params": got[0].detector["params"]}
    assert [a.alert_id for a in got] == [
        alert_id(StreamId("m", StreamKind.VALUE, "x"), 0, "ddm", 3),
        alert_id(StreamId("m", StreamKind.VALUE, "x"), 1, "page_hinkley", 7),
    ]


def test_an_alert_during_the_warm_up_has_the_warm_up_sd_so_far() -> None:
    det = Scripted(at=[3])
    policy = StreamPolicy(
        detectors=(DetectorSpec(type="ddm"),), standardize=True, warmup=10, cooldown_events=0
    )
    stream = Stream(StreamId("m", StreamKind.VALUE, "x"), policy, lambda s, std: det)
    (alert,) = feed(stream, [1.0, 3.0, 5.0])
    assert alert.change.scale == pytest.approx(2.0)  # sample sd of 1, 3, 5
    assert alert.change.mean_before == pytest.approx(3.0)
    early = Stream(StreamId("m", StreamKind.VALUE, "x"), policy, lambda s, std: Scripted(at=[1]))
    (first,) = feed(early, [1.0])
    assert first.change.scale is None and first.change.magnitude is None
    two = Stream(StreamId("m", StreamKind.VALUE, "x"), policy, lambda s, std: Scripted(at=[2]))
    (second,) = feed(two, [1.0, 3.0])
    assert second.change.scale == pytest.approx(math.sqrt(2.0))


def test_a_flipped_binary_detector_reads_one_minus_x_during_the_warm_up() -> None:
    det = Scripted(at=[])
    policy = StreamPolicy(
        detectors=(DetectorSpec(type="ddm"),), standardize=True, warmup=100, cooldown_events=0
    )
    sid = StreamId("m", StreamKind.CORRECTNESS, "correctness")
    feed(Stream(sid, policy, lambda s, std: det), [1.0, 0.0, 1.0])
    assert det.seen == [0.0, 1.0, 0.0]
    fhddm = Scripted(at=[])  # alarms on fewer 1s: on a value stream it reads 1 - x
    policy = StreamPolicy(
        detectors=(DetectorSpec(type="fhddm"),), standardize=True, warmup=100, cooldown_events=0
    )
    feed(Stream(StreamId("m", StreamKind.VALUE, "x"), policy, lambda s, std: fhddm), [1.0, 0.25])
    assert fhddm.seen == [0.0, 0.75]
