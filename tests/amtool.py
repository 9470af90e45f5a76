"""Locating Alertmanager's binaries (Debian's ``prometheus-alertmanager``, from ``make tools``).

As with :mod:`tests.promtool`: without them a developer's run skips these tests;
CI (``CI`` set) fails instead, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import tools

REPO = Path(__file__).resolve().parent.parent
ALERTMANAGER_DIR = REPO / "deploy" / "alertmanager"


def binary(name: str) -> str:
    """Path of ``name``; skips (fails under CI) when absent."""
    return tools.binary(name, "prometheus-alertmanager")


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run amtool; the caller asserts on returncode and output."""
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )
