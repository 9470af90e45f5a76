"""The Dockerfile (parsed by dockerfile-parse) and its .dockerignore (matched by the
Docker SDK's ``PatternMatcher``, a port of Docker's own rules)."""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path

from docker.utils.build import PatternMatcher
from dockerfile_parse import DockerfileParser

from streamproc.settings import MetricsSettings
from tests.support.deploy.files import DOCKERFILE, Problems

Instruction = tuple[str, str]


def parse(text: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(text.encode("utf-8")))


def dockerfile_instructions(text: str) -> list[Instruction]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    return [
        (item["instruction"], item["value"])
        for item in parse(text).structure
        if item["instruction"] != "COMMENT"
    ]


def dockerfile_stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """Instructions per build stage; stage 0 holds the global ARGs before the first FROM."""
    stages: list[list[Instruction]] = [[]]
    for keyword, args in instructions:
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args))
    return stages


def image_env() -> dict[str, str]:
    """The environment the image's final stage sets (``ENV``)."""
    return dict(parse(DOCKERFILE.read_text(encoding="utf-8")).envs)


def has_healthcheck(text: str) -> bool:
    return any(kw == "HEALTHCHECK" for kw, _ in dockerfile_instructions(text))


def dockerfile_images(text: str) -> list[tuple[str, str]]:
    """Base images, build arguments substituted; a FROM naming an earlier stage is skipped."""
    stages = [value.split() for kw, value in dockerfile_instructions(text) if kw == "FROM"]
    names = {words[-1] for words in stages if len(words) >= 3 and words[-2].upper() == "AS"}
    return [("Dockerfile FROM", ref) for ref in parse(text).parent_images if ref not in names]


def dockerignore_allows(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    return not PatternMatcher(patterns).matches(path)


def dockerignore_patterns(dockerignore: str) -> list[str]:
    """The patterns of a .dockerignore, as Docker reads them: comments and blanks dropped."""
    return [
        line.strip()
        for line in dockerignore.splitlines()
        if line.strip() and not line.startswith("#")
    ]


def dockerfile_problems(text: str, dockerignore: str, project_dir: Path) -> Problems:
    instructions = dockerfile_instructions(text)
    stages = dockerfile_stages(instructions)
    final = stages[-1]
    problems: Problems = []
    if len(stages) < 3:
        problems.append("Dockerfile: not multi-stage")

    def last(keyword: str) -> str | None:
        values = [args for kw, args in final if kw == keyword]
        return values[-1] if values else None

    user = last("USER")
    if user is None or user.split(":")[0] in {"root", "0"}:
        problems.append(f"Dockerfile: final stage runs as {user or 'root'}")
    healthcheck = last("HEALTHCHECK")
    if healthcheck is None:
        problems.append("Dockerfile: no HEALTHCHECK")
    else:
        argv = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
        if argv[:2] != ["python", "-c"] or "/healthz" not in argv[2]:
            problems.append(f"Dockerfile: HEALTHCHECK is not a python check of /healthz: {argv}")
        else:
            compile(argv[2], "HEALTHCHECK", "exec")  # raises SyntaxError on a broken one-liner
    if last("ENTRYPOINT") is None or json.loads(last("ENTRYPOINT") or "") != ["streamproc"]:
        problems.append("Dockerfile: ENTRYPOINT is not the streamproc CLI")
    if last("CMD") is None or json.loads(last("CMD") or "") != ["worker"]:
        problems.append("Dockerfile: default CMD is not worker")
    if str(MetricsSettings().port) not in (last("EXPOSE") or "").split():
        problems.append("Dockerfile: the default metrics port is not exposed")
    runs = " ".join(args for stage in stages for kw, args in stage if kw == "RUN")
    if "constraints.txt" not in runs:
        problems.append("Dockerfile: pip does not install from the constraints file")
    ignore = dockerignore_patterns(dockerignore)
    for stage in stages[1:]:
        for keyword, args in stage:
            if keyword != "COPY" or "--from=" in args:
                continue
            sources = [w for w in shlex.split(args) if not w.startswith("--")][:-1]
            for source in sources:
                if not (project_dir / source).exists():
                    problems.append(f"Dockerfile: COPY source {source} does not exist")
                elif not dockerignore_allows(ignore, source):
                    problems.append(f"Dockerfile: COPY source {source} is in .dockerignore")
    return problems
