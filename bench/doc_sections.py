"""The generated sections of docs/*.md: each benchmark rewrites its own, between its own
markers, and keeps the prose around it.

bench/ is not a package: the quality scripts run as ``python bench/quality.py`` and
import this as ``doc_sections``; ``python -m bench.throughput`` as ``bench.doc_sections``.
"""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, text: str, begin: str, end: str, heading: str = "") -> None:
    """Put ``text`` (which starts with ``begin`` and ends with ``end``) where the section
    between those markers is in ``path``. A file without them keeps what it has and gets
    ``heading`` and ``text`` appended; a missing file is created.

    Example: ``write_section(Path("docs/quality.md"), table, BEGIN, END, "## Labels")``.
    """
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + text + rest.split(end, 1)[1]
    else:
        doc = "\n\n".join(part for part in (doc.rstrip(), heading, text) if part) + "\n"
    path.write_text(doc, encoding="utf-8")
