"""Version-1 snapshots, read as version 2.

Version 1 stored models, features and streams as positional lists; version 2 names every
field. Workers deployed before the change left version-1 checkpoints behind, so restore
upgrades them instead of starting every model afresh. The upgrade only renames: a record
that is not a version-1 shape passes through unchanged and fails the version-2 validation,
which names the fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VERSION = 1
_MODEL = ("features", "prediction", "errors", "correctness", "arrival")
"""What a version-1 model record held; the engine adds the fields that came later as null."""
_FEATURE = ("value", "missing", "category")
_STREAM = (
    "n",
    "quiet_until",
    "warm_n",
    "warm_mean",
    "warm_m2",
    "offset",
    "scale",
    "ref_n",
    "ref_mean",
    "recent",
    "detectors",
)

_SILENCE = ("last_ms", "last_ts", "last_id", "longest", "longest_at", "gaps", "silent")
_RATE = ("bucket", "count", "partial", "judged", "level", "trend", "var", "low", "high", "quiet")
_FRESHNESS = ("n", "baseline", "recent", "late")


def upgrade_model(record: Any) -> Any:
    """A version-1 model record as version 2: ``[features, prediction, errors, correctness]``
    with an optional fifth item, arrival state (written only when arrival monitoring was on).
    """
    if type(record) is not list or len(record) not in (4, 5):
        return record
    features, prediction, errors, correctness, *arrival = record
    return dict(
        zip(
            _MODEL,
            (
                _mapping(features, _feature),
                _stream(prediction),
                _mapping(errors, _stream),
                _stream(correctness),
                _arrival(arrival[0]) if arrival else None,
            ),
            strict=True,
        )
    )


def _mapping(value: Any, upgrade: Callable[[Any], Any]) -> Any:
    if type(value) is not dict:
        return value
    return {k: upgrade(v) for k, v in value.items()}


def _feature(value: Any) -> Any:
    if type(value) is not list or len(value) != len(_FEATURE):
        return value
    value_stream, missing, _counts = value  # plain category counts: category streams start afresh
    return dict(zip(_FEATURE, (_stream(value_stream), _stream(missing), None), strict=True))


def _arrival(value: Any) -> Any:
    """``[1, events, silence, rate, freshness]``; the leading 1 was arrival's own version."""
    if type(value) is not list or len(value) != 5 or value[0] != 1:
        return value
    _, events, silence, rate, freshness = value
    return {
        "events": events,
        "silence": _named(silence, _SILENCE),
        "rate": _named(rate, _RATE),
        "freshness": _named(freshness, _FRESHNESS),
    }


def _named(value: Any, keys: tuple[str, ...]) -> Any:
    if type(value) is not list or len(value) != len(keys):
        return value
    return dict(zip(keys, value, strict=True))


def _stream(value: Any) -> Any:
    named = _named(value, _STREAM)
    return named if type(named) is not dict else {**named, **SPREAD_AT_REST}


SPREAD_AT_REST: dict[str, float | int] = {
    "spread_up": 0.0,
    "spread_down": 0.0,
    "recent_sq": 1.0,
    "previous": 0.0,
    "spread_n": 0,
    "spread_ref": 1.0,
    "spread_sq": 0.0,
    "spread_tail": 1.0,
    "spread_acc": 0.0,
}
"""A stream's spread statistics (:mod:`streamproc.spread`), which version 1 had not: both
CUSUMs at rest, the recent squared standardized difference at its expectation (1) and the
previous standardized value at the mean (0), as a stream whose spread test has just been
switched on."""
