"""The quality benchmarks, imported as ``python bench/quality*.py`` runs them: bench/ is
not a package, so its directory goes on ``sys.path`` and each script imports its
siblings (``doc_sections``) by their plain names."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    """bench/NAME.py, imported once per test session like the script would be."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)
