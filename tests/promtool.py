"""Locating Prometheus' binaries (Debian's ``prometheus`` package, installed by ``make tools``).

Without them a developer's test run skips these tests; CI (``CI`` set) fails
instead, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import tools

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"


def binary(name: str) -> str:
    """Path of ``name``; skips (fails under CI) when absent."""
    return tools.binary(name, "prometheus")


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; the caller asserts on returncode and output."""
    return subprocess.run(
        [binary("promtool"), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
