"""Locating Alertmanager's binaries (Debian's ``prometheus-alertmanager``, from ``make tools``).

As with :mod:`tests.promtool`: without them a developer's run skips these tests;
CI (``CI`` set) fails instead, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ALERTMANAGER_DIR = REPO / "deploy" / "alertmanager"


def binary(name: str) -> str:
    """Path of ``name`` (amtool, prometheus-alertmanager); skips (fails under CI) when absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: run `make tools` (installs Debian's prometheus-alertmanager)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run amtool; the caller asserts on returncode and output."""
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )
