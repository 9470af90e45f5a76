from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from streamproc.logs import RejectionLog, TokenBucket, setup_logging
from streamproc.settings import LogSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def records() -> Iterator[tuple[logging.Logger, Records]]:
    logger = logging.getLogger("test.rejections")
    handler = Records()
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the root logger's handlers and level after a test configures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5  # one token back
    assert [bucket.allow() for _ in range(2)] == [True, False]
    clock.now = 100.0  # refills to the burst, no further
    assert sum(bucket.allow() for _ in range(10)) == 3


def test_token_bucket_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(rate=1, burst=0)


def test_rejections_name_topic_partition_offset_and_reason(
    records: tuple[logging.Logger, Records],
) -> None:
    logger, handler = records
    log = RejectionLog(logger, clock=FakeClock())
    log.rejected("features", 3, 42, "invalid_json", "Expecting value: line 1 column 1")
    (record,) = handler.records
    assert record.levelno == logging.WARNING
    assert (
        record.getMessage()
        == "rejected features[3]@42: invalid_json: Expecting value: line 1 column 1"
    )
    fields = vars(record)
    assert (fields["topic"], fields["partition"], fields["offset"], fields["reason"]) == (
        "features",
        3,
        42,
        "invalid_json",
    )


def test_long_details_are_cut(records: tuple[logging.Logger, Records]) -> None:
    logger, handler = records
    RejectionLog(logger, max_detail=10, clock=FakeClock()).rejected("t", 0, 1, "r", "x" * 500)
    assert handler.messages == ["rejected t[0]@1: r: " + "x" * 10 + "…"]


def test_a_flood_is_rate_limited_then_summarised(records: tuple[logging.Logger, Records]) -> None:
    logger, handler = records
    clock = FakeClock()
    log = RejectionLog(logger, per_second=2.0, burst=2, clock=clock)
    for offset in range(1_000):
        log.rejected("features", 0, offset, "too_large" if offset % 4 else "invalid_json", "x")
    assert len(handler.records) == 2
    assert log.suppressed == 998

    clock.now = 1.0
    log.rejected("features", 0, 1_000, "empty", "")
    assert (
        handler.messages[2] == "suppressed 998 similar messages (too_large: 749, invalid_json: 249)"
    )
    assert vars(handler.records[2])["suppressed_by_reason"] == {
        "too_large": 749,
        "invalid_json": 249,
    }
    assert handler.messages[3] == "rejected features[0]@1000: empty: "
    assert log.suppressed == 0


def test_flush_reports_what_was_held_back_once(records: tuple[logging.Logger, Records]) -> None:
    logger, handler = records
    log = RejectionLog(logger, per_second=1.0, burst=1, clock=FakeClock())
    for offset in range(3):
        log.rejected("outcomes", 1, offset, "wrong_type", "x")
    log.flush()
    log.flush()
    assert handler.messages[1:] == ["suppressed 2 similar messages (wrong_type: 2)"]
    assert vars(handler.records[1])["suppressed"] == 2


def test_json_lines_carry_fields_and_extras(root_logging: None) -> None:
    out = io.StringIO()
    setup_logging(LogSettings(format="json", level="INFO"), stream=out)
    logger = logging.getLogger("streamproc.test")
    logger.debug("hidden")
    logger.warning("rejected %s", "x", extra={"topic": "features", "offset": 7})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    first, second = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "streamproc.test"
    assert first["message"] == "rejected x"
    assert (first["topic"], first["offset"]) == ("features", 7)
    assert first["timestamp"].endswith("+00:00") and "T" in first["timestamp"]
    assert set(first) == {"timestamp", "level", "logger", "message", "topic", "offset"}
    assert second["level"] == "ERROR" and "RuntimeError: boom" in second["exception"]


def test_json_lines_survive_extras_json_cannot_encode(root_logging: None) -> None:
    out = io.StringIO()
    setup_logging(LogSettings(format="json"), stream=out)
    logging.getLogger("streamproc.test").warning("odd", extra={"thing": object()})
    assert orjson.loads(out.getvalue())["thing"].startswith("<object object")


def test_text_is_the_default_and_setup_replaces_its_own_handler(root_logging: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(LogSettings(), stream=first)
    setup_logging(LogSettings(level="WARNING"), stream=second)
    logger = logging.getLogger("streamproc.test")
    logger.info("not at WARNING")
    logger.warning("consumer lag %d", 12)
    assert first.getvalue() == ""
    line = second.getvalue()
    assert line.endswith(" WARNING streamproc.test: consumer lag 12\n")
    assert line[:4].isdigit()
