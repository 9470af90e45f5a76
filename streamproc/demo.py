"""A deterministic demo scenario: a few models, with drifts announced in advance.

The scenario is a pure generator of (time offset, kind, event) so the same
seed gives the same events whether they are produced to Kafka in real time
(``streamproc demo``) or written to a file for ``streamproc replay``.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from streamproc.events import EventKind


@dataclass(frozen=True, slots=True)
class Drift:
    """A change the demo injects, announced when the demo starts."""

    at_seconds: float
    model: str
    description: str


SCHEDULE: tuple[Drift, ...] = (
    Drift(20.0, "fraud-v3", "feature 'amount' mean shifts up by 2 standard deviations"),
    Drift(
        30.0,
        "churn-v1",
        "an upstream change: 'tenure' goes missing in 25% of events (was 1%), "
        "'monthly_charges' and 'support_calls' shift up (one model rollup alert)",
    ),
    Drift(40.0, "upsell-v2", "error rate jumps from 5% to 25% on outcomes"),
    Drift(40.0, "credit-v1", "accuracy drops from 92% to 60%; its labels come 5 s late"),
    Drift(45.0, "fraud-v3", "feature 'country' is IN in 60% of events (was 20%): a category alert"),
    Drift(50.0, "search-v1", "stops sending (a silence alert once its silence window passes)"),
    Drift(60.0, "reco-v2", "sends half as many events (a rate alert within a few buckets)"),
    Drift(90.0, "search-v1", "sends again (a recovered alert)"),
)

MODELS = ("fraud-v3", "churn-v1", "upsell-v2")
"""The drift models, in turn at ``rate``; their events do not depend on the arrival models."""
ARRIVAL_MODELS = ("search-v1", "reco-v2")
"""Arrival models, each on top at a tenth of ``rate``: one falls silent, one slows down."""
SILENT = (50.0, 90.0)
"""search-v1 sends nothing in this interval (seconds)."""
HALVED_AT = 60.0
"""reco-v2 sends half as often from here on."""
COUNTRY_AT = 45.0
"""fraud-v3's country mix shifts from here on (after its category warm-up at the default
rates: 1,000 events at 20 to 33 per second)."""
COUNTRIES = ("DE", "FR", "US", "BR", "IN")
COUNTRIES_AFTER = (*COUNTRIES, "IN", "IN", "IN", "IN", "IN")


@dataclass(frozen=True, slots=True)
class DemoEvent:
    at_seconds: float
    """When to send it, relative to the demo's start."""
    kind: EventKind
    model: str
    body: dict[str, Any]


def scenario(
    rate: float, seed: int = 7, start_ms: int = 0, *, labelled: bool = True
) -> Iterator[DemoEvent]:
    """Endless demo events at ``rate`` feature events per second (outcomes on top, ~1 in 2),
    merged in time with the arrival models' feature events (``rate / 10`` each, on top).

    ``start_ms`` is the event time of the first event; each event's ``ts`` is
    ``start_ms`` plus its offset, so a file written from the scenario carries
    realistic event times. ``labelled`` adds credit-v1, whose labels come late: its joins
    depend on the two topics being consumed within its label delay of each other
    (docs/events.md, Labels), which tests that interleave them freely do not do.
    """
    drifts = _drift_models(rate, seed, start_ms)
    arrivals = (_arrival_model(m, rate / 10, seed, start_ms) for m in ARRIVAL_MODELS)
    labels = [_labelled_model(rate / 5, seed, start_ms)] if labelled else []
    return heapq.merge(drifts, *arrivals, *labels, key=lambda e: e.at_seconds)


def _drift_models(rate: float, seed: int, start_ms: int) -> Iterator[DemoEvent]:
    rng = random.Random(seed)
    step = 1.0 / rate
    n = 0
    while True:
        t = n * step
        model = MODELS[n % len(MODELS)]
        ts = start_ms + round(t * 1000)
        event_id = f"{model}-{n}"
        yield DemoEvent(t, EventKind.FEATURE, model, _features(rng, model, t, event_id, ts))
        if n % 2 == 0:
            yield DemoEvent(t, EventKind.OUTCOME, model, _outcome(rng, model, t, event_id, ts))
        n += 1


def _arrival_model(model: str, rate: float, seed: int, start_ms: int) -> Iterator[DemoEvent]:
    """Feature events of an arrival model: search-v1 pauses, reco-v2 halves its rate."""
    rng = random.Random(f"{seed}/{model}")
    n, t = 0, 0.0
    while True:
        if not (model == "search-v1" and SILENT[0] <= t < SILENT[1]):
            ts = start_ms + round(t * 1000)
            features = {"query_length": rng.randint(1, 12), "results": rng.randint(0, 50)}
            body = {
                "model": model,
                "id": f"{model}-{n}",
                "ts": ts,
                "features": features,
                "prediction": round(rng.random(), 4),
            }
            yield DemoEvent(t, EventKind.FEATURE, model, body)
            n += 1
        slower = model == "reco-v2" and t >= HALVED_AT
        t += (2.0 if slower else 1.0) / rate


LABELLED = "credit-v1"
LABEL_DELAY = 5.0
"""Seconds between a credit-v1 prediction and its label (docs/events.md, Labels)."""


def _labelled_model(rate: float, seed: int, start_ms: int) -> Iterator[DemoEvent]:
    """credit-v1: feature events with a class prediction, and labels (``id`` and ``y_true``
    only) ``LABEL_DELAY`` seconds later, as from a separate system; its accuracy drops."""
    rng = random.Random(f"{seed}/{LABELLED}")
    due: deque[tuple[float, dict[str, Any]]] = deque()
    n = 0
    while True:
        t = n / rate
        while due and due[0][0] <= t:
            at, label = due.popleft()
            yield DemoEvent(at, EventKind.OUTCOME, LABELLED, label)
        event_id = f"{LABELLED}-{n}"
        truth = "default" if rng.random() < 0.2 else "repaid"
        right = rng.random() < (0.60 if _after(LABELLED, t) else 0.92)
        predicted = truth if right else ("repaid" if truth == "default" else "default")
        ts = start_ms + round(t * 1000)
        features = {"income": round(rng.lognormvariate(10.5, 0.4)), "loans": rng.randint(0, 5)}
        body = {"model": LABELLED, "id": event_id, "ts": ts, "features": features}
        yield DemoEvent(t, EventKind.FEATURE, LABELLED, {**body, "prediction": predicted})
        label_at = t + LABEL_DELAY
        label_ts = start_ms + round(label_at * 1000)
        due.append((label_at, {"model": LABELLED, "id": event_id, "ts": label_ts, "y_true": truth}))
        n += 1


def _after(model: str, t: float) -> bool:
    return any(d.model == model and t >= d.at_seconds for d in SCHEDULE)


def _features(rng: random.Random, model: str, t: float, eid: str, ts: int) -> dict[str, Any]:
    drifted = _after(model, t)
    prediction: float | str
    if model == "fraud-v3":
        amount = rng.gauss(120.0 + (2 * 35.0 if drifted else 0.0), 35.0)
        features: dict[str, Any] = {
            "amount": round(amount, 2),
            "account_age_days": rng.randint(1, 3650),
            "country": rng.choice(COUNTRIES_AFTER if t >= COUNTRY_AT else COUNTRIES),
            "is_new_device": rng.random() < 0.1,
        }
        prediction = round(min(1.0, max(0.0, rng.gauss(0.1, 0.05))), 4)
    elif model == "churn-v1":
        missing = rng.random() < (0.25 if drifted else 0.01)
        features = {
            "tenure": None if missing else rng.randint(1, 72),
            "monthly_charges": round(rng.gauss(70.0 + (50.0 if drifted else 0.0), 20.0), 2),
            "support_calls": rng.randint(0, 6) + (4 if drifted else 0),
        }
        prediction = round(rng.random(), 4)
    else:
        features = {
            "basket_value": round(rng.lognormvariate(3.5, 0.6), 2),
            "visits_30d": rng.randint(0, 40),
        }
        prediction = "yes" if rng.random() < 0.3 else "no"
    return {"model": model, "id": eid, "ts": ts, "features": features, "prediction": prediction}


def _outcome(rng: random.Random, model: str, t: float, eid: str, ts: int) -> dict[str, Any]:
    rate = 0.25 if (model == "upsell-v2" and _after(model, t)) else 0.05
    wrong = rng.random() < rate
    y_true = "yes" if rng.random() < 0.3 else "no"
    y_pred = ("no" if y_true == "yes" else "yes") if wrong else y_true
    return {"model": model, "id": eid, "ts": ts, "y_true": y_true, "y_pred": y_pred}
