"""One watched stream: its detectors, warm-up scale, cooldown and change summary.

A stream is a sequence of numbers with an identity (model, kind, name). It
feeds every configured River detector, and turns a detection into an
:class:`~streamproc.alerts.Alert` unless the stream is cooling down from a
previous one. Its whole state encodes to plain JSON-able values
(:meth:`Stream.to_state`), so that a restored stream continues exactly as the
original would have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

from streamproc import change as change_rules
from streamproc import detectors, seasonal, spread, state
from streamproc.alerts import Alert, Change, Severity, StreamId, alert_id
from streamproc.detectors import DetectorSpec, DriftDetector
from streamproc.domain import StreamKind
from streamproc.errors import StateError
from streamproc.events import MAX_ABS_NUMBER
from streamproc.settings import StreamPolicy
from streamproc.stream_detectors import (
    INLINE_ADWIN,
    INLINE_PH,
    INLINE_PH_BOTH,
    budgeted,
    inline_kind,
    same_config,
)

DetectorFactory = Callable[[DetectorSpec, bool], DriftDetector]
"""Builds a River detector for a spec; the flag says whether its input is standardized."""

RECENT_SPAN = 50
_RECENT_ALPHA = 2.0 / (RECENT_SPAN + 1)
_RAW_KINDS = frozenset({StreamKind.MISSING_RATE, StreamKind.CORRECTNESS})
"""0/1 rates: their natural scale is already [0, 1], so they are never standardized."""
CLIP = 4.0
"""Standardized values are clipped to +/- this many warm-up standard deviations: one outlier
of a heavy-tailed stream then moves a CUSUM-type detector by at most 4 sigma."""
_STANDARDIZED, _RAW, _FLIPPED = 0, 1, 2
"""What a detector reads: (x - warm-up mean) / warm-up std, x, or 1 - x."""
MIN_SCALE = 1.0 / MAX_ABS_NUMBER
"""Floor of the warm-up scale: with inputs within +/-MAX_ABS_NUMBER, a standardized value or a
change magnitude stays below 2e200 (a warm-up of identical subnormals would give 5e-324, and
1.0 / 5e-324 is inf)."""
_STATE_BOUND = 2 * MAX_ABS_NUMBER
"""Means of inputs within +/-MAX_ABS_NUMBER stay within it; twice is room for rounding."""
_SPREAD_KINDS = frozenset({StreamKind.VALUE, StreamKind.PREDICTION})
"""Streams whose spread is watched (and whose scale follows it): error streams are 0/1 or
skewed losses whose spread moves with their mean, which the mean detectors already watch
(a scale that followed it would chase the very change to detect)."""
_WIDE = 2 * _STATE_BOUND / MIN_SCALE
"""Bound of a standardized value before clipping (the spread tests read it unclipped)."""
_BATCH_MASK = spread.BATCH_MASK
_SPREAD_BOUND = 1e4
"""Spread statistics restart at 0 when they cross a threshold of at most ln(float max) ~ 710."""
_ROUNDING = 1.0 + 1e-9
"""Room for the rounding of a sum of capped squares above its exact bound."""
MIN_VARIANCE_FACTOR = 0.25
"""The self-updating scale never falls below half the warm-up's: on a sparse stream (mostly
one value, rare jumps) capped squared differences underestimate the spread, and their
reference would shrink towards :data:`spread.MIN_REF`, blowing every value up to the clip."""


class StreamState(TypedDict):
    """A stream in a snapshot: plain JSON values, by name, so that a reader of a checkpoint
    (and :meth:`Stream.restore`'s validation) never counts positions."""

    n: int
    quiet_until: int
    warm_n: int
    warm_mean: float
    warm_m2: float
    offset: float
    scale: float | None
    ref_n: int
    ref_mean: float
    recent: float | None
    detectors: list[dict[str, Any]]
    spread_up: float
    spread_down: float
    recent_sq: float
    previous: float
    spread_n: int
    spread_ref: float
    spread_sq: float
    spread_tail: float
    spread_acc: float
    seasonal: dict[str, Any] | None


STATE_FIELDS: tuple[str, ...] = tuple(StreamState.__annotations__)
"""The keys of :class:`StreamState`, in the order :meth:`Stream.restore` reads them."""
_SEASONAL_KINDS = _SPREAD_KINDS
"""Streams that may follow a daily or weekly cycle: feature values and predictions."""
NO_ALERTS: tuple[Alert, ...] = ()
"""What :meth:`Stream.update` returns when nothing fired: shared, so the common case allocates
nothing."""


class Stream:
    """State and detectors of one stream. Not thread-safe; the engine owns it."""

    __slots__ = (
        "_detectors",
        "_factory",
        "_feeds",
        "_inputs",
        "_inv_sd",
        "_raw_feeds",
        "_season",
        "_season_at",
        "_specs",
        "_spread_cap",
        "_spread_h",
        "_standardized",
        "cooldown",
        "id",
        "n",
        "offset",
        "previous",
        "quiet_until",
        "recent",
        "recent_sq",
        "ref_mean",
        "ref_n",
        "scale",
        "spread_acc",
        "spread_down",
        "spread_n",
        "spread_ref",
        "spread_sq",
        "spread_tail",
        "spread_up",
        "updates_per_value",
        "warm_m2",
        "warm_mean",
        "warm_n",
        "warmup",
    )

    def __init__(self, sid: StreamId, policy: StreamPolicy, factory: DetectorFactory) -> None:
        self.id = sid
        self._standardized = policy.standardize and sid.kind not in _RAW_KINDS
        self._inputs = tuple(self._input_of(spec) for spec in policy.detectors)
        self._specs = tuple(
            budgeted(spec, mode == _STANDARDIZED, policy.source_arl0)
            for spec, mode in zip(policy.detectors, self._inputs, strict=True)
        )
        self._factory = factory
        self._detectors: list[DriftDetector] = [
            factory(spec, mode == _STANDARDIZED)
            for spec, mode in zip(self._specs, self._inputs, strict=True)
        ]
        self._plan()
        self.updates_per_value = len(self._detectors)
        self.cooldown = policy.cooldown_events
        self.warmup = policy.warmup
        self.n = 0
        self.quiet_until = 0
        self.warm_n = 0
        self.warm_mean = 0.0
        self.warm_m2 = 0.0
        self.offset = 0.0
        self.scale: float | None = None
        self.ref_n = 0
        self.ref_mean = 0.0
        self.recent: float | None = None
        spread_on = self._standardized and sid.kind in _SPREAD_KINDS
        self._spread_h = policy.spread_threshold if spread_on else None
        self.spread_up = 0.0
        self.spread_down = 0.0
        self.recent_sq = 1.0
        self.previous = 0.0
        self.spread_n = 0
        self.spread_ref = 1.0
        self.spread_sq = 0.0
        self.spread_tail = 1.0
        self.spread_acc = 0.0
        self._spread_cap = 2.0 * spread.CAP
        self._inv_sd = 1.0
        seasonal_on = policy.seasonality != "off" and sid.kind in _SEASONAL_KINDS
        self._season = seasonal.Seasonal(policy.seasonality) if seasonal_on else None
        self._season_at = seasonal.NEVER if self._season is None else self._season.due()

    def update(  # noqa: PLR0915  (the hot path: River's update steps inlined, no calls)
        self, x: float, event_id: str | None, ts: int, now_ms: int, timed: bool = True
    ) -> Sequence[Alert]:
        """Feed one value; return the alerts it triggers (usually none, as a shared empty tuple).
        ``timed``: ``ts`` is the event's own time (a seasonal profile learns only from those).

        This runs once per stream per event: locals instead of repeated attribute reads, and
        no allocation unless a detector fires.
        """
        if ts >= self._season_at:  # what follows reads the value less its cycle
            x = self._deseasoned(x, ts, timed)
        n = self.n = self.n + 1
        ref_n = self.ref_n = self.ref_n + 1
        ref_mean = self.ref_mean
        self.ref_mean = ref_mean + (x - ref_mean) / ref_n
        recent = self.recent
        self.recent = x if recent is None else recent + _RECENT_ALPHA * (x - recent)
        scale = self.scale
        spread_fired = False
        if scale is None:
            self._warm(x)
            if self._standardized:
                return self._update_raw_only(x, event_id, ts, now_ms)
            xs = x
        else:
            xs = (x - self.offset) / scale if self._standardized else x
            h = self._spread_h
            if h is not None:  # the spread tests: per event, only a capped sum (hot path)
                d = xs - self.previous
                self.previous = xs
                dd = d * d
                cap = self._spread_cap
                self.spread_acc += dd if dd < cap else cap
                if not (n - self.warm_n) & _BATCH_MASK:
                    spread_fired = self._spread_batch(h)
                xs *= self._inv_sd  # the self-updating scale: see _variance_factor
            if xs > CLIP:
                xs = CLIP
            elif xs < -CLIP:
                xs = -CLIP
        fired: list[int] | None = None
        for i, det, mode, adwin in self._feeds:
            value = xs if mode == _STANDARDIZED else x if mode == _RAW else 1.0 - x
            if adwin == INLINE_ADWIN:  # River's ADWIN.update, inlined (inline_kind)
                if det._drift_detected:
                    det._reset()
                drift = det._drift_detected = det._helper.update(value)
            elif adwin >= INLINE_PH:  # River's PageHinkley.update, inlined
                if det._drift_detected:
                    det._reset()
                mean = det._x_mean
                mean_n = mean.n = mean.n + 1.0
                m = mean._mean = mean._mean + (1.0 / mean_n) * (value - mean._mean)
                dev = value - m
                alpha = det.alpha
                up = det._sum_increase = alpha * det._sum_increase + dev - det.delta
                down = det._sum_decrease = alpha * det._sum_decrease + dev + det.delta
                low = det._min_increase
                if up < low:
                    low = det._min_increase = up
                high = det._max_decrease
                if down > high:
                    high = det._max_decrease = down
                if mean_n >= det.min_instances:
                    if adwin == INLINE_PH_BOTH:
                        threshold = det.threshold
                        drift = up - low > threshold or high - down > threshold
                    else:
                        drift = det._test_drift(up - low, high - down)
                    det._drift_detected = drift
                else:
                    drift = det._drift_detected
            else:
                det.update(value)
                drift = det.drift_detected
            if drift:
                if fired is None:
                    fired = [i]
                else:
                    fired.append(i)
        if spread_fired:
            found = self._alerts(fired, event_id, ts, now_ms) if fired else NO_ALERTS
            return (*found, *self._spread_alerts(event_id, ts, now_ms))
        if fired is None:
            return NO_ALERTS
        return self._alerts(fired, event_id, ts, now_ms)

    def _spread_batch(self, h: float) -> bool:
        """A batch of :data:`spread.BATCH` squared differences: learn the reference from it,
        or feed its mean ratio to both CUSUMs; whether one crossed its threshold. Otherwise
        the reference follows the stream slowly, frozen while a change is suspected."""
        ref = self.spread_ref
        m = min(0.5 * self.spread_acc / (ref * spread.BATCH), spread.CAP)  # rounding up
        self.spread_acc = 0.0
        k = self.spread_n
        if k < spread.LEARN_BATCHES:
            self._learn_spread(k, m)
            return False
        self.recent_sq += spread.RECENT_ALPHA * (m - self.recent_sq)
        up = self.spread_up + spread.BATCH * (spread.UP_GAIN * m - spread.UP_COST)
        down = self.spread_down + spread.BATCH * (spread.DOWN_GAIN * m - spread.DOWN_COST)
        self.spread_up = up = up if up > 0.0 else 0.0
        self.spread_down = down = down if down > 0.0 else 0.0
        h *= self.spread_tail
        if up > h or down > h:
            return True
        if up < 0.5 * h and down < 0.5 * h:
            self._set_spread_ref(ref + ref * (m - 1.0) * spread.ADAPT)
        return False

    def _learn_spread(self, k: int, m: float) -> None:
        """One of the first :data:`spread.LEARN_BATCHES` batch means after warm-up or a
        spread alert: the reference is their running mean; at the end, their dispersion
        against a Gaussian stream's widens the threshold (:func:`spread.tail_factor`)."""
        ref = self.spread_ref
        self.spread_n = k + 1
        self._set_spread_ref(ref + ref * (m - 1.0) / (k + 1))
        if k >= spread.SETTLE_BATCHES:  # the reference is roughly right by now
            self.spread_sq += m * m
        if k + 1 == spread.LEARN_BATCHES:
            measured = spread.LEARN_BATCHES - spread.SETTLE_BATCHES
            self.spread_tail = spread.tail_factor(self.spread_sq / measured)
            self.spread_sq = 0.0

    def _deseasoned(self, x: float, ts: int, timed: bool) -> float:
        """The value less its seasonal profile, which learns from it (:mod:`streamproc.seasonal`);
        called only from :meth:`Seasonal.due`'s time on, so that a stream without a profile on
        pays one comparison per value."""
        season = self._season
        if season is None:
            return x
        x = season.update(x, ts, timed)
        if season.changed:
            self._relearn()
        self._season_at = season.due()
        return x

    def _relearn(self) -> None:
        """A seasonal profile switched on: the detectors, scale and spread reference were
        learned on values with the cycle in them, so they start afresh on the residuals."""
        if self._season is not None:
            self._season.changed = False
        self._detectors = [
            self._factory(spec, mode == _STANDARDIZED)
            for spec, mode in zip(self._specs, self._inputs, strict=True)
        ]
        self._plan()
        self.warm_n, self.warm_mean, self.warm_m2 = 0, 0.0, 0.0
        self.offset, self.scale = 0.0, None
        self.spread_up = self.spread_down = self.spread_acc = self.spread_sq = 0.0
        self.recent_sq, self.previous, self.spread_n, self.spread_tail = 1.0, 0.0, 0, 1.0
        self._set_spread_ref(1.0)
        self._new_reference()

    def _set_spread_ref(self, ref: float) -> None:
        """Set the reference variance (in warm-up units), and with it the detectors' scale."""
        ref = min(max(ref, spread.MIN_REF), spread.MAX_REF)
        self.spread_ref = ref
        self._spread_cap = 2.0 * spread.CAP * ref
        self._inv_sd = 1.0 / math.sqrt(self._variance_factor())

    def _variance_factor(self) -> float:
        """The detectors' variance in warm-up units: the spread reference once learned.

        The warm-up's 100 values leave the scale wrong by ~7% (far more on heavy tails),
        which Page-Hinkley's false-alarm rate feels exponentially. The spread reference is a
        winsorized variance of successive differences: a mean shift does not move it, it
        follows the stream slowly (span 5,000 events), is frozen while a spread change is
        suspected, and is learned afresh (512 events) after each spread alert. Until it is
        learned, and on streams without spread tests (``spread: false``, error streams),
        the warm-up scale stands.
        """
        if self.spread_n < spread.LEARN_BATCHES:
            return 1.0
        return max(self.spread_ref, MIN_VARIANCE_FACTOR)

    def _plan(self) -> None:
        """(index, detector, input, River update inlined) per detector, and the subset that runs
        during warm-up; rebuilt whenever a detector object is replaced. The detector is
        typed ``Any`` here: the inlined paths read River's private attributes."""
        self._feeds: tuple[tuple[int, Any, int, int], ...] = tuple(
            (i, det, mode, inline_kind(det))
            for i, (det, mode) in enumerate(zip(self._detectors, self._inputs, strict=True))
        )
        self._raw_feeds = tuple(f for f in self._feeds if f[2] != _STANDARDIZED)

    def _input_of(self, spec: DetectorSpec) -> int:
        """What a detector reads. Binary detectors read the raw 0/1 value, flipped when they
        alarm in the other direction than the one that is bad for this stream (DDM alarms
        on more 1s; on a correctness stream, 1 means right, so it reads 1 - x)."""
        if spec.type not in detectors.BINARY:
            return _STANDARDIZED if self._standardized else _RAW
        direction = detectors.alarm_direction(spec)
        bad = "fall" if self.id.kind is StreamKind.CORRECTNESS else "rise"
        return _RAW if direction in ("both", bad) else _FLIPPED

    def estimate(self) -> tuple[float, int]:
        """(recent mean, window width) for gauges; the width is the first windowed detector's,
        else the stream's length."""
        for det in self._detectors:
            width = getattr(det, "width", None)
            if width is not None:
                return (self.recent or 0.0, int(width))
        return (self.recent or 0.0, self.n)

    def _warm(self, x: float) -> None:
        self.warm_n += 1
        delta = x - self.warm_mean
        self.warm_mean += delta / self.warm_n
        self.warm_m2 += delta * (x - self.warm_mean)
        if self.warm_n >= self.warmup:
            std = math.sqrt(self.warm_m2 / (self.warm_n - 1))
            self.offset = self.warm_mean
            scale = std if std > 0 else (abs(self.warm_mean) or 1.0)
            self.scale = scale if scale >= MIN_SCALE else MIN_SCALE

    def _spread_alerts(self, event_id: str | None, ts: int, now_ms: int) -> Sequence[Alert]:
        """A spread CUSUM crossed its threshold: alert (unless cooling down), and learn the
        new spread afresh as the reference (the tests are idle meanwhile)."""
        h = (self._spread_h or 0.0) * self.spread_tail
        way = spread.direction(self.spread_up, self.spread_down, h) or "up"
        before = (self.scale or MIN_SCALE) * math.sqrt(self.spread_ref)
        after = before * math.sqrt(self.recent_sq)
        self.spread_up = self.spread_down = 0.0
        self.recent_sq = 1.0
        self.spread_n = 0
        self.spread_sq = 0.0
        self._set_spread_ref(self.spread_ref)
        season = self._season
        if self.n < self.quiet_until or (season is not None and season.holds(ts)):
            return NO_ALERTS
        if self.cooldown:
            self.quiet_until = self.n + self.cooldown
        ratio = after / before
        params = {
            "up_ratio": spread.UP_RATIO,
            "down_ratio": spread.DOWN_RATIO,
            "threshold": h,
            "std_before": before,
            "std_after": after,
        }
        change = Change(self.recent, self.recent, before, ratio, way, None)
        alert = Alert(
            alert_id=alert_id(self.id, len(self._specs), "spread", self.n),
            stream=self.id,
            detector={"type": "spread", "params": params},
            event_id=event_id,
            event_ts=ts,
            detected_at=now_ms,
            events_seen=self.n,
            change=change,
            severity=Severity.CRITICAL if ratio >= 2 or ratio <= 0.5 else Severity.WARNING,
        )
        return (alert,)

    def _update_raw_only(
        self, x: float, event_id: str | None, ts: int, now_ms: int
    ) -> Sequence[Alert]:
        """While the scale is being estimated, only detectors that read raw 0/1 values run."""
        if not self._raw_feeds:
            return NO_ALERTS
        fired = []
        for i, det, mode, _ in self._raw_feeds:
            det.update(x if mode == _RAW else 1.0 - x)
            if det.drift_detected:
                fired.append(i)
        return self._alerts(fired, event_id, ts, now_ms) if fired else NO_ALERTS

    def _alerts(
        self, fired: list[int], event_id: str | None, ts: int, now_ms: int
    ) -> Sequence[Alert]:
        """Alerts for the detectors that fired. Every detection, even one held back by the
        cooldown, starts a new reference: the next alert's ``mean_before`` is then the regime
        since the latest change point, not a mix of regimes the cooldown hid. While a
        seasonal profile is being learned, an alert that may be its cycle is held."""
        season = self._season
        if self.n < self.quiet_until or (season is not None and season.holds(ts)):
            self._new_reference()
            return NO_ALERTS
        if self.cooldown:
            # One alert per change: the first detector to fire speaks for the stream.
            fired = fired[:1]
            self.quiet_until = self.n + self.cooldown
        alerts = [self._alert(i, self._change(i), event_id, ts, now_ms) for i in fired]
        self._new_reference()
        return alerts

    def _new_reference(self) -> None:
        self.ref_n = 0
        self.ref_mean = 0.0

    def _alert(self, i: int, change: Change, event_id: str | None, ts: int, now_ms: int) -> Alert:
        spec = self._specs[i]
        return Alert(
            alert_id=alert_id(self.id, i, spec.type, self.n),
            stream=self.id,
            detector=detectors.describe(
                detectors.effective_spec(spec, self._inputs[i] == _STANDARDIZED)
            ),
            event_id=event_id,
            event_ts=ts,
            detected_at=now_ms,
            events_seen=self.n,
            change=change,
            severity=change_rules.severity(self.id, change),
        )

    def _change(self, i: int) -> Change:
        """The change detector ``i`` saw, with its own window (an int, as the schema says)."""
        before = self.ref_mean if self.ref_n else None
        scale = self.scale if self.scale is not None else self._warm_std()
        if scale is not None and self._spread_h is not None:
            scale *= math.sqrt(self._variance_factor())
        width = getattr(self._detectors[i], "width", None)
        window = None if width is None else int(width)
        return change_rules.summarize(self.id, before, self.recent, scale, window)

    def _warm_std(self) -> float | None:
        if self.warm_n < 2:
            return None
        return math.sqrt(self.warm_m2 / (self.warm_n - 1))

    def to_state(self) -> StreamState:
        """Plain values (and encoded detectors) from which :meth:`restore` rebuilds the stream."""
        return {
            "n": self.n,
            "quiet_until": self.quiet_until,
            "warm_n": self.warm_n,
            "warm_mean": self.warm_mean,
            "warm_m2": self.warm_m2,
            "offset": self.offset,
            "scale": self.scale,
            "ref_n": self.ref_n,
            "ref_mean": self.ref_mean,
            "recent": self.recent,
            "detectors": [state.encode_detector(det) for det in self._detectors],
            "spread_up": self.spread_up,
            "spread_down": self.spread_down,
            "recent_sq": self.recent_sq,
            "previous": self.previous,
            "spread_n": self.spread_n,
            "spread_ref": self.spread_ref,
            "spread_sq": self.spread_sq,
            "spread_tail": self.spread_tail,
            "spread_acc": self.spread_acc,
            "seasonal": None if self._season is None else self._season.to_state(),
        }

    def restore(self, values: object) -> None:
        """Continue from :meth:`to_state` output. Detectors whose configuration changed since
        the snapshot start afresh (the others continue exactly).

        Every field is checked (types, counts non-negative, statistics finite and within what
        inputs bounded by :data:`~streamproc.events.MAX_ABS_NUMBER` can produce): StateError
        names the first bad one, and the stream is left unchanged.
        """
        where = f"stream {self.id.model}/{self.id.kind}/{self.id.name}"
        if type(values) is dict and "seasonal" not in values:  # written before seasonality
            values = {**values, "seasonal": None}
        fields = state.named(values, STATE_FIELDS, where)
        (n, quiet, warm_n, warm_mean, warm_m2, offset, scale, ref_n, ref_mean, recent, dets) = (
            fields[:11]
        )
        up = state.number(fields[11], where, "spread_up", 0.0, _SPREAD_BOUND)
        down = state.number(fields[12], where, "spread_down", 0.0, _SPREAD_BOUND)
        recent_sq = state.number(fields[13], where, "recent_sq", 0.0, spread.CAP)
        previous = state.number(fields[14], where, "previous", -_WIDE, _WIDE)
        spread_n = min(state.count(fields[15], where, "spread_n"), spread.LEARN_BATCHES)
        spread_ref = state.number(fields[16], where, "spread_ref", spread.MIN_REF, spread.MAX_REF)
        spread_sq = state.number(fields[17], where, "spread_sq", 0.0, _squares_bound(spread_n))
        tail = state.number(
            fields[18], where, "spread_tail", 1.0, spread.tail_factor(spread.CAP**2)
        )
        n = state.count(n, where, "n")
        quiet = state.count(quiet, where, "quiet_until")
        warm_n, ref_n = (
            state.count(warm_n, where, "warm_n"),
            state.count(ref_n, where, "ref_n"),
        )
        if warm_n > n or ref_n > n:
            raise StateError(f"{where}: warm_n {warm_n} or ref_n {ref_n} exceeds n {n}")
        acc_bound = self._sum_bound(n - warm_n, spread_ref)
        spread_acc = state.number(fields[19], where, "spread_acc", 0.0, acc_bound)
        bound = _STATE_BOUND
        warm_mean = state.number(warm_mean, where, "warm_mean", -bound, bound)
        warm_m2 = state.number(warm_m2, where, "warm_m2", 0.0)
        offset = state.number(offset, where, "offset", -bound, bound)
        scale = state.optional_number(scale, where, "scale", MIN_SCALE, 2 * bound)
        ref_mean = state.number(ref_mean, where, "ref_mean", -bound, bound)
        recent = state.optional_number(recent, where, "recent", -bound, bound)
        if type(dets) is not list:
            raise StateError(f"{where}: detectors must be a list")
        season = self._restored_season(fields[20], where)
        try:
            restored = [state.decode_detector(d) for d in dets]
        except StateError as exc:
            raise StateError(f"{where}: {exc}") from exc
        # A cooldown never outlasts the configured one (a huge value would silence the stream).
        self.n, self.quiet_until = n, min(quiet, n + self.cooldown)
        self.warm_n, self.ref_n = warm_n, ref_n
        self.warm_mean, self.warm_m2, self.offset = warm_mean, warm_m2, offset
        self.scale, self.ref_mean, self.recent = scale, ref_mean, recent
        self.spread_up, self.spread_down, self.recent_sq = up, down, recent_sq
        self.previous, self.spread_n, self.spread_ref = previous, spread_n, spread_ref
        self.spread_sq, self.spread_tail, self.spread_acc = spread_sq, tail, spread_acc
        self._set_spread_ref(spread_ref)
        self._season = season
        self._season_at = seasonal.NEVER if season is None else season.due()
        for i, det in enumerate(restored[: len(self._detectors)]):
            if same_config(det, self._detectors[i]):
                self._detectors[i] = det
        self._plan()

    def _sum_bound(self, since_warm: int, ref: float) -> float:
        """Most a batch's sum of capped squares can hold ``since_warm`` events after warm-up:
        one cap per event since the batch began (the position is constant during a warm-up,
        when nothing is added). Each next event adds at most one more cap, so every state
        accepted here leads to states accepted too, and the batch mean stays within CAP
        (:meth:`_spread_batch`), so spread_sq and recent_sq stay within theirs. Without spread
        tests the sum never changes: any value up to the largest reference's batch is inert."""
        if self._spread_h is None:
            return 2.0 * spread.CAP * spread.MAX_REF * spread.BATCH
        return (since_warm & _BATCH_MASK) * 2.0 * spread.CAP * ref * _ROUNDING

    def _restored_season(self, values: object, where: str) -> seasonal.Seasonal | None:
        """The seasonal profile of a snapshot; empty when it has none (written before
        seasonality, or with it off), none when seasonality is off now."""
        if self._season is None:
            return None
        season = seasonal.Seasonal(self._season.mode)
        if values is not None:
            season.restore(values, where, _STATE_BOUND)
        return season


def _squares_bound(spread_n: int) -> float:
    """Most spread_sq can hold after ``spread_n`` learning batches: one squared batch mean
    (at most CAP^2) per batch measured (from SETTLE_BATCHES on), so the next batch's addition
    stays within the bound of ``spread_n + 1``. Once learned (and reset), it is inert."""
    if spread_n >= spread.LEARN_BATCHES:
        return spread.LEARN_BATCHES * spread.CAP**2
    return max(0, spread_n - spread.SETTLE_BATCHES) * spread.CAP**2
