"""Producer values in log messages and alert lines cannot start a line of their own."""

from __future__ import annotations

import io
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import orjson
import pytest

from streamproc.alerts import Alert, Change, Severity, StreamId, alert_id
from streamproc.cli import main
from streamproc.commands.alerts import _print
from streamproc.domain import StreamKind
from streamproc.logs import RejectionLog, setup_logging
from streamproc.replay import Summary
from streamproc.settings import LogSettings, env_names
from streamproc.summaries import summarize

FORGED = "m\n1999-01-01 00:00:00,000 ERROR   streamproc.worker: forged"
# Each would end the line for a terminal or for str.splitlines, or rewrite what is shown.
HOSTILE = ["a\nb", "a\rb", "a\x1b[2Jb", "a\x00b", "a\x0bb", "a\x85b", "a\u2028b", "a\u202eb"]
RAW = ("\n", "\r", "\x1b", "\x00", "\x0b", "\x85", "\u2028", "\u202e")


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the root logger's handlers and level after a test configures it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def logged(fmt: Literal["text", "json"]) -> io.StringIO:
    out = io.StringIO()
    setup_logging(LogSettings(format=fmt), stream=out)
    return out


def assert_one_line(text: str) -> None:
    assert len(text.rstrip("\n").splitlines()) == 1, text
    assert not any(raw in text.rstrip("\n") for raw in RAW), text


@pytest.mark.parametrize("value", [FORGED, *HOSTILE])
def test_a_value_in_a_text_message_stays_on_the_records_line(
    root_logging: None, value: str
) -> None:
    out = logged("text")
    logging.getLogger("streamproc.test").warning("model %s fell silent", value)
    assert_one_line(out.getvalue())


@pytest.mark.parametrize("value", [FORGED, *HOSTILE])
def test_a_json_message_is_one_line_also_when_displayed(root_logging: None, value: str) -> None:
    """The line must survive any line splitter, and its message any log viewer."""
    out = logged("json")
    logging.getLogger("streamproc.test").warning("model %s fell silent", value)
    assert_one_line(out.getvalue())
    assert_one_line(orjson.loads(out.getvalue())["message"])


def test_text_shows_the_escaped_value(root_logging: None) -> None:
    out = logged("text")
    logging.getLogger("streamproc.test").warning("model %s", FORGED)
    assert (
        out.getvalue()
        .rstrip("\n")
        .endswith("model m\\n1999-01-01 00:00:00,000 ERROR   streamproc.worker: forged")
    )


def test_rejection_logs_escape_the_quoted_payload(root_logging: None) -> None:
    out = logged("text")
    log = RejectionLog(logging.getLogger("streamproc.rejections"))
    log.rejected("features", 0, 7, "invalid_name", f"bad model {FORGED!s}")
    assert_one_line(out.getvalue())
    assert "rejected features[0]@7: invalid_name: bad model m\\n1999" in out.getvalue()


def test_json_keeps_extras_exact_and_the_line_whole(root_logging: None) -> None:
    out = logged("json")
    extra = {"model": "a\u2028b\nc", "feature": "x\x85y"}
    logging.getLogger("streamproc.test").warning("model %s", extra["model"], extra=extra)
    assert_one_line(out.getvalue())
    entry = orjson.loads(out.getvalue())
    assert entry["message"] == "model a\\u2028b\\nc"
    assert (entry["model"], entry["feature"]) == (extra["model"], extra["feature"])


def raise_chained() -> None:
    try:
        raise KeyError(FORGED)
    except KeyError as exc:
        raise ValueError(f"cannot restore model {FORGED}") from exc


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_exception_texts_cannot_forge_lines(
    root_logging: None, fmt: Literal["text", "json"]
) -> None:
    out = logged(fmt)
    try:
        raise_chained()
    except ValueError:
        logging.getLogger("streamproc.test").exception("restore failed")
    text = out.getvalue() if fmt == "text" else orjson.loads(out.getvalue())["exception"]
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("1999-01-01")]
    assert "Traceback (most recent call last):" in lines, "tracebacks stay readable"
    assert "ValueError: cannot restore model m\\n1999-01-01 00:00:00,000 ERROR   " in text
    assert "direct cause of the following exception" in text
    if fmt == "json":
        assert_one_line(out.getvalue())


def test_a_traceback_another_handler_cached_is_escaped_again(root_logging: None) -> None:
    out = logged("text")
    try:
        raise ValueError(FORGED)
    except ValueError as exc:
        record = logging.LogRecord(
            "t", logging.ERROR, "f", 1, "failed", None, (ValueError, exc, None)
        )
    logging.Formatter().format(record)  # caches the raw traceback on the record
    logging.getLogger().handlers[-1].handle(record)
    assert not [line for line in out.getvalue().splitlines() if line.startswith("1999-01-01")]


def alert(model: str, name: str, event_id: str) -> Alert:
    stream = StreamId(model, StreamKind.VALUE, name)
    return Alert(
        alert_id=alert_id(stream, 0, "adwin", 10),
        stream=stream,
        detector={"type": "adwin", "params": {}},
        event_id=event_id,
        event_ts=0,
        detected_at=0,
        events_seen=10,
        change=Change(0.0, 1.0, 1.0, 1.0, "up", None),
        severity=Severity.WARNING,
    )


@pytest.mark.parametrize("value", [FORGED, *HOSTILE])
def test_alert_summaries_are_one_line(value: str) -> None:
    for hostile in (alert(value, "x", "e"), alert("m", value, "e"), alert("m", "x", value)):
        assert_one_line(summarize(hostile))


def test_streamproc_alerts_prints_one_line_per_alert(capsys: pytest.CaptureFixture[str]) -> None:
    _print(alert(FORGED, f"x{FORGED}", f"e{FORGED}").to_json(), as_json=False)
    assert_one_line(capsys.readouterr().out)


def test_replay_reports_bad_lines_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    events = tmp_path / "events.jsonl"
    bad = {"model": "m", "features": {"x": 1}, "ts": f"2026-13{FORGED}"}
    events.write_bytes(orjson.dumps(bad) + b"\n")
    assert main(["replay", str(events), "--out", str(tmp_path / "alerts.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "line 1: invalid_value: ts:" in err
    assert not [line for line in err.splitlines() if line.startswith("1999-01-01")]


def test_the_replay_summary_shows_one_line_per_model() -> None:
    summary = Summary(alerts=Counter({(FORGED, "value"): 2, ("a\rb", "rate"): 1}))
    lines = summary.render().splitlines()
    assert lines[-3:-1] == ["alerts: 3", "  a\\rb rate: 1"]
    assert lines[-1].startswith("  m\\n1999-01-01") and lines[-1].endswith("forged value: 2")
