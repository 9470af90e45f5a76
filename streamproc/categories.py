"""One category stream: the share of each tracked category, watched by Bernoulli CUSUMs.

Method (docs/detectors.md, "Category streams"). The first ``warmup`` events build a
reference: counts of every category (at most ``5 * top_k`` distinct are counted, the rest
go to ``__other__``); the ``top_k`` most frequent with at least :data:`MIN_TRACKED`
occurrences become the tracked slots, everything else is ``__other__``. Then each slot
runs two CUSUMs on its 0/1 indicator (this event is that category or not), tuned to a
rise and a fall of its share by ``max(min_change_abs, min_change_rel * share)``: the
optimal test for a known shift (Page; Lorden), with ``ARL0 >= exp(threshold)`` per
detector. A new category gets a free slot at its second occurrence, with a reference share
of the floor ``MIN_TRACKED / warmup``, so one arriving at volume trips its rise CUSUM;
with no free slot it counts in ``__other__``, whose rises are watched the same way.

Cost: an event touches only its own category's slot. Between two of its occurrences a
category saw only zeros, whose CUSUM increments are constant, so they are applied at once
(a rise CUSUM falls to its floor and stays there, a fall CUSUM grows linearly): the result
is exactly the per-event CUSUM. Every ``sweep_events`` events all slots are brought up to
date (a vanished category shows up then) and the reference shares are refreshed from the
counts, which keep growing until an alert; an alert starts a new reference.

Memory is bounded: ``top_k + 1`` slots while detecting, ``5 * top_k + 1`` counts while
building a reference, whatever the cardinality of the feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from streamproc import state
from streamproc.alerts import Alert, CategoryShare, Change, Severity, StreamId, alert_id
from streamproc.errors import StateError
from streamproc.settings.categories import CategorySettings

OTHER = "__other__"
"""The slot of every category not tracked."""
DETECTOR = "category_cusum"
"""The ``detector.type`` of category alerts."""
CANDIDATES = 5
"""Distinct categories counted while building a reference, per tracked slot."""
RECENT_SPAN = 200
_ALPHA = 2.0 / (RECENT_SPAN + 1)
_KEEP = 1.0 - _ALPHA
MIN_TRACKED = 5
"""Fewest occurrences in the reference for a category to get a slot: singletons (ids sent
as a feature) would otherwise take the slots, vanish, and leave ``__other__`` seemingly
growing."""
MAX_NAMED = 10
"""Most categories an alert names."""
_NO_ALERTS: tuple[Alert, ...] = ()


class CategoryStream:
    """State of one category stream. Not thread-safe; the engine owns it."""

    __slots__ = (
        "_h",
        "_s",
        "dn",
        "id",
        "known",
        "last",
        "n",
        "names",
        "o_dn",
        "o_up",
        "p0",
        "pending",
        "recent",
        "ref",
        "ref_n",
        "slots",
        "up",
        "warm",
        "z_dn",
        "z_up",
    )

    def __init__(self, sid: StreamId, settings: CategorySettings) -> None:
        self.id = sid
        self._s = settings
        self._h = settings.threshold
        self.n = 0
        self.ref_n = 0
        self.warm: dict[str, int] | None = {}
        """Counts while building a reference (None while detecting)."""
        self.known = 0
        """Slots taken when the reference was set; those after are new categories."""
        self.pending: dict[str, None] = {}
        """Untracked categories seen once lately, oldest first (at most ``top_k``)."""
        self._clear_slots()

    def _clear_slots(self) -> None:
        self.slots: dict[str, int] = {}
        self.names: list[str] = []
        self.ref: list[int] = []
        self.last: list[int] = []
        self.up: list[float] = []
        self.dn: list[float] = []
        self.recent: list[float] = []
        self.p0: list[float] = []
        self.o_up: list[float] = []
        self.z_up: list[float] = []
        self.o_dn: list[float] = []
        self.z_dn: list[float] = []

    @property
    def updates_per_value(self) -> int:
        return 1

    def update(self, value: str, event_id: str | None, ts: int, now_ms: int) -> Sequence[Alert]:
        """Feed one category; return the alerts it triggers (usually none)."""
        n = self.n = self.n + 1
        warm = self.warm
        if warm is not None:
            self._count_warm(warm, value)
            return _NO_ALERTS
        s = self.slots.get(value)
        if s is None:
            s = self._admit(value)
        self.ref_n += 1
        self.ref[s] += 1
        zeros = n - 1 - self.last[s]
        self.last[s] = n
        self.recent[s] = self.recent[s] * _KEEP**zeros * _KEEP + _ALPHA
        up = self.up[s] + zeros * self.z_up[s]
        up = (up if up > 0.0 else 0.0) + self.o_up[s]
        dn = self.dn[s] + zeros * self.z_dn[s]
        fired = up > self._h or dn > self._h
        dn += self.o_dn[s]
        self.up[s] = up
        self.dn[s] = dn if dn > 0.0 else 0.0
        if fired:
            return self._alert(event_id, ts, now_ms, s)
        if n % self._s.sweep_events == 0:
            return self._sweep(event_id, ts, now_ms)
        return _NO_ALERTS

    def _count_warm(self, warm: dict[str, int], value: str) -> None:
        if value in warm or len(warm) < CANDIDATES * self._s.top_k:
            warm[value] = warm.get(value, 0) + 1
        else:
            warm[OTHER] = warm.get(OTHER, 0) + 1
        self.ref_n += 1
        if self.ref_n >= self._s.warmup:
            self._arm(warm)

    def _arm(self, warm: dict[str, int]) -> None:
        """End of the reference: the most frequent categories become the tracked slots."""
        other = warm.pop(OTHER, 0)
        ranked = sorted(warm.items(), key=lambda kv: (-kv[1], kv[0]))
        top = [kv for kv in ranked[: self._s.top_k] if kv[1] >= MIN_TRACKED]
        other += sum(c for _, c in ranked[len(top) :])
        self._clear_slots()
        self._new_slot(OTHER, other)
        for name, count in top:
            self._new_slot(name, count)
        self.warm = None
        self.known = len(self.names)
        for s in range(len(self.names)):
            self.recent[s] = self.ref[s] / self.ref_n
            self._tune(s)

    def _new_slot(self, name: str, count: int) -> int:
        s = len(self.names)
        self.slots[name] = s
        self.names.append(name)
        self.ref.append(count)
        self.last.append(self.n)
        for values in (
            self.up,
            self.dn,
            self.recent,
            self.p0,
            self.o_up,
            self.z_up,
            self.o_dn,
            self.z_dn,
        ):
            values.append(0.0)
        return s

    def _admit(self, value: str) -> int:
        """A category unseen in the reference: a slot of its own while there is room, at its
        second occurrence among the last ``top_k`` untracked ones (ids sent as a feature
        never repeat, so they stay in ``__other__`` instead of filling the slots)."""
        if len(self.names) > self._s.top_k:
            return 0
        pending = self.pending
        if value not in pending:
            if len(pending) >= self._s.top_k:
                del pending[next(iter(pending))]
            pending[value] = None
            return 0
        del pending[value]
        s = self._new_slot(value, 0)
        self.last[s] = self.n - 1  # settled up to the event before this one
        self._tune(s)
        return s

    def _tune(self, s: int) -> None:
        """Retune slot ``s`` to its current reference share, floored at the largest share a
        category left untracked by the reference could have had (``MIN_TRACKED / warmup``):
        a new category, or one that was merely rare, must rise by ``min_change_abs`` above
        that before it alerts."""
        p0 = max(self.ref[s] / self.ref_n, MIN_TRACKED / self._s.warmup)
        self._apply(s, p0)
        if not self.z_dn[s]:
            self.dn[s] = 0.0

    def _apply(self, s: int, p0: float) -> None:
        """CUSUM increments of slot ``s`` for the reference share ``p0``."""
        self.p0[s] = p0
        d = max(self._s.min_change_abs, self._s.min_change_rel * p0)
        if p0 < 1.0:
            p1 = min(p0 + d, (1.0 + p0) / 2)
            self.o_up[s] = math.log(p1 / p0)
            self.z_up[s] = math.log((1.0 - p1) / (1.0 - p0))
        else:
            self.o_up[s] = self.z_up[s] = 0.0
        # __other__ falls whenever a new category gets a slot: only its rises are news.
        if s and self._s.min_share <= p0 < 1.0:
            q1 = max(p0 - d, p0 / 4)
            self.o_dn[s] = math.log(q1 / p0)
            self.z_dn[s] = math.log((1.0 - q1) / (1.0 - p0))
        else:
            self.o_dn[s] = self.z_dn[s] = 0.0

    def _settle(self) -> None:
        """Apply every slot's pending zeros, up to the current event."""
        n = self.n
        for s in range(len(self.names)):
            zeros = n - self.last[s]
            if zeros:
                self.last[s] = n
                self.recent[s] *= _KEEP**zeros
                up = self.up[s] + zeros * self.z_up[s]
                self.up[s] = up if up > 0.0 else 0.0
                self.dn[s] += zeros * self.z_dn[s]

    def _sweep(self, event_id: str | None, ts: int, now_ms: int) -> Sequence[Alert]:
        self._settle()
        h = self._h
        for s, x in enumerate(self.dn):
            if x > h:
                return self._alert(event_id, ts, now_ms, s)
        for s in range(len(self.names)):
            self._tune(s)
        return _NO_ALERTS

    def _alert(self, event_id: str | None, ts: int, now_ms: int, slot: int) -> Sequence[Alert]:
        """``slot`` is the one whose detector fired (its statistic may have been brought back
        under the threshold by the very event that revealed it)."""
        self._settle()
        moved = self._moved(slot)
        top = moved[0]
        change = Change(
            mean_before=top.share_before,
            mean_after=top.share_after,
            scale=None,
            magnitude=top.share_after - top.share_before,
            direction="up" if top.share_after > top.share_before else "down",
            window=self.ref_n,
            categories=tuple(moved),
        )
        alert = Alert(
            alert_id=alert_id(self.id, 0, DETECTOR, self.n),
            stream=self.id,
            detector=self.describe(),
            event_id=event_id,
            event_ts=ts,
            detected_at=now_ms,
            events_seen=self.n,
            change=change,
            severity=_severity(moved),
        )
        self.ref_n = 0
        self.warm = {}
        self.pending = {}
        self._clear_slots()
        return (alert,)

    def _moved(self, slot: int) -> list[CategoryShare]:
        """The categories whose detector fired, then those that moved by a detectable
        amount, largest move first."""
        h, ref_n = self._h, self.ref_n
        scored = []
        for s, name in enumerate(self.names):
            before, after = self.ref[s] / ref_n, self.recent[s]
            d = max(self._s.min_change_abs, self._s.min_change_rel * before)
            fired = s == slot or self.up[s] > h or self.dn[s] > h
            if fired or abs(after - before) >= d:
                scored.append((not fired, -abs(after - before), name, before, after))
        scored.sort()
        known = self.known
        return [_share(name, b, a, self.slots[name] >= known) for _, _, name, b, a in scored][
            :MAX_NAMED
        ]

    def describe(self) -> dict[str, Any]:
        s = self._s
        return {
            "type": DETECTOR,
            "params": {
                "top_k": s.top_k,
                "warmup": s.warmup,
                "min_change_abs": s.min_change_abs,
                "min_change_rel": s.min_change_rel,
                "min_share": s.min_share,
                "threshold": round(self._h, 6),
                "sweep_events": s.sweep_events,
            },
        }

    def estimate(self) -> tuple[float, int]:
        """(share of the most frequent tracked category lately, categories tracked)."""
        if not self.recent:
            return (0.0, 0)
        return (max(self.recent), len(self.names))

    def to_state(self) -> dict[str, Any]:
        """Named values from which :meth:`restore` rebuilds the stream exactly; the slots are
        columns, so each name is written once, not once per category."""
        if self.warm is not None:
            return {
                "n": self.n,
                "ref_n": self.ref_n,
                "warm": dict(self.warm),
                "slots": None,
                "known": 0,
                "pending": [],
            }
        tracked = range(len(self.names))
        slots = {
            "names": list(self.names),
            "ref": [self.ref[s] for s in tracked],
            "last": [self.last[s] for s in tracked],
            "up": [self.up[s] for s in tracked],
            "down": [self.dn[s] for s in tracked],
            "recent": [self.recent[s] for s in tracked],
            "p0": [self.p0[s] for s in tracked],
        }
        return {
            "n": self.n,
            "ref_n": self.ref_n,
            "warm": None,
            "slots": slots,
            "known": self.known,
            "pending": list(self.pending),
        }

    def restore(self, values: object) -> None:
        """Continue from :meth:`to_state` output; every field is checked (StateError names
        the first bad one) and the stream is left unchanged on failure."""
        where = f"stream {self.id.model}/{self.id.kind}/{self.id.name}"
        n, ref_n, warm, slots, known, pending = state.named(values, _FIELDS, where)
        n = state.count(n, where, "n")
        ref_n = state.count(ref_n, where, "ref_n")
        if ref_n > n:
            raise StateError(f"{where}: ref_n {ref_n} exceeds n {n}")
        if (warm is None) == (slots is None):
            raise StateError(f"{where}: exactly one of warm-up counts and slots must be set")
        if warm is not None:
            if known != 0 or pending != []:
                raise StateError(f"{where}: a stream building its reference has no slots")
            self._restore_warm(warm, n, ref_n, where)
            return
        decoded = self._decode_slots(slots, n, ref_n, where)
        known = state.count(known, where, "known slots")
        if not 1 <= known <= len(decoded):
            raise StateError(f"{where}: known slots {known} not in [1, {len(decoded)}]")
        names = {item[0] for item in decoded}
        if (
            type(pending) is not list
            or len(pending) > self._s.top_k
            or any(type(p) is not str or p in names for p in pending)
            or len(set(pending)) != len(pending)
        ):
            raise StateError(f"{where}: pending must be at most top_k distinct untracked names")
        self.n, self.ref_n, self.warm, self.known = n, ref_n, None, known
        self._clear_slots()
        for name, ref, last, up, dn, recent, p0 in decoded:
            s = self._new_slot(name, ref)
            self.last[s], self.up[s], self.dn[s], self.recent[s] = last, up, dn, recent
            self._apply(s, p0)
        self.pending = dict.fromkeys(pending)

    def _restore_warm(self, warm: object, n: int, ref_n: int, where: str) -> None:
        limit = CANDIDATES * self._s.top_k + 1
        if type(warm) is not dict or len(warm) > limit:
            raise StateError(f"{where}: warm-up counts must be a mapping of at most {limit}")
        counts = {k: state.count(v, where, "warm-up count") for k, v in warm.items()}
        if sum(counts.values()) != ref_n or ref_n >= self._s.warmup:
            raise StateError(f"{where}: warm-up counts do not add up to ref_n {ref_n}")
        self.n, self.ref_n, self.warm, self.known = n, ref_n, counts, 0
        self._clear_slots()
        self.pending = {}

    def _decode_slots(self, slots: object, n: int, ref_n: int, where: str) -> list[Any]:
        limit = self._s.top_k + 1
        columns = state.named(slots, _SLOT_FIELDS, f"{where}: slots")
        lengths = {len(c) if type(c) is list else -1 for c in columns}
        if len(lengths) != 1 or not 1 <= lengths.pop() <= limit or ref_n == 0:
            raise StateError(
                f"{where}: slots must be columns of one length, 1 to {limit}, with ref_n > 0"
            )
        out: list[Any] = []
        seen: set[str] = set()
        for i, row in enumerate(zip(*columns, strict=True)):
            name = row[0]
            if type(name) is not str or name in seen or (i == 0) != (name == OTHER):
                raise StateError(f"{where}: slot {i}: bad or repeated category name")
            seen.add(name)
            last = state.count(row[2], where, "slot position")
            if last > n:
                raise StateError(f"{where}: slot {i}: position {last} beyond n {n}")
            out.append(
                (
                    name,
                    state.count(row[1], where, "slot count"),
                    last,
                    state.number(row[3], where, "up", 0.0, 1e12),
                    state.number(row[4], where, "down", 0.0, 1e12),
                    state.number(row[5], where, "recent share", 0.0, 1.0),
                    state.number(row[6], where, "reference share", 1e-9, 1.0),
                )
            )
        if sum(item[1] for item in out) != ref_n:
            raise StateError(f"{where}: slot counts do not add up to ref_n {ref_n}")
        return out


_FIELDS = ("n", "ref_n", "warm", "slots", "known", "pending")
"""The keys of :meth:`CategoryStream.to_state`."""
_SLOT_FIELDS = ("names", "ref", "last", "up", "down", "recent", "p0")
"""The columns of its slots: one entry per tracked category, ``__other__`` first."""


def _share(name: str, before: float, after: float, new: bool) -> CategoryShare:
    if new:
        how = "new"
    elif after < before / 10:
        how = "vanished"
    else:
        how = "up" if after > before else "down"
    return CategoryShare(name, before, after, how)


def _severity(moved: list[CategoryShare]) -> Severity:
    for c in moved:
        if c.change in ("new", "vanished") or c.share_after >= 2 * c.share_before:
            return Severity.CRITICAL
        if c.share_after <= c.share_before / 2:
            return Severity.CRITICAL
    return Severity.WARNING
