"""Event times: RFC 3339 strings to epoch milliseconds, and the range streamproc accepts.

:meth:`datetime.fromisoformat` alone accepts far more than RFC 3339 (dates
alone, week dates, naive times), and a naive time is ambiguous in a stream fed
by producers in many time zones; so the contract's grammar is matched first,
and the (fast, C) ISO parser only does the arithmetic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

MAX_EPOCH_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write."""

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-5][0-9])"  # fromisoformat would take +00:60 as +01:00
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339_to_ms(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 date-time; fractions finer than 1 ms are truncated.

    A leap second (``:60``) counts as the first instant of the next minute,
    as POSIX time does. Raises :class:`ValueError` saying what is wrong.
    """
    if _RFC3339.fullmatch(text) is None:
        raise ValueError("expected an RFC 3339 date-time with offset, like 2026-11-28T10:00:00Z")
    leap = text[17:19] == "60"  # the grammar fixes where the seconds are
    if leap:
        text = f"{text[:17]}59{text[19:]}"
    try:
        since = datetime.fromisoformat(text.upper()) - _EPOCH
    except ValueError as exc:
        raise ValueError(f"not a valid date-time: {exc}") from None
    # integer arithmetic: exact, and faster than timedelta division
    ms = (since.days * 86_400 + since.seconds + int(leap)) * 1_000 + since.microseconds // 1_000
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise ValueError("outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z")
    return ms
