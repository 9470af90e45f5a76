"""Locating the Debian tools some tests drive (installed by ``make tools``).

Without one a developer's test run skips those tests; CI (``CI`` set) fails instead,
so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil

import pytest


def binary(name: str, package: str) -> str:
    """Path of ``name`` from Debian's ``package``; skips (fails under CI) when absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: run `make tools` (installs Debian's {package} package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
