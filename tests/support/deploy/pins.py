"""The image's dependency pins (deploy/docker/constraints.txt) against pyproject.toml."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.deploy.files import PIN_SCRIPT, Problems


def parse_constraints(text: str) -> tuple[dict[str, Version], Problems]:
    pins: dict[str, Version] = {}
    problems: Problems = []
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        if len(spec) != 1 or spec[0].operator != "==" or req.marker or req.extras:
            problems.append(f"constraints: {line} is not a plain name==version pin")
            continue
        pins[canonicalize_name(req.name)] = Version(spec[0].version)
    return pins, problems


@cache
def pin_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pin_runtime_deps", PIN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pin_problems(pins: Mapping[str, Version], dependencies: list[str]) -> Problems:
    """Every runtime dependency is pinned inside its range, transitively where we can see it.

    The transitive step reads the requirements of the installed distributions, so
    it covers each pinned package whose installed version is the pinned one.
    """
    markers = pin_script().IMAGE_MARKERS
    problems: Problems = []

    def check(req: Requirement, needed_by: str) -> None:
        if req.marker is not None and not req.marker.evaluate(markers):
            return
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"constraints: {name} ({needed_by}) is not pinned")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(
                f"constraints: {name}=={pins[name]} does not satisfy {req.specifier} ({needed_by})"
            )

    for line in dependencies:
        check(Requirement(line), "pyproject.toml")
    for name, version in pins.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != version:
            continue
        for req in pin_script().runtime_requirements(dist):
            check(req, f"{name} {version}")
    return problems
