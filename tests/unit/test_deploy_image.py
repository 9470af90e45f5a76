"""The Docker image: Dockerfile, .dockerignore, base image and dependency pins
(tests/support/deploy), on the real files and on broken copies."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.deploy.dockerfile import (
    dockerfile_images,
    dockerfile_problems,
    dockerignore_allows,
)
from tests.support.deploy.files import (
    CONSTRAINTS,
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    copy_with,
    image_problems,
)
from tests.support.deploy.pins import parse_constraints, pin_problems


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    problems = dockerfile_problems(text, DOCKERIGNORE.read_text(encoding="utf-8"), ROOT)
    assert problems + image_problems(dockerfile_images(text)) == []


def test_constraints_pin_every_runtime_dependency_within_range() -> None:
    pins, problems = parse_constraints(CONSTRAINTS.read_text(encoding="utf-8"))
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert problems + pin_problems(pins, dependencies) == []


def test_constraints_hold_no_dev_tools() -> None:
    pins, _ = parse_constraints(CONSTRAINTS.read_text(encoding="utf-8"))
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = {canonicalize_name(Requirement(r).name) for r in extras["optional-dependencies"]["dev"]}
    assert sorted(dev & set(pins)) == []


@pytest.mark.parametrize(
    "ref", ["apache/kafka", "apache/kafka:latest", "python:3.11-slim", "grafana/grafana:12"]
)
def test_unpinned_image_is_reported(ref: str) -> None:
    assert image_problems([("test", ref)]) != []


def test_pinned_by_digest_is_accepted() -> None:
    assert image_problems([("test", "python:3.11-slim@sha256:" + "0" * 64)]) == []


def test_pin_outside_the_pyproject_range_is_reported() -> None:
    pins, _ = parse_constraints(CONSTRAINTS.read_text(encoding="utf-8"))
    pins[canonicalize_name("river")] = Version("0.25.0")
    del pins[canonicalize_name("orjson")]
    problems = pin_problems(pins, ["river>=0.26,<0.27", "orjson>=3.10"])
    assert any("river==0.25.0" in p for p in problems), problems
    assert any("orjson" in p and "not pinned" in p for p in problems), problems


def test_missing_transitive_pin_is_reported() -> None:
    pins, _ = parse_constraints(CONSTRAINTS.read_text(encoding="utf-8"))
    del pins[canonicalize_name("pydantic-core")]  # needed by pydantic, not by pyproject
    assert any("pydantic-core" in p for p in pin_problems(pins, [])), pins


def test_loose_constraint_is_reported() -> None:
    _, problems = parse_constraints("river>=0.26\norjson==3.13.0\n")
    assert problems == ["constraints: river>=0.26 is not a plain name==version pin"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('CMD ["worker"]', 'CMD ["demo"]', "default CMD"),
        ("USER 10001:10001", "USER root", "runs as root"),
        ("'/healthz'", "'/metrics'", "HEALTHCHECK"),
        (
            "ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm",
            "ARG PYTHON_IMAGE=python:3.11-slim",
            "not pinned",
        ),
        ("--requirement /src/constraints.txt", "streamproc", "constraints file"),
        ("COPY streamproc /src/streamproc", "COPY src /src/streamproc", "does not exist"),
    ],
)
def test_broken_dockerfile_is_reported(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = copy_with(tmp_path, DOCKERFILE, old, new).read_text(encoding="utf-8")
    problems = dockerfile_problems(text, DOCKERIGNORE.read_text(encoding="utf-8"), ROOT)
    assert any(expected in p for p in problems + image_problems(dockerfile_images(text)))


def test_copy_source_excluded_by_dockerignore_is_reported() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    problems = dockerfile_problems(text, DOCKERIGNORE.read_text() + "\nstreamproc/\n", ROOT)
    assert any("streamproc is in .dockerignore" in p for p in problems), problems


@pytest.mark.parametrize(
    ("patterns", "path", "allowed"),
    [
        (["*", "!streamproc/"], "streamproc", True),
        (["*", "!streamproc/"], "streamproc/app.py", True),
        (["*", "!streamproc/", "**/__pycache__"], "streamproc/__pycache__", False),
        (["*", "!streamproc/", "**/*.pyc"], "streamproc/x.pyc", False),
        (["*"], "README.md", False),
        (["*", "!deploy/docker/constraints.txt"], "deploy/docker/constraints.txt", True),
        (["*", "!deploy/docker/constraints.txt"], "deploy/docker/other.txt", False),
        (["docs"], "docs/a/b.md", False),  # a parent's match decides for what is inside
        (["*", "!README.md", "README.md"], "README.md", False),  # the last match wins
    ],
)
def test_dockerignore_follows_dockers_rules(patterns: list[str], path: str, allowed: bool) -> None:
    assert dockerignore_allows(patterns, path) is allowed
