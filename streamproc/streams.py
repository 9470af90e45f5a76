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
from collections.abc import Callable
from typing import Any

from streamproc import detectors, state
from streamproc.alerts import Alert, Change, Severity, StreamId, alert_id
from streamproc.errors import StateError
from streamproc.settings import DetectorSpec, StreamKind, StreamPolicy

DetectorFactory = Callable[[DetectorSpec, bool], Any]
"""Builds a River detector for a spec; the flag says whether its input is standardized."""

RECENT_SPAN = 50
_RECENT_ALPHA = 2.0 / (RECENT_SPAN + 1)
_RAW_KINDS = frozenset({StreamKind.MISSING_RATE, StreamKind.CORRECTNESS})
"""0/1 rates: their natural scale is already [0, 1], so they are never standardized."""
_STANDARDIZED, _RAW, _FLIPPED = 0, 1, 2
"""What a detector reads: (x - warm-up mean) / warm-up std, x, or 1 - x."""
_IMPROVES_WHEN_DOWN = frozenset({StreamKind.MISSING_RATE, StreamKind.ERROR})


def default_factory(spec: DetectorSpec, standardized: bool) -> Any:
    return detectors.build(detectors.effective_spec(spec, standardized))


class Stream:
    """State and detectors of one stream. Not thread-safe; the engine owns it."""

    __slots__ = (
        "_detectors",
        "_inputs",
        "_specs",
        "_standardized",
        "cooldown",
        "id",
        "n",
        "offset",
        "quiet_until",
        "recent",
        "ref_mean",
        "ref_n",
        "scale",
        "warm_m2",
        "warm_mean",
        "warm_n",
        "warmup",
    )

    def __init__(self, sid: StreamId, policy: StreamPolicy, factory: DetectorFactory) -> None:
        self.id = sid
        self._standardized = policy.standardize and sid.kind not in _RAW_KINDS
        self._specs = policy.detectors
        self._inputs = tuple(self._input_of(spec) for spec in self._specs)
        self._detectors = [
            factory(spec, mode == _STANDARDIZED)
            for spec, mode in zip(self._specs, self._inputs, strict=True)
        ]
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

    def update(self, x: float, event_id: str | None, ts: int, now_ms: int) -> list[Alert]:
        """Feed one value; return the alerts it triggers (usually none)."""
        self.n += 1
        self.ref_n += 1
        self.ref_mean += (x - self.ref_mean) / self.ref_n
        recent = self.recent
        self.recent = x if recent is None else recent + _RECENT_ALPHA * (x - recent)
        scale = self.scale
        if scale is None:
            self._warm(x)
            if self._standardized:
                return self._update_raw_only(x, event_id, ts, now_ms)
        xs = (x - self.offset) / scale if self._standardized and scale is not None else x
        values = (xs, x, 1.0 - x)
        fired: list[int] = []
        for i, det in enumerate(self._detectors):
            det.update(values[self._inputs[i]])
            if det.drift_detected:
                fired.append(i)
        if not fired:
            return []
        return self._alerts(fired, event_id, ts, now_ms)

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

    @property
    def updates_per_value(self) -> int:
        return len(self._detectors)

    def _warm(self, x: float) -> None:
        self.warm_n += 1
        delta = x - self.warm_mean
        self.warm_mean += delta / self.warm_n
        self.warm_m2 += delta * (x - self.warm_mean)
        if self.warm_n >= self.warmup:
            std = math.sqrt(self.warm_m2 / (self.warm_n - 1))
            self.offset = self.warm_mean
            self.scale = std if std > 0 else (abs(self.warm_mean) or 1.0)

    def _update_raw_only(self, x: float, event_id: str | None, ts: int, now_ms: int) -> list[Alert]:
        """While the scale is being estimated, only detectors that read raw 0/1 values run."""
        fired = []
        for i, det in enumerate(self._detectors):
            mode = self._inputs[i]
            if mode != _STANDARDIZED:
                det.update(x if mode == _RAW else 1.0 - x)
                if det.drift_detected:
                    fired.append(i)
        return self._alerts(fired, event_id, ts, now_ms) if fired else []

    def _alerts(self, fired: list[int], event_id: str | None, ts: int, now_ms: int) -> list[Alert]:
        if self.n < self.quiet_until:
            return []
        if self.cooldown:
            # One alert per change: the first detector to fire speaks for the stream.
            fired = fired[:1]
            self.quiet_until = self.n + self.cooldown
        change = self._change(fired[0])
        alerts = [self._alert(i, change, event_id, ts, now_ms) for i in fired]
        self.ref_n = 0
        self.ref_mean = 0.0
        return alerts

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
            severity=self._severity(change),
        )

    def _change(self, i: int) -> Change:
        before = self.ref_mean if self.ref_n else None
        after = self.recent
        scale = self.scale if self.scale is not None else self._warm_std()
        magnitude = None
        if before is not None and after is not None and scale:
            magnitude = (after - before) / scale
        direction = "none"
        if before is not None and after is not None and after != before:
            direction = "up" if after > before else "down"
        width = getattr(self._detectors[i], "width", None)
        return Change(before, after, scale, magnitude, direction, width)

    def _warm_std(self) -> float | None:
        if self.warm_n < 2:
            return None
        return math.sqrt(self.warm_m2 / (self.warm_n - 1))

    def _severity(self, change: Change) -> Severity:
        kind = self.id.kind
        if change.direction == "down" and kind in _IMPROVES_WHEN_DOWN:
            return Severity.INFO
        if change.direction == "up" and kind is StreamKind.CORRECTNESS:
            return Severity.INFO
        if kind in _RAW_KINDS or (kind is StreamKind.ERROR and change.magnitude is None):
            before, after = change.mean_before or 0.0, change.mean_after or 0.0
            worse = after if kind is StreamKind.MISSING_RATE else 1.0 - after
            base = before if kind is StreamKind.MISSING_RATE else 1.0 - before
            return Severity.CRITICAL if worse >= 2 * base and worse > 0 else Severity.WARNING
        if change.magnitude is not None and abs(change.magnitude) >= 2.0:
            return Severity.CRITICAL
        return Severity.WARNING

    def to_state(self) -> list[Any]:
        """Plain values (and encoded detectors) from which :meth:`restore` rebuilds the stream."""
        return [
            self.n,
            self.quiet_until,
            self.warm_n,
            self.warm_mean,
            self.warm_m2,
            self.offset,
            self.scale,
            self.ref_n,
            self.ref_mean,
            self.recent,
            [state.encode_detector(det) for det in self._detectors],
        ]

    def restore(self, values: list[Any]) -> None:
        """Continue from :meth:`to_state` output. Detectors whose configuration changed since
        the snapshot start afresh (the others continue exactly)."""
        try:
            (n, quiet, warm_n, warm_mean, warm_m2, offset, scale, ref_n, ref_mean, recent, dets) = (
                values
            )
            restored = [state.decode_detector(d) for d in dets]
        except (TypeError, ValueError) as exc:
            raise StateError(f"stream {self.id}: malformed state: {exc}") from exc
        self.n, self.quiet_until, self.warm_n, self.ref_n = int(n), int(quiet), int(warm_n), ref_n
        self.warm_mean, self.warm_m2, self.offset = float(warm_mean), float(warm_m2), float(offset)
        self.scale = None if scale is None else float(scale)
        self.ref_mean = float(ref_mean)
        self.recent = None if recent is None else float(recent)
        for i, det in enumerate(restored[: len(self._detectors)]):
            if _same_config(det, self._detectors[i]):
                self._detectors[i] = det


def _same_config(a: Any, b: Any) -> bool:
    return type(a) is type(b) and detectors.params_of(a) == detectors.params_of(b)
