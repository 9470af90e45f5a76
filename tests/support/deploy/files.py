"""Where the deployment files are, how they load, and the checks every format shares."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from streamproc.errors import ConfigError
from streamproc.settings import ENV_PREFIX, Settings, env_names, load_settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONSTRAINTS = ROOT / "deploy" / "docker" / "constraints.txt"
PIN_SCRIPT = ROOT / "deploy" / "docker" / "pin_runtime_deps.py"
TOPICS_SCRIPT = ROOT / "deploy" / "docker" / "create-topics.sh"
K8S = ROOT / "deploy" / "k8s"
KAFKA_POM = ROOT / "streamproc" / "dev" / "pom.xml"

KUBERNETES_VERSION = "1.31"
STREAMPROC_IMAGE = "streamproc"
# Subcommands that serve /healthz (and so can use the image's HEALTHCHECK).
HTTP_SUBCOMMANDS = {"worker", "route"}
# Files in deploy/k8s that kustomize must not apply.
K8S_NOT_APPLIED = {"kustomization.yaml", "secret.example.yaml"}

Problems = list[str]


# --- loading ------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def k8s_documents(k8s_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) for every manifest except the kustomization itself."""
    return [
        (path.name, doc)
        for path in sorted(k8s_dir.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in load_yaml_docs(path)
    ]


def setting_problems(
    environ: Mapping[str, str], where: str, config_text: str | None = None
) -> Problems:
    """Unknown STREAMPROC_* names, then whatever load_settings rejects in the values."""
    known = env_names()
    env = {k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)}
    unknown = sorted(set(env) - set(known))
    if unknown:
        return [f"{where}: unknown setting {name} (not in env_names())" for name in unknown]
    try:
        effective_settings(env, config_text)
    except ConfigError as exc:
        return [f"{where}: {exc}"]
    return []


def effective_settings(environ: Mapping[str, str], config_text: str | None = None) -> Settings:
    """What the process would run with, given its environment and optional config file."""
    if config_text is None:
        return load_settings(None, environ)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(config_text, encoding="utf-8")
        return load_settings(path, environ)


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# At least major.minor.patch, optionally with a v prefix and a variant suffix.
_VERSION_TAG = re.compile(r"^v?\d+\.\d+\.\d+([-.+_][\w.-]+)?$")


def image_problems(images: Iterable[tuple[str, str]]) -> Problems:
    """Each (where, image reference) must carry a digest or an exact version tag."""
    problems: Problems = []
    for where, ref in images:
        if _DIGEST.search(ref):
            continue
        tag = ref.rpartition(":")[2] if ":" in ref.split("/")[-1] else ""
        if not tag:
            problems.append(f"{where}: image {ref} has no tag (means latest)")
        elif tag == "latest" or not _VERSION_TAG.match(tag):
            problems.append(f"{where}: image {ref} is not pinned to an exact version ({tag})")
    return problems


def copy_with(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of a file or directory with ``old`` replaced by ``new`` (which must occur)."""
    target = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, target)
        files: Iterator[Path] = (p for p in target.rglob("*") if p.is_file())
    else:
        shutil.copy(source, target)
        files = iter([target])
    replaced = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        replaced += text.count(old)
        path.write_text(text.replace(old, new), encoding="utf-8")
    assert replaced, f"{old!r} not found in {source}"
    return target
