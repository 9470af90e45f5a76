"""Shared test setup: the ``integration`` mark, a floor on what a run selects, and skips
that fail under CI.

Everything under tests/integration carries the ``integration`` mark, so
``pytest -m "not integration"`` runs without a broker and no test author has to
remember the mark.

A run that tests less than it should must not pass quietly. ``--min-tests N`` fails
the run (exit code 4) when fewer than N tests are selected after ``-m``/``-k``/addopts,
so a marker or addopts change cannot deselect a whole suite. With ``CI`` set, every
skip fails the run unless :data:`ALLOWED_SKIPS` names it with its reason: a skip there
means a tool the tests need is missing, which is CI's bug, not a pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("mutation", derandomize=True, database=None)
"""``make mutation`` (``--hypothesis-profile=mutation``): the same examples for every mutant and
the clean run, none replayed from a database a mutant's failure wrote."""

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"

ALLOWED_SKIPS: dict[str, str] = {}
"""Node-id prefix -> why skipping it under CI is right. Empty: CI machines are Linux with
bash, promtool, prometheus and kcat (``make tools``), so nothing may skip there."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--min-tests",
        type=int,
        default=0,
        help="fail (exit 4) when fewer tests than this are selected; guards against a "
        "marker or addopts change that deselects a whole suite",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    floor: int = session.config.getoption("--min-tests")
    if len(session.items) < floor:
        raise pytest.UsageError(
            f"{len(session.items)} tests selected, at least {floor} expected (--min-tests): "
            "did a -m, -k or addopts change deselect them?"
        )


def allowed_skip(nodeid: str) -> str | None:
    """The reason a skip of ``nodeid`` is allowed under CI, or None."""
    return next((why for prefix, why in ALLOWED_SKIPS.items() if nodeid.startswith(prefix)), None)


def skips(config: pytest.Config) -> list[pytest.TestReport]:
    """Reports of skipped tests (not xfails), as the terminal reporter counted them."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = reporter.stats.get("skipped", []) if reporter is not None else []
    return [r for r in reports if isinstance(r, pytest.TestReport) or hasattr(r, "nodeid")]


def forbidden_skips(config: pytest.Config) -> list[pytest.TestReport]:
    if not os.environ.get("CI"):
        return []
    return [r for r in skips(config) if allowed_skip(r.nodeid) is None]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if forbidden_skips(session.config) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    counts = {
        key: len(terminalreporter.stats.get(key, []))
        for key in ("passed", "failed", "error", "skipped", "xfailed", "deselected")
    }
    line = ", ".join(f"{n} {key}" for key, n in counts.items())
    terminalreporter.write_line(f"streamproc test counts: {line}")
    for report in forbidden_skips(config):
        terminalreporter.write_line(
            f"FAILED (skip under CI): {report.nodeid}: {_skip_reason(report)}", red=True
        )
    for report in skips(config):
        why = allowed_skip(report.nodeid)
        if why is not None:
            terminalreporter.write_line(f"allowed skip: {report.nodeid}: {why}")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
