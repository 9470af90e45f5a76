"""The guards of tests/conftest.py: a floor on selected tests, and skips that fail under CI.

Each case runs pytest in a subprocess on a throwaway suite that uses the real conftest,
so what is checked is what ``make test`` and ``.ci/run`` rely on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
SUITE = """\
import pytest

def test_runs() -> None:
    pass

def test_needs_a_tool() -> None:
    pytest.skip("the tool is missing")
"""


def run_suite(tmp_path: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci:
        env["CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_skip_passes_outside_ci_and_the_counts_are_reported(tmp_path: Path) -> None:
    done = run_suite(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "streamproc test counts: 1 passed, 0 failed, 0 error, 1 skipped" in done.stdout


def test_a_skip_fails_under_ci_and_is_named(tmp_path: Path) -> None:
    done = run_suite(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED (skip under CI): test_suite.py::test_needs_a_tool" in done.stdout


def test_fewer_selected_tests_than_the_floor_fail(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "--min-tests", "1", "-k", "nothing_matches", ci=False)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "0 tests selected, at least 1 expected" in done.stdout + done.stderr


def test_the_floor_passes_when_met(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "--min-tests", "2", ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
