"""Version-2 snapshots, read as version 3.

Version 3 adds the spread statistics to every numeric stream (:mod:`streamproc.spread`).
A version-2 stream had none: it continues with both CUSUMs at rest (0) and the recent
squared standardized difference at its expectation (1) and the previous standardized
value at the mean (0), exactly as a stream whose spread test
has just been switched on. Anything that is not a version-2 shape passes through unchanged
and fails the version-3 validation, which names the fault.
"""

from __future__ import annotations

from typing import Any

VERSION = 2
_V2_STREAM_KEYS = frozenset(
    {
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
    }
)
ADDED: dict[str, float | int] = {
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


def upgrade_model(record: Any) -> Any:
    """A version-2 model record as version 3: numeric streams gain the spread fields."""
    if type(record) is not dict:
        return record
    out = dict(record)
    for key in ("prediction", "correctness"):
        out[key] = _stream(record.get(key))
    errors = record.get("errors")
    if type(errors) is dict:
        out["errors"] = {k: _stream(v) for k, v in errors.items()}
    features = record.get("features")
    if type(features) is dict:
        out["features"] = {k: _feature(v) for k, v in features.items()}
    return out


def _feature(value: Any) -> Any:
    if type(value) is not dict:
        return value
    out = dict(value)
    for key in ("value", "missing"):
        if key in out:
            out[key] = _stream(out[key])
    return out


def _stream(value: Any) -> Any:
    if type(value) is not dict or value.keys() != _V2_STREAM_KEYS:
        return value
    return {**value, **ADDED}
