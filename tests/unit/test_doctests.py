"""The examples in the package's docstrings run, as River's do (issue #17, item 6).

Every module is imported and its ``>>>`` examples executed here rather than through
``pytest --doctest-modules``, so they run however the suite is invoked (``pytest tests``,
``pytest tests/unit``). Importing a module must have no side effects: that is checked too,
since each is imported on its own.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from collections.abc import Callable

import pytest

import streamproc
from streamproc import detectors
from streamproc.alerts import alert_id
from streamproc.engine import Engine
from streamproc.events import decode

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(streamproc.__path__, "streamproc.")
    if m.name != "streamproc.__main__"  # runs the command line when imported, by design
)
ENTRY_POINTS: list[Callable[..., object]] = [decode, Engine.process, alert_id, detectors.build]


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_in_a_module_hold(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda f: f.__qualname__)
def test_the_public_entry_points_carry_an_example(entry: Callable[..., object]) -> None:
    assert ">>>" in (entry.__doc__ or "")
