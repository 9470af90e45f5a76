"""Regenerate tests/data/demo_events.jsonl.gz and its golden alert ids.

    python -m tests.support.golden_alerts

Only for a deliberate change: the ids must stay the same unless ``schema_version``
changes (docs/alerts.md, "The alert id"); the events only if the demo scenario changes.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.support import demo_run

DATA = Path(__file__).resolve().parents[1] / "data"
EVENTS = DATA / "demo_events.jsonl.gz"
IDS = DATA / "demo_alert_ids.txt"


def compressed(lines: list[bytes]) -> bytes:
    """gzip with a fixed mtime, so the same events give the same bytes."""
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=9, mtime=0)


def main() -> None:
    lines = demo_run.event_lines()
    EVENTS.write_bytes(compressed(lines))
    alerts = demo_run.run(lines)
    IDS.write_text(
        "".join(
            f"{a.alert_id} {a.stream.model} {a.stream.kind.value}:{a.stream.name} {a.events_seen}\n"
            for a in alerts
        )
    )


if __name__ == "__main__":
    main()
