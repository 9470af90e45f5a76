"""Shared test setup: everything under tests/integration carries the ``integration`` mark.

So ``pytest -m "not integration"`` runs without a broker, and no test author has
to remember the mark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)
