"""Logging: readable text for people, JSON lines for log pipelines, and a rate limit.

A broken producer can send thousands of bad messages a second; logging each
would flood the log and cost more than processing them. :class:`RejectionLog`
logs rejections up to a rate, then one summary line of what it held back. The
dead-letter topic, not the log, is the complete record.

Model ids, feature names and event ids come from producers and reach log
messages. Both formatters therefore pass every message through
:func:`one_line`, so no value can start a line that reads as a record of its
own (a forged log line) or move the terminal's cursor.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

import orjson

from streamproc.settings import LogSettings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Control characters, Unicode line and paragraph separators, and bidi overrides: what
can end a line (for ``str.splitlines`` and terminals) or make a line read otherwise."""
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
"""Characters JSON may carry raw inside strings but line splitters still break on."""

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def one_line(text: str) -> str:
    """``text`` with every control or line-breaking character escaped (``\\n``, ``\\x1b``)."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def _traceback(exc: traceback.TracebackException) -> Iterator[str]:
    """Python's traceback layout, with each exception's own text on one line: frames come
    from our code, but an exception's message may quote a producer's value."""
    if exc.__cause__ is not None:
        yield from _traceback(exc.__cause__)
        yield "\nThe above exception was the direct cause of the following exception:\n\n"
    elif exc.__context__ is not None and not exc.__suppress_context__:
        yield from _traceback(exc.__context__)
        yield "\nDuring handling of the above exception, another exception occurred:\n\n"
    if exc.stack:
        yield "Traceback (most recent call last):\n"
        yield from exc.stack.format()
    for line in exc.format_exception_only():
        yield one_line(line.removesuffix("\n")) + "\n"
    for i, member in enumerate(exc.exceptions or (), start=1):
        yield f"sub-exception {i}:\n"
        yield from _traceback(member)


def _format_exception(ei: _ExcInfo) -> str:
    if ei[1] is None:
        return ""
    return "".join(_traceback(traceback.TracebackException.from_exception(ei[1]))).rstrip("\n")


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with the message on one line; only a traceback adds lines, and its
    exception texts are escaped too."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None  # another handler's cached traceback may not be escaped
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: _ExcInfo) -> str:
        return _format_exception(ei)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, then the record's extras.

    The message is escaped as in text logs, so it shows as one line wherever it is
    displayed; extras keep their exact values (JSON escapes them), so ids still match.
    """

    def formatException(self, ei: _ExcInfo) -> str:
        return _format_exception(ei)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": one_line(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=repr).decode().translate(_JSON_BREAKS)


class _StreamprocHandler(logging.StreamHandler[TextIO]):
    """Marks the handler we install, so calling setup_logging again replaces it."""


def setup_logging(settings: LogSettings, *, stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger once, at the edge; returns the handler it installed.

    ``stream`` defaults to stderr. Calling it again replaces our handler and
    leaves handlers installed by others alone.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StreamprocHandler)]:
        root.removeHandler(old)
    handler = _StreamprocHandler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter() if settings.format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(settings.level)
    return handler


class TokenBucket:
    """Allows ``rate`` events per second on average, bursts of up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def allow(self) -> bool:
        """Take a token if one is there."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class RejectionLog:
    """Logs rejected messages as WARNINGs, at most ``per_second`` (bursts of ``burst``).

    What it holds back it counts by reason, and logs as one line
    ("suppressed K similar messages") before the next one it lets through, or
    on :meth:`flush`, which the worker calls on a timer so a summary is never
    lost when the rejections stop.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        per_second: float = 10.0,
        burst: int = 20,
        max_detail: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger if logger is not None else logging.getLogger("streamproc.rejections")
        self._bucket = TokenBucket(per_second, burst, clock=clock)
        self._max_detail = max_detail
        self._suppressed: Counter[str] = Counter()

    @property
    def suppressed(self) -> int:
        """Rejections held back since the last summary."""
        return sum(self._suppressed.values())

    def rejected(
        self,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        message: str,
        *,
        error: BaseException | None = None,
    ) -> None:
        """Log one rejected message as ``topic[partition]@offset: reason: message``.

        ``message`` is the rejection's detail; it is cut to ``max_detail``
        characters because it may quote the producer's payload. With ``error`` (an
        ``internal_error``: our fault, not the producer's) the line is an ERROR with the
        traceback.
        """
        if not self._bucket.allow():
            self._suppressed[str(reason)] += 1
            return
        self.flush()
        detail = message if len(message) <= self._max_detail else message[: self._max_detail] + "…"
        extra = {"topic": topic, "partition": partition, "offset": offset, "reason": str(reason)}
        self._logger.log(
            logging.WARNING if error is None else logging.ERROR,
            "rejected %s[%d]@%d: %s: %s",
            topic,
            partition,
            offset,
            reason,
            detail,
            extra=extra,
            exc_info=error,
        )

    def flush(self) -> None:
        """Log the summary of held-back rejections, if any."""
        if not self._suppressed:
            return
        count = self.suppressed
        by_reason = dict(self._suppressed.most_common())
        self._suppressed.clear()
        reasons = ", ".join(f"{reason}: {n}" for reason, n in by_reason.items())
        self._logger.warning(
            "suppressed %d similar messages (%s)",
            count,
            reasons,
            extra={"suppressed": count, "suppressed_by_reason": by_reason},
        )
