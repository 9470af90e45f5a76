"""Hold a model's stream alerts briefly, so a model alert covering them pages instead.

When many streams of one model drift together, the engine publishes each
stream's alert and then one ``model`` alert listing them. Programs read them
all from the topic; a human should get one page. So, like Alertmanager's
``group_wait``, a firing stream alert waits ``delay`` seconds (on the router's
clock, from when it was read) before it is released to the sinks; a model
alert read meanwhile drops the ones it lists. While a model alert is firing,
later alerts of its listed streams are dropped too, and so are the resolved
messages of dropped alerts (their firing was never delivered).

Order per model is kept: a model's messages leave in the order they were
read, so a message behind a held alert waits for it. This module does no
I/O; the router feeds it and takes what is due.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from streamproc.route.messages import FIRING, RESOLVED, RoutedAlert

T = TypeVar("T")

SUPPRESSED_MEMORY = 100_000
"""Ids of dropped alerts remembered, so their resolved messages are dropped too."""


@dataclass(frozen=True, slots=True)
class _Held(Generic[T]):
    item: T
    alert: RoutedAlert
    due: float


class Grouper(Generic[T]):
    """Per-model queues of messages (``item`` carries the caller's envelope)."""

    def __init__(self, delay: float, suppressed_memory: int = SUPPRESSED_MEMORY) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self.delay = delay
        self._queues: dict[str, deque[_Held[T]]] = {}
        self._active: dict[str, dict[str, RoutedAlert]] = {}
        self._suppressed: OrderedDict[str, None] = OrderedDict()
        self._memory = suppressed_memory

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def add(self, item: T, alert: RoutedAlert, now: float) -> list[T]:
        """Queue a message; returns the items it makes unnecessary (it among them, maybe)."""
        if alert.alert_id in self._suppressed:
            return [item]
        if alert.is_model_alert:
            return self._add_model_alert(item, alert, now)
        if alert.status == FIRING and self._covered_by_active(alert):
            self._suppress(alert.alert_id)
            return [item]
        hold = self.delay if alert.status == FIRING else 0.0
        self._queues.setdefault(alert.model, deque()).append(_Held(item, alert, now + hold))
        return []

    def release(self, now: float) -> list[T]:
        """The messages due at ``now``, in read order per model."""
        out: list[T] = []
        for model in list(self._queues):
            queue = self._queues[model]
            while queue and queue[0].due <= now:
                out.append(queue.popleft().item)
            if not queue:
                del self._queues[model]
        return out

    def next_due(self) -> float | None:
        """When the next held message is due, or None when nothing is held."""
        return min((q[0].due for q in self._queues.values() if q), default=None)

    def _add_model_alert(self, item: T, alert: RoutedAlert, now: float) -> list[T]:
        active = self._active.setdefault(alert.model, {})
        if alert.status == RESOLVED:
            active.pop(alert.alert_id, None)
            if not active:
                del self._active[alert.model]
        else:
            active[alert.alert_id] = alert
        dropped: list[T] = []
        queue = self._queues.get(alert.model, deque())
        kept: deque[_Held[T]] = deque()
        for held in queue:
            if (
                alert.status == FIRING
                and held.alert.status == FIRING
                and held.alert.covered_by(alert)
            ):
                self._suppress(held.alert.alert_id)
                dropped.append(held.item)
            else:
                kept.append(held)
        kept.append(_Held(item, alert, now))
        self._queues[alert.model] = kept
        return dropped

    def _covered_by_active(self, alert: RoutedAlert) -> bool:
        return any(alert.covered_by(m) for m in self._active.get(alert.model, {}).values())

    def _suppress(self, alert_id: str) -> None:
        self._suppressed[alert_id] = None
        self._suppressed.move_to_end(alert_id)
        while len(self._suppressed) > self._memory:
            self._suppressed.popitem(last=False)
