"""The label join: delayed ground truth meets the prediction it is about.

Labels (outcomes with ``id`` and ``y_true`` only, :class:`~streamproc.events.LabelEvent`)
come from another system, long after the prediction. Each model that has received a label
keeps a :class:`LabelJoin`: predictions of its feature events wait for their label, labels
for their prediction, whichever comes first, for ``labels.ttl_seconds`` of event time (the
model's latest ``ts`` is the clock). A joined pair is what an outcome with both ``y_true``
and ``y_pred`` would be (:class:`Joined`), and the engine feeds it to the error and
correctness streams.

Predictions are kept from a model's first label on: models whose outcomes carry ``y_pred``
pay nothing. Both waiting sets are bounded per model (``labels.max_pending_*``; the oldest
is dropped first and counted), are part of the model's snapshot, and restore exactly.

Determinism: a joined pair's error depends only on the pair, never on which came first.
Its place in the error stream is the arrival of the later of the two, so the worker's
alerts equal ``streamproc replay``'s when each label is processed after its prediction in
both (true whenever labels come later than the features topic's consumer lag) and no
pending item expires in one and not in the other (a time to live far beyond that lag).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from streamproc import state
from streamproc.alerts import Alert, Change, Severity, StreamId, alert_id
from streamproc.domain import StreamKind
from streamproc.errors import StateError
from streamproc.events import Feature, LabelEvent, Reason, Rejection
from streamproc.settings.labels import LabelSettings

LABELS_STREAM, LABEL_SILENCE = "labels", "label_silence"
"""Stream name and detector type of the label-silence alert (kind ``arrival``)."""
Truth = str | int | bool | float
"""A label's ``y_true`` as sent."""
Side = Literal["prediction", "label"]


@dataclass(frozen=True, slots=True)
class Joined:
    """A prediction and its label, reduced as an outcome with both would be."""

    id: str
    ts: int
    """The label's event time (the outcome's)."""
    error: float
    """0/1 misclassification, or the absolute error of a number."""
    correct: bool | None
    """Whether a classification was right; None for numbers."""
    delay_ms: int
    """Label ts minus prediction ts (0 when the label is older): the label delay."""


@dataclass(frozen=True, slots=True)
class DeadLabel:
    """A label that left the join without a prediction: the dead letter to write for it."""

    model: str
    id: str
    y_true: Truth
    ts: int
    source: int
    """Where the label came from: its record's offset (worker) or line (replay); -1 unknown."""
    reason: Reason
    message: str

    def payload(self) -> dict[str, Any]:
        """The label as an outcome event (the dead letter's synthesized value)."""
        return {"model": self.model, "id": self.id, "y_true": self.y_true, "ts": self.ts}


class LabelObserver(Protocol):
    """Where join counts go (the worker's metrics); every call is O(1)."""

    def joined(self, model: str, delay_ms: int) -> None: ...
    def expired(self, model: str, side: Side) -> None: ...
    def dropped(self, model: str, side: Side) -> None: ...


class NoObserver:
    """The default observer: counts nothing (replay, tests)."""

    def joined(self, model: str, delay_ms: int) -> None:
        pass

    def expired(self, model: str, side: Side) -> None:
        pass

    def dropped(self, model: str, side: Side) -> None:
        pass


LABEL_DELAY_BUCKETS = (
    1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 259_200.0, 604_800.0,
    1_209_600.0, 2_592_000.0,
)  # fmt: skip
"""Label delay histogram bounds in seconds: a click (seconds) to a chargeback (weeks)."""
_DELAY_BOUNDS_MS = tuple(b * 1000 for b in LABEL_DELAY_BUCKETS)


class LabelTally:
    """Counts the join's outcomes between two reads by the worker's metrics: O(1) per call,
    no lock (the engine and the metrics timer share the event loop). What it holds is bounded
    by the models active between two reads (a few seconds)."""

    def __init__(self) -> None:
        self.joins: Counter[str] = Counter()
        self.expiries: Counter[tuple[str, Side]] = Counter()
        self.drops: Counter[tuple[str, Side]] = Counter()
        self.delay_counts = [0] * (len(LABEL_DELAY_BUCKETS) + 1)
        """Joins per delay bucket (the last: beyond the largest bound)."""
        self.delay_sum = 0.0
        """Seconds."""

    def joined(self, model: str, delay_ms: int) -> None:
        self.joins[model] += 1
        self.delay_counts[bisect_left(_DELAY_BOUNDS_MS, delay_ms)] += 1
        self.delay_sum += delay_ms / 1000

    def expired(self, model: str, side: Side) -> None:
        self.expiries[(model, side)] += 1

    def dropped(self, model: str, side: Side) -> None:
        self.drops[(model, side)] += 1

    def drain(self) -> LabelTally:
        """What was counted since the last drain; counting starts again from zero."""
        taken = LabelTally()
        taken.joins, self.joins = self.joins, taken.joins
        taken.expiries, self.expiries = self.expiries, taken.expiries
        taken.drops, self.drops = self.drops, taken.drops
        taken.delay_counts, self.delay_counts = self.delay_counts, taken.delay_counts
        taken.delay_sum, self.delay_sum = self.delay_sum, 0.0
        return taken


def reduce(prediction: Feature, y_true: Truth) -> tuple[float, bool | None] | None:
    """(error, correct) of a pair, or None when they cannot be compared.

    Strings compare as classes. A number prediction against an integer or boolean truth is
    a class when it is whole (feature events send predictions as numbers: 1 and 1.0 are the
    same class), else a score whose absolute error is taken; a float truth is a number.
    """
    if type(prediction) is str:
        if type(y_true) is not str:
            return None
        correct = prediction == y_true
        return (0.0 if correct else 1.0), correct
    if type(prediction) is not float or type(y_true) is str:
        return None
    truth = float(y_true)
    if type(y_true) is not float and prediction.is_integer():
        correct = prediction == truth
        return (0.0 if correct else 1.0), correct
    return abs(truth - prediction), None


class LabelJoin:
    """One model's waiting predictions and labels (insertion-ordered, oldest first)."""

    __slots__ = (
        "_limits",
        "_model",
        "_observer",
        "_silence",
        "_ttl",
        "clock",
        "count",
        "labels",
        "last_label",
        "longest_gap",
        "predictions",
        "silent",
    )

    def __init__(self, model: str, settings: LabelSettings, observer: LabelObserver) -> None:
        self._model = model
        self._limits = (settings.max_pending_predictions, settings.max_pending_labels)
        self._ttl = round(settings.ttl_seconds * 1000)
        self._observer = observer
        self._silence = (settings.silence_factor, round(settings.silence_min_seconds * 1000))
        self.count = 0
        """Labels received: the position of a label-silence alert."""
        self.last_label: tuple[str, int] | None = None
        """(id, ts) of the latest label (by ts)."""
        self.longest_gap = 0
        """Longest event-time gap between two labels seen (ms)."""
        self.silent = False
        """Whether labels were reported stopped since the latest one."""
        self.clock = 0
        """The model's latest event time seen (ms): what expiry is measured against."""
        # OrderedDict, not dict: a dict emptied from the front makes ``next(iter())`` skip
        # every deleted slot (measured: microseconds per event at 3,000 pending).
        self.predictions: OrderedDict[str, tuple[Feature, int]] = OrderedDict()
        """id -> (prediction, ts)."""
        self.labels: OrderedDict[str, tuple[Truth, int, int]] = OrderedDict()
        """id -> (y_true, ts, source)."""

    def advance(self, ts: int) -> tuple[DeadLabel, ...]:
        """Move the clock to ``ts`` if later; what expired, oldest first, is dropped (labels
        come back as dead letters). Amortized O(1): each item expires once."""
        if ts <= self.clock:
            return ()
        self.clock = ts
        horizon = ts - self._ttl
        predictions = self.predictions
        while predictions:
            pid, (_, pts) = next(iter(predictions.items()))
            if pts >= horizon:
                break
            del predictions[pid]
            self._observer.expired(self._model, "prediction")
        labels = self.labels
        if not labels or next(iter(labels.values()))[1] >= horizon:
            return ()
        dead: list[DeadLabel] = []
        while labels:
            lid, (y_true, lts, source) = next(iter(labels.items()))
            if lts >= horizon:
                break
            del labels[lid]
            self._observer.expired(self._model, "label")
            dead.append(
                DeadLabel(
                    self._model,
                    lid,
                    y_true,
                    lts,
                    source,
                    Reason.LABEL_EXPIRED,
                    f"y_true: no prediction with id {lid[:40]!r} came within "
                    f"labels.ttl_seconds={self._ttl / 1000:g} of event time",
                )
            )
        return tuple(dead)

    def prediction(self, id_: str, value: Feature, ts: int) -> Joined | DeadLabel | None:
        """A feature event's prediction: joined with its waiting label, else kept (a later
        prediction for a waiting id replaces it). A label that cannot be compared with it
        comes back as a dead letter."""
        waiting = self.labels.pop(id_, None)
        if waiting is not None:
            y_true, lts, source = waiting
            reduced = reduce(value, y_true)
            if reduced is None:
                return DeadLabel(
                    self._model, id_, y_true, lts, source, Reason.WRONG_TYPE, _mismatch(value)
                )
            return self._joined(id_, lts, reduced, lts - ts)
        predictions = self.predictions
        if id_ in predictions:
            del predictions[id_]
        elif len(predictions) >= self._limits[0]:
            predictions.popitem(last=False)
            self._observer.dropped(self._model, "prediction")
        predictions[id_] = (value, ts)
        return None

    def label(self, event: LabelEvent, source: int) -> Joined | Rejection | None:
        """A label: joined with its waiting prediction, else kept (a second label for a
        waiting id is dropped: the first stands)."""
        self._heard(event)
        id_ = event.id
        waiting = self.predictions.get(id_)
        if waiting is not None:
            value, pts = waiting
            reduced = reduce(value, event.y_true)
            if reduced is None:
                return Rejection(Reason.WRONG_TYPE, _mismatch(value), model=self._model)
            del self.predictions[id_]
            return self._joined(id_, event.ts, reduced, event.ts - pts)
        labels = self.labels
        if id_ in labels:
            self._observer.dropped(self._model, "label")
            return None
        if len(labels) >= self._limits[1]:
            labels.popitem(last=False)
            self._observer.dropped(self._model, "label")
        labels[id_] = (event.y_true, event.ts, source)
        return None

    def _heard(self, event: LabelEvent) -> None:
        self.count += 1
        self.silent = False
        last = self.last_label
        if last is None or event.ts >= last[1]:
            if last is not None and event.ts - last[1] > self.longest_gap:
                self.longest_gap = event.ts - last[1]
            self.last_label = (event.id, event.ts)

    def stopped(self, now_ms: int) -> Alert | None:
        """The label-silence alert, once, when the clock has passed the latest label by
        ``silence_factor`` times the longest gap between labels (at least
        ``silence_min_seconds``): labels stopped while predictions go on (docs/arrival.md).
        Event time only, so the worker and replay agree."""
        last = self.last_label
        if last is None or self.silent or self.count < 2:
            return None
        factor, least = self._silence
        window = max(factor * self.longest_gap, least)
        quiet = self.clock - last[1]
        if quiet <= window:
            return None
        self.silent = True
        stream = StreamId(self._model, StreamKind.ARRIVAL, LABELS_STREAM)
        return Alert(
            alert_id=alert_id(stream, 0, LABEL_SILENCE, self.count),
            stream=stream,
            detector={
                "type": LABEL_SILENCE,
                "params": {"silence_factor": factor, "silence_min_seconds": least / 1000},
            },
            event_id=last[0],
            event_ts=last[1],
            detected_at=now_ms,
            events_seen=self.count,
            change=Change(self.longest_gap / 1000, quiet / 1000, None, None, "down", None),
            severity=Severity.CRITICAL,
        )

    def _joined(self, id_: str, ts: int, reduced: tuple[float, bool | None], delay: int) -> Joined:
        delay = max(delay, 0)
        self._observer.joined(self._model, delay)
        return Joined(id_, ts, reduced[0], reduced[1], delay)

    def to_state(self) -> dict[str, Any]:
        """Named fields; the pending items are columns (names once, not once per item)."""
        last = self.last_label
        return {
            "silence": {
                "count": self.count,
                "last": None if last is None else {"id": last[0], "ts": last[1]},
                "longest_gap": self.longest_gap,
                "silent": self.silent,
            },
            "clock": self.clock,
            "predictions": {
                "ids": list(self.predictions),
                "values": [v for v, _ in self.predictions.values()],
                "ts": [ts for _, ts in self.predictions.values()],
            },
            "labels": {
                "ids": list(self.labels),
                "y_true": [y for y, _, _ in self.labels.values()],
                "ts": [ts for _, ts, _ in self.labels.values()],
                "sources": [src for _, _, src in self.labels.values()],
            },
        }

    def restore(self, values: object, where: str) -> None:
        """Continue from :meth:`to_state` output, every field checked (a snapshot is input);
        at most the configured bounds are kept (the newest, when they were lowered)."""
        watch, clock, predictions, labels = state.named(values, _FIELDS, f"{where}: labels")
        count, last, gap, silent = state.named(watch, _SILENCE, f"{where}: label silence")
        self.count = state.count(count, where, "labels count")
        self.longest_gap = state.count(gap, where, "labels longest gap")
        self.silent = state.flag(silent, where, "labels silent")
        if last is not None:
            lid, lts = state.named(last, ("id", "ts"), f"{where}: latest label")
            self.last_label = (_id(lid, where), _ts(lts, where))
        self.clock = state.count(clock, where, "labels clock")
        pending = _columns(predictions, ("ids", "values", "ts"), f"{where}: pending predictions")
        for pid, value, ts in pending[-self._limits[0] :]:
            self.predictions[_id(pid, where)] = (_prediction(value, where), _ts(ts, where))
        waiting = _columns(labels, ("ids", "y_true", "ts", "sources"), f"{where}: pending labels")
        for lid, y_true, ts, source in waiting[-self._limits[1] :]:
            if type(source) is not int or source < -1:
                raise StateError(f"{where}: pending label: bad source {str(source)[:20]}")
            self.labels[_id(lid, where)] = (_truth(y_true, where), _ts(ts, where), source)


_FIELDS = ("silence", "clock", "predictions", "labels")
_SILENCE = ("count", "last", "longest_gap", "silent")


def _columns(values: object, keys: tuple[str, ...], where: str) -> list[tuple[Any, ...]]:
    """Rows of a columnar mapping whose columns are lists of one length."""
    columns = state.named(values, keys, where)
    if any(type(c) is not list for c in columns) or len({len(c) for c in columns}) != 1:
        raise StateError(f"{where}: columns {', '.join(keys)} must be lists of one length")
    return list(zip(*columns, strict=True))


def _mismatch(prediction: Feature) -> str:
    kind = "a string" if type(prediction) is str else "a number"
    return f"y_true: cannot be compared with the prediction, which is {kind}"


def _id(value: object, where: str) -> str:
    if type(value) is not str or not value:
        raise StateError(f"{where}: pending id: expected a non-empty string")
    return value


def _ts(value: object, where: str) -> int:
    return state.count(value, where, "pending ts")


def _prediction(value: object, where: str) -> Feature:
    if type(value) is str:
        return value
    return state.number(value, where, "pending prediction", -1e100, 1e100)


def _truth(value: object, where: str) -> Truth:
    if type(value) in (str, bool, int) or type(value) is float:
        return value  # type: ignore[return-value]
    raise StateError(f"{where}: pending label: y_true must be a string, number or boolean")
