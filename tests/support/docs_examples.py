"""The example alerts and log lines of README.md and docs/alerts.md, from a real run.

Each example sits between ``<!-- example: NAME -->`` and ``<!-- /example -->`` in a
fenced block; its text is rendered here from the demo scenario replayed through the
engine (tests/support/demo_run.py). tests/unit/test_docs_examples.py checks that the
documents hold exactly this text; ``make docs-examples`` (``python -m
tests.support.docs_examples``) writes it back after a deliberate change.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from streamproc.alerts import Alert
from streamproc.demo import SCHEDULE
from streamproc.domain import StreamKind
from streamproc.summaries import summarize
from tests.support import demo_run

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "alerts.md")
BLOCK = re.compile(
    r"(<!-- example: (?P<name>[\w-]+) -->\n```(?P<lang>\w*)\n)"
    r"(?P<body>.*?)(```\n<!-- /example -->)",
    re.DOTALL,
)


def _first(alerts: list[Alert], kind: StreamKind) -> Alert:
    return next(a for a in alerts if a.stream.kind is kind)


def render() -> dict[str, str]:
    """Every example's text, by name."""
    alerts = demo_run.run(demo_run.event_lines())
    demo = [f"demo: at {d.at_seconds:>4.0f}s {d.model}: {d.description}" for d in SCHEDULE[:5]]
    value = _first(alerts, StreamKind.VALUE).to_dict()
    category = _first(alerts, StreamKind.CATEGORY).to_dict()["change"]
    return {
        "demo-output": "\n".join([*demo, "...", *(summarize(a) for a in alerts)]) + "\n",
        "alert-json": json.dumps(value, indent=2, sort_keys=True) + "\n",
        "category-change": '"change": ' + json.dumps(category, indent=2, sort_keys=True) + "\n",
    }


def blocks(text: str) -> dict[str, str]:
    """The examples a document holds, by name."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def rewrite(text: str, examples: dict[str, str]) -> str:
    return BLOCK.sub(lambda m: m[1] + examples[m["name"]] + m[5], text)


def main() -> None:
    examples = render()
    for path in DOCUMENTS:
        path.write_text(rewrite(path.read_text(), examples))


if __name__ == "__main__":
    main()
