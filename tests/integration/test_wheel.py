"""The installed wheel, as the Docker image holds it: every command of it runs.

The wheel is built from what the Dockerfile copies (pyproject.toml, README.md,
streamproc/), installed with its dependencies (pinned by the image's constraints) into
a fresh virtualenv, and each entry point is run from there, away from the checkout.
So a command that needs the source tree (a pom read from ``deploy/``) cannot pass.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamproc.cli import build_parser
from streamproc.dev.processes import child_env

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ("pyproject.toml", "README.md", "streamproc")
"""What the Dockerfile's build stage copies."""
CONSTRAINTS = ROOT / "deploy" / "docker" / "constraints.txt"

pytestmark = pytest.mark.timeout(600)


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=540
    )
    assert done.returncode == 0, f"{cmd} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin`` dir of a fresh virtualenv holding the project's wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in CONTEXT:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    shutil.rmtree(source / "streamproc" / "__pycache__", ignore_errors=True)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--quiet", "-w", str(dist), str(source)], cwd=tmp)
    wheel = next(dist.glob("streamproc-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    bin_dir = venv / "bin"
    install = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    run([*install, "--disable-pip-version-check", "-c", str(CONSTRAINTS), str(wheel)], cwd=tmp)
    yield bin_dir


def subcommands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command path of the CLI (``kafka``, ``kafka up``, ...), from its parser."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        assert isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items():
            yield (*prefix, name)
            yield from subcommands(sub, (*prefix, name))


def clean_env(bin_dir: Path) -> dict[str, str]:
    """No checkout on the path, no ``STREAMPROC_*`` settings, the venv's bin first."""
    env = child_env()
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_imports_from_the_venv_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = run(
        [str(installed / "python"), "-c", "import streamproc; print(streamproc.__file__)"],
        cwd=tmp_path,
        env=clean_env(installed),
    )
    assert Path(where.strip()).is_relative_to(installed.parent)


def test_every_command_of_the_wheel_shows_its_help(installed: Path, tmp_path: Path) -> None:
    commands = list(subcommands(build_parser()))
    assert {("worker",), ("kafka", "up"), ("run-local",)} <= set(commands)
    env = clean_env(installed)
    assert "usage: streamproc" in run([str(installed / "streamproc"), "--help"], tmp_path, env)
    for command in commands:
        out = run([str(installed / "streamproc"), *command, "--help"], tmp_path, env)
        assert f"usage: streamproc {' '.join(command)}" in out


def test_the_wheel_carries_the_kafka_pom(installed: Path, tmp_path: Path) -> None:
    code = (
        "from streamproc.dev.jars import default_pom, pom_version\n"
        "print(default_pom(), pom_version(default_pom()))"
    )
    pom, version = run(
        [str(installed / "python"), "-c", code], tmp_path, clean_env(installed)
    ).split()
    assert Path(pom).is_relative_to(installed.parent)
    assert version.split(".")[0] == "4"


def test_kafka_up_without_java_says_what_to_install(installed: Path, tmp_path: Path) -> None:
    """As in the image, which has no JDK: an error naming the package, not a traceback."""
    env = clean_env(installed) | {"PATH": str(installed)}
    done = subprocess.run(
        [str(installed / "streamproc"), "kafka", "up", "--state-dir", str(tmp_path / "k")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "java not found: install a JDK 17+" in done.stderr
    assert "Traceback" not in done.stderr
