"""Dead letters are linear and bounded: a rejected array element carries that element only.

Whatever the reason (decoding, or the engine's ``future_timestamp``, ``too_many_streams``,
``internal_error``), the letters of one message together hold at most its bytes, and the
message is parsed once however many of its elements are rejected.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.engine import Engine
from streamproc.events import EventKind, Reason
from streamproc.pipeline import DeadLetter, Pipeline, Record
from streamproc.settings import ArrivalSettings, EngineSettings, Limits

T0 = 1_764_000_000_000
HOUR = 3_600_000


def pipeline(limits: Limits | None = None) -> Pipeline:
    limits = limits or Limits()
    engine = Engine(EngineSettings(), limits, arrival=ArrivalSettings(max_future_seconds=300))
    return Pipeline(engine, limits)


def record(value: bytes, key: bytes | None = b"m") -> Record:
    return Record("features", 0, 0, T0, key, value, EventKind.FEATURE)


def event(i: int, ts: int = T0, features: int = 20, model: str = "m") -> dict[str, Any]:
    return {
        "model": model,
        "id": f"req-{i}",
        "ts": ts,
        "features": {f"f{j}": i * 0.001 + j for j in range(features)},
    }


def total(letters: list[DeadLetter]) -> int:
    return sum(len(d.value) + len(d.key or b"") for d in letters)


def test_a_future_element_carries_itself_and_its_index_not_the_whole_message() -> None:
    events: list[Any] = [event(0), 7, event(2, ts=T0 + HOUR), event(3)]
    message = orjson.dumps(events)
    out = pipeline().handle([record(message)], T0)

    assert [(d.rejection.reason, d.rejection.index) for d in out.dead_letters] == [
        (Reason.NOT_AN_OBJECT, 1),
        (Reason.FUTURE_TIMESTAMP, 2),
    ]
    future = out.dead_letters[1]
    assert future.value == orjson.dumps(events[2])
    assert ("streamproc.source.index", b"2") in future.headers()
    assert out.events == {"m": 2}


def test_too_many_streams_carries_its_element_and_index() -> None:
    limits = Limits(max_streams_per_model=3)
    events = [event(0, features=2), event(1, features=5), event(2, features=3)]
    out = pipeline(limits).handle([record(orjson.dumps(events))], T0)

    [dead] = out.dead_letters
    assert dead.rejection.reason is Reason.TOO_MANY_STREAMS
    assert dead.rejection.index == 1
    assert dead.value == orjson.dumps(events[1])


def test_a_big_message_with_a_fast_clock_gives_dead_letters_of_about_its_size() -> None:
    events = [event(i, ts=T0 + HOUR) for i in range(1750)]
    message = orjson.dumps(events)
    assert len(message) > 540_000
    out = pipeline().handle([record(message)], T0)

    assert len(out.dead_letters) == 1750
    assert {d.rejection.reason for d in out.dead_letters} == {Reason.FUTURE_TIMESTAMP}
    assert [d.rejection.index for d in out.dead_letters] == list(range(1750))
    assert total(out.dead_letters) <= len(message) + 1750 * len(b"m")


def test_a_bad_array_is_parsed_once_not_once_per_rejected_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = orjson.dumps([{"model": i} for i in range(10_000)])
    parses = 0
    loads = orjson.loads

    def counting(data: Any) -> Any:
        nonlocal parses
        parses += 1
        return loads(data)

    monkeypatch.setattr(orjson, "loads", counting)
    out = pipeline().handle([record(message)], T0)

    assert len(out.dead_letters) == 10_000
    assert {d.rejection.reason for d in out.dead_letters} == {Reason.WRONG_TYPE}
    assert parses == 1
    assert total(out.dead_letters) <= len(message) + 10_000 * len(b"m")


def test_an_element_letter_is_its_original_bytes_not_a_re_encoding() -> None:
    message = b'[ {"model": "m", "features": {"a": 1e15}, "ts": 9e99} ,\n  {"model" : 1} ]'
    out = pipeline().handle([record(message)], T0)

    assert [d.value for d in out.dead_letters] == [
        b'{"model": "m", "features": {"a": 1e15}, "ts": 9e99}',
        b'{"model" : 1}',
    ]


def test_a_key_too_long_for_a_model_id_is_not_repeated_on_every_element() -> None:
    key = b"k" * 100_000
    message = orjson.dumps([{"model": i} for i in range(100)])
    out = pipeline().handle([record(message, key), record(b"{", key)], T0)

    *elements, whole = out.dead_letters
    assert len(elements) == 100 and {d.key for d in elements} == {None}
    assert whole.key == key and whole.rejection.reason is Reason.INVALID_JSON
    short = pipeline().handle([record(message, b"m" * 800)], T0)
    assert {d.key for d in short.dead_letters} == {b"m" * 800}, "a model id's key is kept"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab,[]{}"\\: \u00e9\n'), max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(JSON, min_size=1, max_size=6), st.booleans())
def test_every_rejected_element_is_cut_exactly_from_the_message(
    elements: list[Any], indent: bool
) -> None:
    message = orjson.dumps(elements, option=orjson.OPT_INDENT_2 if indent else 0)
    out = pipeline().handle([record(message)], T0)

    assert [d.rejection.index for d in out.dead_letters] == list(range(len(elements)))
    for dead, element in zip(out.dead_letters, elements, strict=True):
        assert orjson.loads(dead.value) == element
        assert dead.value in message
    assert total(out.dead_letters) <= len(message) + len(elements)


def test_an_internal_errors_message_header_is_bounded() -> None:
    class Loud:
        def __init__(self, spec: object, standardized: bool) -> None:
            raise RuntimeError("x" * 100_000)

    engine = Engine(EngineSettings(), Limits(), detector_factory=Loud)
    out = Pipeline(engine, Limits()).handle([record(orjson.dumps([event(0), event(1)]))], T0)

    assert [d.rejection.index for d in out.dead_letters] == [0, 1]
    assert {d.rejection.reason for d in out.dead_letters} == {Reason.INTERNAL_ERROR}
    assert all(len(d.rejection.message) <= 210 for d in out.dead_letters)
    assert total(out.dead_letters) <= len(orjson.dumps([event(0), event(1)])) + 2
