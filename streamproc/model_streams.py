"""The streams streamproc keeps for one model, and their snapshot layout.

:class:`~streamproc.engine.Engine` owns the models and decides what each event does to
them; this module holds what a model *is* (its features' streams, its outcome streams,
its arrival monitor, label join and active alerts) and how a model is written into a
snapshot, so that the engine reads as the rules and this as the record.
"""

from __future__ import annotations

from typing import Any

from streamproc import lifecycle, snapshot_v1
from streamproc.alerts import StreamId
from streamproc.arrival import ModelArrival
from streamproc.categories import CategoryStream
from streamproc.domain import StreamKind
from streamproc.labels import LabelJoin
from streamproc.lifecycle import Episodes
from streamproc.streams import Stream

MODEL_FIELDS = (
    "features",
    "prediction",
    "errors",
    "correctness",
    "arrival",
    "labels",
    "prediction_category",
    "episodes",
)
"""The keys of a model in a snapshot; ``arrival`` is null when arrival monitoring is off,
``labels`` when the model joins no labels, ``prediction_category`` when its predictions are
not labels, ``episodes`` (its active alerts, docs/alerts.md "Lifecycle") before its first
alert."""
FEATURE_FIELDS = ("value", "missing", "category")
"""The keys of a feature in a snapshot; ``value`` is null for a feature never numeric,
``category`` for one never a string."""


class FeatureStreams:
    """The streams of one feature of one model."""

    __slots__ = ("category", "missing", "value")

    def __init__(self, missing: Stream) -> None:
        self.missing = missing
        self.value: Stream | None = None
        self.category: CategoryStream | None = None
        """Its category stream, from its first string value (engine.categories)."""


class ModelStreams:
    """Every stream of one model, and what it needs besides (arrival, labels, alerts)."""

    __slots__ = (
        "arrival",
        "correctness",
        "episodes",
        "errors",
        "features",
        "labels",
        "prediction",
        "prediction_category",
        "seen",
    )

    def __init__(self) -> None:
        self.features: dict[str, FeatureStreams] = {}
        self.prediction: Stream | None = None
        self.prediction_category: CategoryStream | None = None
        self.errors: dict[str, Stream] = {}
        self.correctness: Stream | None = None
        self.arrival: ModelArrival | None = None
        self.labels: LabelJoin | None = None
        """The label join, from the model's first label on (labels.py)."""
        self.episodes: Episodes | None = None
        """Its active alerts (docs/alerts.md, "Lifecycle"); None until its first alert."""
        self.seen: int | None = None
        """Clock time of its last event (event time in replay); None after a restore until
        the next event or idle check, which count from then (not persisted)."""


def encode_model(model: ModelStreams) -> dict[str, Any]:
    return {
        "features": {
            name: {
                "value": None if f.value is None else f.value.to_state(),
                "missing": f.missing.to_state(),
                "category": None if f.category is None else f.category.to_state(),
            }
            for name, f in model.features.items()
        },
        "prediction": None if model.prediction is None else model.prediction.to_state(),
        "errors": {name: stream.to_state() for name, stream in model.errors.items()},
        "correctness": None if model.correctness is None else model.correctness.to_state(),
        "arrival": None if model.arrival is None else model.arrival.to_state(),
        "labels": None if model.labels is None else model.labels.to_state(),
        "prediction_category": None
        if model.prediction_category is None
        else model.prediction_category.to_state(),
        "episodes": None if model.episodes is None else lifecycle.encode(model.episodes),
    }


def upgraded(record: Any) -> Any:
    """A version-1 model record in today's layout: the fields added since it are null."""
    upgraded = snapshot_v1.upgrade_model(record)
    if type(upgraded) is not dict:
        return upgraded  # malformed: refused by the checks, with their message
    return dict.fromkeys(MODEL_FIELDS) | upgraded


ARRIVAL_ENTRIES = 3
"""Active entries a model may hold besides its streams': arrival, rate, freshness."""


def stream_of(model: ModelStreams, sid: StreamId) -> Stream | None:
    """The model's stream of an alert's stream id (None when it has none)."""
    kind = sid.kind
    if kind is StreamKind.VALUE or kind is StreamKind.MISSING_RATE:
        feature = model.features.get(sid.name)
        if feature is None:
            return None
        return feature.value if kind is StreamKind.VALUE else feature.missing
    if kind is StreamKind.PREDICTION:
        return model.prediction
    if kind is StreamKind.ERROR:
        return model.errors.get(sid.name)
    if kind is StreamKind.CORRECTNESS:
        return model.correctness
    return None


def stream_count(model: ModelStreams) -> int:
    """Streams the model has (for the rollup's share rule)."""
    values = sum(1 for f in model.features.values() if f.value is not None)
    categories = sum(1 for f in model.features.values() if f.category is not None)
    return (
        len(model.features)
        + values
        + categories
        + (model.prediction is not None)
        + (model.prediction_category is not None)
        + len(model.errors)
        + (model.correctness is not None)
    )
