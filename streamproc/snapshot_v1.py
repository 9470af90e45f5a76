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
_FEATURE = ("value", "missing", "categories")
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
                arrival[0] if arrival else None,
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
    value_stream, missing, categories = value
    return dict(zip(_FEATURE, (_stream(value_stream), _stream(missing), categories), strict=True))


def _stream(value: Any) -> Any:
    if type(value) is not list or len(value) != len(_STREAM):
        return value
    return dict(zip(_STREAM, value, strict=True))
