"""An explicit, allow-listed state codec for River drift detectors (no pickle).

Detector state travels through a Kafka changelog, so anyone who can write that topic
controls what is decoded here. ``pickle`` would let them run code in the worker; this
codec only ever rebuilds a detector class from :data:`streamproc.detectors.CLASSES`
(chosen by config name, never by a qualified name from the data) with checked
parameters, then overwrites the attributes the fresh detector already has, each with a
value of the same allow-listed shape. Anything else raises :class:`StateError`.

Encoded form (JSON-able)::

    {"v": 1, "type": "page_hinkley", "params": {...}, "state": {attribute: value}}

Values are JSON scalars, lists, or single-purpose tagged objects::

    {"f": "nan" | "inf" | "-inf"}         a non-finite float (orjson writes them as null)
    {"t": [...]}  {"d": {...}}            tuple; dict with str keys
    {"q": [...], "m": maxlen}             collections.deque
    {"r": base64, "g": gauss_next}        random.Random (MT19937 state as 625 uint32)
    {"o": "Mean", "a": {attribute: ...}}  an allow-listed river.stats / helper object
    {"rs": "AdaptiveWindowing", "b": b64}  an allow-listed River Rust object (bincode state)

Bound methods (PageHinkley's ``_test_drift``) are not stored: the constructor derives
them from the parameters. Restore is exact: the restored detector continues with the
same drift sequence and encodes to the same value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gc
import math
import random
import struct
import sys
import types
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import ValidationError
from river import stats
from river._river_rust.drift import AdaptiveWindowing
from river._river_rust.stats import RsEWMean
from river.drift.binary.hddm_w import SampleInfo

from streamproc import detectors
from streamproc.detectors import DetectorSpec, DriftDetector
from streamproc.errors import StateError

FORMAT: Final = 1
"""Version of the encoded detector layout; a different one is refused, not guessed at."""

MAX_DEPTH: Final = 12
"""Deepest nesting a snapshot may have; River's detectors need 5."""

_OBJECTS: Final[Mapping[str, type[Any]]] = {
    "Mean": stats.Mean,
    "Var": stats.Var,
    "EWMean": stats.EWMean,
    "SampleInfo": SampleInfo,
}
"""Plain Python helper objects found inside detectors, restored attribute by attribute."""

_RUST: Final[Mapping[str, type[Any]]] = {
    "AdaptiveWindowing": AdaptiveWindowing,
    "RsEWMean": RsEWMean,
}
"""Rust helpers, restored via constructor arguments plus their own (validated) bincode."""

_JSON_SCALARS: Final = frozenset({type(None), bool, int, float, str})
_NON_FINITE: Final[Mapping[str, float]] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_MT_WORDS: Final = 625  # 624 state words + position, as in random.Random.getstate()
_MT = struct.Struct(f"<{_MT_WORDS}I")
_INT64: Final = 2**63


# ---------------------------------------------------------------------------------------
# Public API


def encode_detector(det: DriftDetector) -> dict[str, Any]:
    """A JSON-able value from which :func:`decode_detector` rebuilds ``det`` exactly."""
    try:
        name = detectors.name_of(det)
    except KeyError:
        raise StateError(f"detector class {type(det).__qualname__} is not allow-listed") from None
    params = detectors.params_of(det)
    for key, value in params.items():
        _check_param_value(key, value)
    layout = _layout(_params_key(name, params))
    seen: set[int] = set()
    state = {key: _encode(value, key, seen, layout) for key, value in _state_items(det, layout)}
    return {"v": FORMAT, "type": name, "params": params, "state": state}


def decode_detector(value: object) -> DriftDetector:
    """Rebuild a detector from :func:`encode_detector` output; StateError on anything else."""
    body = _expect_dict(value, "detector", {"v", "type", "params", "state"})
    if body["v"] != FORMAT or isinstance(body["v"], bool):
        raise StateError(f"detector: unsupported format {body['v']!r} (expected {FORMAT})")
    key = _params_key(body["type"], body["params"])
    det = detectors.build(_checked_spec(key))
    layout = _layout(key)
    state = body["state"]
    expected = dict(_state_items(det, layout))
    if not isinstance(state, dict) or set(state) != set(expected):
        raise StateError(f"detector state: expected attributes {sorted(expected)}")
    for name, template in expected.items():
        setattr(det, name, _decode(state[name], template, name, 1, layout))
    return det


def dumps(obj: object) -> bytes:
    """Serialize a snapshot of encoded values to bytes.

    Floats outside encoded detectors must be finite (detector state tags the others):
    orjson writes NaN and infinities as null.
    """
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError as exc:
        raise StateError(f"snapshot cannot be serialized: {exc}") from exc


def loads(data: bytes) -> Any:
    """Parse bytes from :func:`dumps`; StateError on anything that is not valid JSON."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StateError(f"snapshot: expected bytes, got {type(data).__name__}")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"snapshot is not valid JSON: {exc}") from exc


# ---------------------------------------------------------------------------------------
# Checked fields of plain state (streams, arrival): a snapshot is input like any other, and
# a string, boolean, NaN or negative count where a number belongs must not reach the math.

_FLOAT_MAX: Final = sys.float_info.max


MAX_COUNT: Final = 2**53
"""Ceiling of every count in a snapshot (events, positions, times in ms): no stream sees
so many events, and a count near 2**64 that grows by a few would make the next snapshot
impossible to encode (orjson takes 64-bit integers)."""


def count(value: object, where: str, name: str) -> int:
    """An integer in [0, :data:`MAX_COUNT`] (JSON booleans are not integers here). ``where``
    and ``name`` make the message, built only on failure: recovery restores 100,000s of
    streams."""
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise StateError(
            f"{where}: {name}: expected a non-negative integer up to 2**53, got {_shown(value)}"
        )
    return value


def optional_count(value: object, where: str, name: str) -> int | None:
    return None if value is None else count(value, where, name)


def number(
    value: object, where: str, name: str, low: float = -_FLOAT_MAX, high: float = _FLOAT_MAX
) -> float:
    """A finite number within ``[low, high]``, as a float."""
    if (type(value) is not float and type(value) is not int) or not low <= value <= high:
        raise StateError(
            f"{where}: {name}: expected a number in [{low:g}, {high:g}], got {_shown(value)}"
        )
    return float(value)


def optional_number(
    value: object, where: str, name: str, low: float = -_FLOAT_MAX, high: float = _FLOAT_MAX
) -> float | None:
    return None if value is None else number(value, where, name, low, high)


def flag(value: object, where: str, name: str) -> bool:
    if type(value) is not bool:
        raise StateError(f"{where}: {name}: expected true or false, got {_shown(value)}")
    return value


def optional_text(value: object, where: str, name: str) -> str | None:
    if value is not None and type(value) is not str:
        raise StateError(f"{where}: {name}: expected a string or null, got {_shown(value)}")
    return value


def named(values: object, keys: tuple[str, ...], where: str) -> list[Any]:
    """The values of a state mapping with exactly ``keys``, in that order: a reader of a
    checkpoint sees names, and a missing or unknown key is refused rather than guessed."""
    if type(values) is not dict or values.keys() != set(keys):
        raise StateError(f"{where}: expected a mapping with keys {', '.join(keys)}")
    return [values[k] for k in keys]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


# ---------------------------------------------------------------------------------------
# Encoding


@dataclass(frozen=True, slots=True)
class _Shape:
    """A class's state attributes as a fresh instance of one configuration has them."""

    state: tuple[str, ...]
    """Without constructor parameters and bound methods."""
    every: frozenset[str]
    """Every attribute, those included."""


Layout = Mapping[type[Any], _Shape]
"""The shapes of a detector configuration's class and of the helper objects in it."""


def _state_items(obj: Any, layout: Layout, path: str = "") -> Iterator[tuple[str, Any]]:
    """Attributes that are state: not constructor parameters, not the object's own methods.

    Their names come from the ``layout`` (:func:`_layout`), the values from ``getattr``,
    never from ``vars(obj)``: on CPython 3.11 asking for an object's ``__dict__`` turns
    its inline attribute values into a real dict for good, and every later attribute
    access in River's update code takes a slower path. Each checkpoint did that to every
    detector, and the engine then spent about a third more per event
    (docs/performance.md, Checkpoints). An attribute a fresh instance does not have is
    refused, as the restore would refuse it: the garbage collector's view of the object
    (its attribute values, then its type) counts them without building the dict."""
    shape = layout.get(type(obj))
    if shape is None:
        raise StateError(f"{path or 'detector'}: type {type(obj).__qualname__} is not allow-listed")
    referents = gc.get_referents(obj)
    if len(referents) != len(shape.every) + 1:
        _refuse_unknown(obj, shape, path)
    for name in shape.state:
        try:
            yield name, getattr(obj, name)
        except AttributeError:
            raise StateError(f"{path}{name}: missing from a {type(obj).__name__}") from None


def _refuse_unknown(obj: Any, shape: _Shape, path: str) -> None:
    """Name the attribute a fresh instance lacks; the dict built here no longer matters,
    since the object cannot be checkpointed. An object whose dict was built before has
    that dict in the garbage collector's view instead of its values: it passes if it has
    no such attribute."""
    unknown = sorted(set(vars(obj)) - shape.every)
    if unknown:
        raise StateError(f"{path}{unknown[0]}: not an attribute of a fresh {type(obj).__name__}")


def _bound_to(value: object, obj: object) -> bool:
    return isinstance(value, types.MethodType) and value.__self__ is obj


@functools.lru_cache(maxsize=256)
def _layout(key: tuple[Any, ...]) -> Layout:
    """The state attributes of a detector built as ``key`` says (see :func:`_params_key`),
    read once from a throwaway one: which attributes a River detector has depends on its
    parameters (FHDDM's short window), never on its updates, since River sets every one
    in ``__init__`` and ``_reset`` (tests/unit/test_state.py checks it after drifts)."""
    shapes: dict[type[Any], _Shape] = {}

    def walk(obj: Any, skip: frozenset[str]) -> None:
        every = vars(obj)
        state = tuple(n for n, v in every.items() if n not in skip and not _bound_to(v, obj))
        shapes[type(obj)] = _Shape(state, frozenset(every))
        for name in state:
            value = every[name]
            if type(value) in _OBJECTS.values() and type(value) not in shapes:
                walk(value, frozenset())

    walk(detectors.build(_checked_spec(key)), frozenset(detectors.PARAMS[key[0]]))
    return shapes


def _check_param_value(key: str, value: object) -> None:
    if _encode_scalar(value, f"params.{key}") is not value:
        raise StateError(f"params.{key}: {type(value).__name__} value is not a JSON scalar")


def _encode(value: Any, path: str, seen: set[int], layout: Layout) -> Any:
    """Tagged JSON for one attribute; containers and objects may be encountered only once."""
    cls = type(value)
    if cls in _JSON_SCALARS or isinstance(value, bool | int | float | str):
        return _encode_scalar(value, path)
    if id(value) in seen:
        raise StateError(f"{path}: object shared between attributes cannot be restored exactly")
    seen.add(id(value))
    if cls is deque:
        item_path = f"{path}[]"
        return {"q": [_encode_scalar(v, item_path) for v in value], "m": value.maxlen}
    if cls is random.Random:
        return _encode_random(value, path)
    if cls in _RUST.values():
        return {"rs": cls.__name__, "b": base64.b64encode(_rust_state(value, path)).decode()}
    if cls in _OBJECTS.values():
        items = _state_items(value, layout, f"{path}.")
        attrs = {k: _encode(v, f"{path}.{k}", seen, layout) for k, v in items}
        return {"o": cls.__name__, "a": attrs}
    return _encode_plain(value, path)


def _encode_scalar(value: Any, path: str) -> Any:
    cls = type(value)
    exact = (cls is float and math.isfinite(value)) or (cls is int and -_INT64 <= value < _INT64)
    if exact or cls is bool or cls is str or value is None:
        return value
    return _encode_scalar_slow(value, path)


def _encode_scalar_slow(value: Any, path: str) -> Any:
    """Subclasses (numpy.float64: KSWIN's p_value), non-finite floats and the refused rest."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise StateError(f"{path}: integer {value} does not fit in 64 bits")
        return int(value)
    if isinstance(value, float):  # includes numpy.float64 (KSWIN's p_value)
        if math.isfinite(value):
            return float(value)
        return {"f": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    raise StateError(f"{path}: type {type(value).__qualname__} is not allow-listed")


def _encode_plain(value: Any, path: str) -> Any:
    cls = type(value)
    if cls is list:
        return [_encode_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if cls is tuple:
        return {"t": [_encode_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if cls is dict:
        if not all(isinstance(k, str) for k in value):
            raise StateError(f"{path}: dict keys must be strings")
        return {"d": {k: _encode_plain(v, f"{path}.{k}") for k, v in value.items()}}
    return _encode_scalar(value, path)


def _encode_random(rng: random.Random, path: str) -> dict[str, Any]:
    version, words, gauss_next = rng.getstate()
    if version != 3 or len(words) != _MT_WORDS:
        raise StateError(f"{path}: unexpected random.Random state version {version}")
    return {"r": base64.b64encode(_MT.pack(*words)).decode(), "g": _encode_scalar(gauss_next, path)}


def _rust_state(obj: Any, path: str) -> bytes:
    blob = obj.__getstate__()
    if not isinstance(blob, bytes):
        raise StateError(f"{path}: {type(obj).__name__} state is not bytes")
    return blob  # checked on decode; the round-trip tests catch a change of River's layout


# ---------------------------------------------------------------------------------------
# Decoding: every value is checked against the attribute of a freshly built detector.


def _expect_dict(value: object, path: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != keys:
        raise StateError(f"{path}: expected an object with keys {sorted(keys)}")
    return value


def _params_key(name: object, params: object) -> tuple[Any, ...]:
    """``(type, (param, kind, value)...)`` of an allow-listed type with scalar parameters,
    checked by :func:`_checked_spec`."""
    if not isinstance(name, str) or name not in detectors.CLASSES:
        raise StateError(f"detector: unknown type {name!r}")
    if not isinstance(params, dict):
        raise StateError("detector: params must be an object")
    try:  # a stream's few configurations repeat across 100,000s of snapshots: check once
        key = (name, *((k, type(v), v) for k, v in params.items()))
        hash(key)
    except TypeError:
        raise StateError("detector params: values must be scalars") from None
    return key


@functools.lru_cache(maxsize=256)
def _checked_spec(key: tuple[Any, ...]) -> DetectorSpec:
    """Validate ``(type, (param, kind, value)...)``; the kind keeps 1, 1.0 and true apart."""
    name, items = key[0], key[1:]
    try:
        return DetectorSpec.model_validate(
            {"type": name, "params": {k: v for k, _, v in items}}, strict=True
        )
    except ValidationError as exc:
        raise StateError(f"detector params: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    return str(errors[0]["msg"]) if errors else str(exc)


def _decode(value: Any, template: Any, path: str, depth: int, layout: Layout) -> Any:
    """Decode ``value`` into something of the same shape as the fresh attribute ``template``."""
    if depth > MAX_DEPTH:
        raise StateError(f"{path}: nested too deeply")
    cls = type(template)
    if template is None or isinstance(template, bool | int | float | str):
        return _decode_like_scalar(value, template, path)
    if cls is deque:
        return _decode_deque(value, template, path)
    if cls is random.Random:
        return _decode_random(value, path)
    if cls in _RUST.values():
        return _decode_rust(value, template, path)
    if cls in _OBJECTS.values():
        return _decode_object(value, template, path, depth, layout)
    if cls in (list, tuple, dict):
        decoded = _decode_plain(value, path, depth)
        if type(decoded) is not cls:
            raise StateError(f"{path}: expected a {cls.__name__}")
        return decoded
    raise StateError(f"{path}: type {cls.__qualname__} is not allow-listed")


def _decode_like_scalar(value: Any, template: Any, path: str) -> Any:
    """Scalars keep their kind; a number may also replace an unset (None) value."""
    decoded = _decode_scalar(value, path)
    if isinstance(template, bool | str):
        ok = type(decoded) is type(template)
    elif template is None:
        ok = decoded is None or _is_number(decoded)
    else:
        ok = _is_number(decoded)
    if not ok:
        raise StateError(f"{path}: expected a value like {template!r}, got {decoded!r}")
    if type(decoded) is float and not math.isfinite(decoded) and decoded != template:
        # Only where a fresh detector holds the same one (Page-Hinkley's initial minimum is
        # inf): elsewhere NaN or inf would silence the detector for good.
        raise StateError(f"{path}: non-finite {decoded!r} where a finite number belongs")
    return decoded


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _decode_scalar(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StateError(f"{path}: untagged non-finite float")
        return value
    tag = value.get("f") if isinstance(value, dict) and len(value) == 1 else None
    if isinstance(tag, str) and tag in _NON_FINITE:
        return _NON_FINITE[tag]
    raise StateError(f"{path}: expected a scalar")


def _decode_plain(value: Any, path: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise StateError(f"{path}: nested too deeply")
    if isinstance(value, list):
        return [_decode_plain(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], list):
        return tuple(_decode_plain(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value["t"]))
    if isinstance(value, dict) and set(value) == {"d"} and isinstance(value["d"], dict):
        items = value["d"].items()
        if not all(isinstance(k, str) for k, _ in items):
            raise StateError(f"{path}: dict keys must be strings")
        return {k: _decode_plain(v, f"{path}.{k}", depth + 1) for k, v in items}
    return _decode_scalar(value, path)


def _decode_deque(value: Any, template: deque[Any], path: str) -> deque[Any]:
    body = _expect_dict(value, path, {"q", "m"})
    items = body["q"]
    if body["m"] != template.maxlen or isinstance(body["m"], bool):
        raise StateError(f"{path}: deque maxlen {body['m']!r} differs from {template.maxlen!r}")
    maxlen = template.maxlen
    if not isinstance(items, list) or (maxlen is not None and len(items) > maxlen):
        raise StateError(f"{path}: deque items must be a list of at most maxlen values")
    decoded = [_decode_scalar(v, f"{path}[]") for v in items]
    if not all(isinstance(v, bool) or (_is_number(v) and math.isfinite(v)) for v in decoded):
        raise StateError(f"{path}: deque items must be finite numbers or booleans")
    return deque(decoded, maxlen=template.maxlen)


def _decode_random(value: Any, path: str) -> random.Random:
    body = _expect_dict(value, path, {"r", "g"})
    words = _unpack_mt(_b64(body["r"], path), path)
    gauss_next = _decode_scalar(body["g"], path)
    if gauss_next is not None and not _is_number(gauss_next):
        raise StateError(f"{path}: gauss_next must be a number or null")
    rng = random.Random()
    try:
        rng.setstate((3, words, None if gauss_next is None else float(gauss_next)))
    except (TypeError, ValueError, OverflowError) as exc:
        raise StateError(f"{path}: invalid random state: {exc}") from None
    return rng


def _unpack_mt(blob: bytes, path: str) -> tuple[int, ...]:
    if len(blob) != _MT.size:
        raise StateError(f"{path}: random state must be {_MT.size} bytes")
    words: tuple[int, ...] = _MT.unpack(blob)
    if words[-1] > _MT_WORDS - 1:
        raise StateError(f"{path}: random state position out of range")
    return words


def _decode_object(value: Any, template: Any, path: str, depth: int, layout: Layout) -> Any:
    cls = type(template)
    body = _expect_dict(value, path, {"o", "a"})
    expected = dict(_state_items(template, layout))
    attrs = body["a"]
    if body["o"] != cls.__name__ or not isinstance(attrs, dict) or set(attrs) != set(expected):
        raise StateError(f"{path}: expected a {cls.__name__} with attributes {sorted(expected)}")
    obj = object.__new__(cls)
    for key, sub in expected.items():
        setattr(obj, key, _decode(attrs[key], sub, f"{path}.{key}", depth + 1, layout))
    return obj


def _decode_rust(value: Any, template: Any, path: str) -> Any:
    cls = type(template)
    body = _expect_dict(value, path, {"rs", "b"})
    if body["rs"] != cls.__name__:
        raise StateError(f"{path}: expected {cls.__name__}, got {body['rs']!r}")
    blob = _b64(body["b"], path)
    obj = cls(*template.__getnewargs__())
    _check_rust_state(obj, blob, path)
    try:
        obj.__setstate__(blob)
        same = obj.__getstate__() == blob
    except BaseException as exc:  # a Rust panic is a BaseException
        if not (isinstance(exc, Exception) or _is_panic(exc)):
            raise
        raise StateError(f"{path}: invalid {cls.__name__} state: {exc}") from None
    if not same:
        raise StateError(f"{path}: {cls.__name__} state does not round-trip")
    return obj


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


def _b64(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise StateError(f"{path}: expected base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StateError(f"{path}: invalid base64: {exc}") from None


# ---------------------------------------------------------------------------------------
# Rust state validation: bincode as written by River 0.26 (little-endian, u64 lengths).
# Corrupt but well-formed state would otherwise panic or misbehave on a later update.


def _check_rust_state(fresh: Any, blob: bytes, path: str) -> None:
    if isinstance(fresh, AdaptiveWindowing):
        _check_adwin_state(blob, tuple(fresh.__getnewargs__()), path)
    else:
        _check_ewmean_state(blob, fresh.__getstate__(), path)


def _check_ewmean_state(blob: bytes, fresh: bytes, path: str) -> None:
    """(mean f64, alpha f64, 1 - alpha f64, initialized bool, fading_factor f64)."""
    if len(blob) != len(fresh) or blob[8:24] != fresh[8:24] or blob[25:] != fresh[25:]:
        raise StateError(f"{path}: RsEWMean state does not match its parameters")
    if blob[24] not in (0, 1):
        raise StateError(f"{path}: RsEWMean state has an invalid flag")
    if not _finite(blob, 0, 1):
        raise StateError(f"{path}: RsEWMean mean is not finite")


# delta, clock, max_buckets, min_window_length, grace_period, total, variance, width,
# total_width, n_buckets, max_n_buckets, tick, n_detections, number of bucket levels;
# then per level: max_size, used, len(totals), totals, len(variances), variances;
# then the constructor arguments again.
_ADWIN_HEAD = struct.Struct("<diQdd dddd iiii Q")
_ADWIN_STATS = struct.calcsize("<diQdd")
"""Offset of the four doubles total, variance, width, total_width in the head."""
_ADWIN_LEVEL = struct.Struct("<QQQ")
_ADWIN_LEN = struct.Struct("<Q")
_ADWIN_TAIL = struct.Struct("<diQii")
_ADWIN_MAX_LEVELS = 64


def _check_adwin_state(blob: bytes, args: tuple[Any, ...], path: str) -> None:
    """Check the invariants River's AdaptiveWindowing relies on without checking them."""
    delta, clock, max_buckets, min_window, grace = args
    if len(blob) < _ADWIN_HEAD.size + _ADWIN_TAIL.size:
        raise StateError(f"{path}: ADWIN state is truncated")
    head = _ADWIN_HEAD.unpack_from(blob)
    if head[:5] != (delta, clock, max_buckets, float(min_window), float(grace)):
        raise StateError(f"{path}: ADWIN state does not match its parameters")
    if not _finite(blob, _ADWIN_STATS, 4):  # total, variance, width, total_width
        raise StateError(f"{path}: ADWIN statistics are not finite")
    width, levels = head[7], head[13]
    array = 8 * (max_buckets + 1)
    level_size = _ADWIN_LEVEL.size + array + _ADWIN_LEN.size + array
    if not 1 <= levels <= _ADWIN_MAX_LEVELS:
        raise StateError(f"{path}: ADWIN state has {levels} bucket levels")
    if len(blob) != _ADWIN_HEAD.size + levels * level_size + _ADWIN_TAIL.size:
        raise StateError(f"{path}: ADWIN state has the wrong length for {levels} levels")
    counted = 0
    for level in range(levels):
        offset = _ADWIN_HEAD.size + level * level_size
        size, used, n_totals = _ADWIN_LEVEL.unpack_from(blob, offset)
        (n_variances,) = _ADWIN_LEN.unpack_from(blob, offset + _ADWIN_LEVEL.size + array)
        if size != max_buckets or used > size or n_totals != array // 8 or n_variances != n_totals:
            raise StateError(f"{path}: ADWIN bucket level {level} is inconsistent")
        counted += used << level
    # Read as doubles, the levels' u64 fields (checked small above) are finite subnormals.
    if not _finite(blob, _ADWIN_HEAD.size, levels * level_size // 8):
        raise StateError(f"{path}: ADWIN buckets hold non-finite values")
    if levels > 1 and used == 0:
        raise StateError(f"{path}: ADWIN state ends with an empty bucket level")
    if width != counted:
        raise StateError(f"{path}: ADWIN width {width} does not match its buckets ({counted})")
    tail = _ADWIN_TAIL.unpack_from(blob, len(blob) - _ADWIN_TAIL.size)
    if tail != (delta, clock, max_buckets, min_window, grace):
        raise StateError(f"{path}: ADWIN state does not match its parameters")


def _finite(blob: bytes, offset: int, n: int) -> bool:
    """Whether the ``n`` little-endian doubles at ``offset`` are all finite: their sum is
    (one C loop; a sum beyond 1.8e308 is refused too, which bounded inputs never reach)."""
    return math.isfinite(sum(struct.unpack_from(f"<{n}d", blob, offset)))
