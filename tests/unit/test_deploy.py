"""Static checks of the deployment files, since no Docker engine or cluster runs here.

Each check is a small function that takes parsed files and returns a list of
problems (empty when fine), so the same functions run on the real files and on
deliberately broken copies: a check that cannot fail proves nothing.

What is checked: docker-compose.yml against the Compose Specification schema
(vendored by the check-jsonschema package), the Kubernetes manifests against
the Kubernetes 1.31 OpenAPI schemas (bundled by kubernetes-validate), the
ServiceMonitor (a CRD) by hand, every STREAMPROC_* variable and config file
against streamproc's own settings, image pinning, healthchecks, mounts, and the
Docker image's dependency pins against pyproject.toml.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from streamproc.errors import ConfigError
from streamproc.settings import ENV_PREFIX, MetricsSettings, Settings, env_names, load_settings

ROOT = Path(__file__).resolve().parents[2]
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
HTTP_SUBCOMMANDS = {"worker"}
# Files in deploy/k8s that kustomize must not apply.
K8S_NOT_APPLIED = {"kustomization.yaml", "secret.example.yaml"}

Problems = list[str]


# --- loading -------------------------------------------------------------------------------


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


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def dockerfile_stages(instructions: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Instructions per build stage; stage 0 holds the global ARGs before the first FROM."""
    stages: list[list[tuple[str, str]]] = [[]]
    for keyword, args in instructions:
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args))
    return stages


def dockerfile_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword != "ENV":
            continue
        words = shlex.split(args)
        if words and "=" not in words[0]:  # legacy `ENV KEY value`
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            env[key] = value
    return env


def substitute_args(text: str, args: Mapping[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text
    )


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {
        k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in env.items()
    }


def uses_streamproc_image(service: Mapping[str, Any]) -> bool:
    return str(service.get("image", "")).split(":")[0] == STREAMPROC_IMAGE or "build" in service


def subcommand(service: Mapping[str, Any]) -> str:
    command = service.get("command", ["worker"])
    words = shlex.split(command) if isinstance(command, str) else command
    return str(words[0]) if words else "worker"


# --- settings ------------------------------------------------------------------------------


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


def image_env() -> dict[str, str]:
    stages = dockerfile_stages(dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")))
    return dockerfile_env(stages[-1])


def service_environ(service: Mapping[str, Any], base_env: Mapping[str, str]) -> dict[str, str]:
    """The environment a compose service's process sees (image ENV, then the service's)."""
    env = dict(base_env) if uses_streamproc_image(service) else {}
    env.update(compose_environment(service))
    return env


def compose_setting_problems(compose: Mapping[str, Any], base_env: Mapping[str, str]) -> Problems:
    problems = setting_problems(base_env, "Dockerfile ENV")
    for name, service in compose.get("services", {}).items():
        env = service_environ(service, base_env)
        if any(k.startswith(ENV_PREFIX) for k in env):
            problems += setting_problems(env, f"compose service {name}")
    return problems


# --- images --------------------------------------------------------------------------------

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


def compose_images(compose: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for name, service in compose.get("services", {}).items():
        out.append((f"compose service {name}", str(service.get("image", ""))))
    return out


def dockerfile_images(text: str) -> list[tuple[str, str]]:
    stages = dockerfile_stages(dockerfile_instructions(text))
    args = {}
    for keyword, value in stages[0]:
        if keyword == "ARG" and "=" in value:
            key, _, default = value.partition("=")
            args[key.strip()] = default.strip()
    names: set[str] = set()
    out = []
    for stage in stages[1:]:
        words = substitute_args(stage[0][1], args).split()
        words = [w for w in words if not w.startswith("--")]
        ref = words[0]
        if ref not in names:
            out.append(("Dockerfile FROM", ref))
        if len(words) == 3 and words[1].upper() == "AS":
            names.add(words[2])
    return out


def k8s_images(
    docs: list[tuple[str, dict[str, Any]]], kustomization: Mapping[str, Any]
) -> list[tuple[str, str]]:
    out = []
    for file, doc in docs:
        for container in pod_containers(doc):
            out.append((f"{file} container {container['name']}", str(container.get("image", ""))))
    for entry in kustomization.get("images", []):
        ref = entry.get("newName", entry["name"])
        ref += f"@{entry['digest']}" if "digest" in entry else f":{entry.get('newTag', '')}"
        out.append(("kustomization.yaml images", ref))
    return out


def pod_containers(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    if doc.get("kind") not in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return []
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


# --- compose -------------------------------------------------------------------------------


@cache
def compose_schema() -> tuple[str, dict[str, Any]]:
    """The Compose Specification schema as vendored by check-jsonschema, and its version."""
    dist = metadata.distribution("check-jsonschema")
    path = Path(str(dist.locate_file("check_jsonschema/builtin_schemas/vendor/compose-spec.json")))
    return f"check-jsonschema {dist.version}", json.loads(path.read_text(encoding="utf-8"))


def compose_schema_problems(compose: Mapping[str, Any]) -> Problems:
    source, schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(
        f"compose schema ({source}): {err.json_path}: {err.message}"
        for err in validator.iter_errors(compose)
    )


def is_one_shot(service: Mapping[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def compose_health_problems(compose: Mapping[str, Any], image_has_healthcheck: bool) -> Problems:
    """Long-running services are health-checked; depends_on conditions can be met."""
    services: Mapping[str, Any] = compose.get("services", {})
    problems: Problems = []

    def effective_check(service: Mapping[str, Any]) -> bool:
        check = service.get("healthcheck")
        if check is not None:
            return not check.get("disable", False) and bool(check.get("test"))
        return uses_streamproc_image(service) and image_has_healthcheck

    for name, service in services.items():
        check = service.get("healthcheck") or {}
        if not is_one_shot(service) and uses_streamproc_image(service):
            serves_http = subcommand(service) in HTTP_SUBCOMMANDS
            if serves_http and not effective_check(service):
                problems.append(f"service {name}: runs `{subcommand(service)}` without healthcheck")
            if not serves_http and not check.get("disable", False):
                problems.append(
                    f"service {name}: `{subcommand(service)}` serves no /healthz: "
                    "disable the image's healthcheck"
                )
        elif not is_one_shot(service) and not effective_check(service):
            problems.append(f"service {name}: long-running service without a healthcheck")
        deps = service.get("depends_on") or {}
        for dep, spec in deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps):
            if dep not in services:
                problems.append(f"service {name}: depends on unknown service {dep}")
                continue
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy" and not effective_check(services[dep]):
                problems.append(f"service {name}: waits for {dep} to be healthy, it has no check")
            if condition == "service_completed_successfully" and not is_one_shot(services[dep]):
                problems.append(f"service {name}: waits for {dep} to complete, it restarts")
    return problems


def bind_mounts(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(host source, container target) of a service's bind mounts."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
            if source.startswith((".", "/", "~")):
                out.append((source, target))
        elif volume.get("type") == "bind":
            out.append((volume["source"], volume["target"]))
    return out


def compose_mount_problems(compose: Mapping[str, Any], project_dir: Path) -> Problems:
    problems: Problems = []
    declared = set(compose.get("volumes") or {})
    for name, service in compose.get("services", {}).items():
        for source, _target in bind_mounts(service):
            if not (project_dir / source).exists():
                problems.append(f"service {name}: mounted host path {source} does not exist")
        for volume in service.get("volumes", []):
            named = isinstance(volume, str) and not volume.startswith((".", "/", "~"))
            if named and volume.split(":")[0] not in declared:
                problems.append(f"service {name}: volume {volume} is not declared")
    return problems


def compose_consistency_problems(
    compose: Mapping[str, Any], base_env: Mapping[str, str]
) -> Problems:
    """The pieces agree: topics, partitions, ports, replicas, broker version."""
    services: Mapping[str, Any] = compose["services"]
    problems: Problems = []
    worker = services["worker"]
    worker_env = service_environ(worker, base_env)
    settings = effective_settings(worker_env)
    replicas = int(worker.get("deploy", {}).get("replicas", 1))
    if not 2 <= replicas <= settings.topics.partitions:
        problems.append(f"worker replicas {replicas}: want 2..{settings.topics.partitions}")
    init_env = compose_environment(services["kafka-init"])
    for key, value in worker_env.items():
        if (
            key.startswith(("STREAMPROC_TOPICS_", "STREAMPROC_KAFKA_BOOTSTRAP"))
            and init_env.get(key) != value
        ):
            problems.append(f"kafka-init {key}={init_env.get(key)!r}, worker has {value!r}")
    kafka_env = compose_environment(services["kafka"])
    if kafka_env.get("KAFKA_NUM_PARTITIONS") != str(settings.topics.partitions):
        problems.append("kafka KAFKA_NUM_PARTITIONS differs from the workers' partitions")
    try:
        if len(base64.urlsafe_b64decode(kafka_env.get("CLUSTER_ID", "") + "==")) != 16:
            problems.append("kafka CLUSTER_ID is not a base64 UUID (16 bytes)")
    except ValueError:
        problems.append("kafka CLUSTER_ID is not base64")
    pom_version = re.search(r"<kafka.version>([^<]+)<", KAFKA_POM.read_text(encoding="utf-8"))
    for name in ("kafka", "kafka-init"):
        tag = str(services[name]["image"]).rpartition(":")[2]
        if pom_version is None or tag != pom_version.group(1):
            problems.append(f"{name} runs Kafka {tag}, streamproc/dev/pom.xml pins another")
    if str(settings.metrics.port) not in [str(p) for p in worker.get("expose", [])]:
        problems.append(f"worker metrics port {settings.metrics.port} is not exposed")
    return problems


def host_path(mounts: list[tuple[str, str]], container_path: str, project_dir: Path) -> Path | None:
    """Where a path inside the container comes from on the host, through its bind mounts."""
    covering = [
        (source, target.rstrip("/"))
        for source, target in mounts
        if container_path == target.rstrip("/") or container_path.startswith(target + "/")
    ]
    if not covering:
        return None
    source, target = max(covering, key=lambda mount: len(mount[1]))
    return project_dir / source / container_path[len(target) :].lstrip("/")


def mounted_files(
    mounts: list[tuple[str, str]], container_dir: str, project_dir: Path
) -> list[Path]:
    """The YAML files a container sees in ``container_dir``, from directory or file mounts."""
    files: list[Path] = []
    for source, target in mounts:
        host = project_dir / source
        if target.rstrip("/") == container_dir and host.is_dir():
            files += sorted(host.glob("*.y*ml"))
        elif target.rpartition("/")[0] == container_dir and host.is_file():
            files.append(host)
    return files


def url_host(url: str) -> str:
    return re.sub(r"^\w+://", "", url).split("/")[0].rpartition(":")[0] or url


def grafana_problems(compose: Mapping[str, Any], project_dir: Path) -> Problems:
    """Grafana's provisioning reaches mounted dashboards and a Prometheus that exists."""
    mounts = bind_mounts(compose["services"]["grafana"])
    provisioning = "/etc/grafana/provisioning"
    problems: Problems = []
    providers = [
        provider
        for path in mounted_files(mounts, f"{provisioning}/dashboards", project_dir)
        for provider in (load_yaml(path) or {}).get("providers", [])
    ]
    if not providers:
        problems.append("grafana: no dashboard provider is mounted")
    for provider in providers:
        wanted = str(provider.get("options", {}).get("path", ""))
        local = host_path(mounts, wanted, project_dir)
        if local is None or not any(local.glob("*.json")):
            problems.append(f"grafana: dashboards path {wanted} holds no mounted dashboard")
    sources = [
        source
        for path in mounted_files(mounts, f"{provisioning}/datasources", project_dir)
        for source in (load_yaml(path) or {}).get("datasources", [])
    ]
    if not sources:
        problems.append("grafana: no data source is mounted")
    for source in sources:
        host = url_host(str(source.get("url", "")))
        if host not in compose["services"]:
            problems.append(f"grafana: data source {source.get('name')} on {host}, not a service")
    return problems


def prometheus_problems(
    compose: Mapping[str, Any], project_dir: Path, worker_port: int
) -> Problems:
    """Prometheus loads mounted rules and scrapes the workers as the rules expect."""
    services = compose["services"]
    mounts = bind_mounts(services["prometheus"])
    command = " ".join(services["prometheus"].get("command", []))
    match = re.search(r"--config\.file=(\S+)", command)
    config_in_container = match.group(1) if match else "/etc/prometheus/prometheus.yml"
    config_path = host_path(mounts, config_in_container, project_dir)
    if config_path is None or not config_path.is_file():
        return [f"prometheus: {config_in_container} is not mounted"]
    config = load_yaml(config_path) or {}
    problems: Problems = []
    rule_jobs: set[str] = set()
    for rule_file in config.get("rule_files", []):
        in_container = str(Path(config_in_container).parent / str(rule_file))
        local = host_path(mounts, in_container, project_dir)
        if local is None or not local.is_file():
            problems.append(f"prometheus: rule file {rule_file} is not mounted")
        else:
            rule_jobs |= set(re.findall(r'job="([^"]+)"', local.read_text(encoding="utf-8")))
    jobs = {str(job.get("job_name")): job for job in config.get("scrape_configs", [])}
    for missing in sorted(rule_jobs - set(jobs)):
        problems.append(f"prometheus: rules select job={missing}, which is not scraped")
    for name, job in jobs.items():
        targets = [
            str(t) for static in job.get("static_configs", []) for t in static.get("targets", [])
        ]
        targets += [
            f"{n}:{dns.get('port', '')}"
            for dns in job.get("dns_sd_configs", [])
            for n in dns.get("names", [])
        ]
        for target in targets:
            host, _, port = target.rpartition(":")
            if host not in services and target not in {"localhost:9090", "127.0.0.1:9090"}:
                problems.append(f"prometheus job {name}: target {target} is not a service")
            if host == "worker" and port != str(worker_port):
                problems.append(f"prometheus job {name}: workers serve metrics on {worker_port}")
    return problems


# --- Dockerfile ----------------------------------------------------------------------------


def dockerignore_allows(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""

    def matches(pattern: str, candidate: str) -> bool:
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        return re.fullmatch(regex, candidate) is not None

    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    allowed = True
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        if any(matches(pattern, prefix) for prefix in prefixes):
            allowed = negate
    return allowed


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
    ignore = [
        line.strip()
        for line in dockerignore.splitlines()
        if line.strip() and not line.startswith("#")
    ]
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


# --- dependency pins -----------------------------------------------------------------------


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


# --- Kubernetes ----------------------------------------------------------------------------


def servicemonitor_problems(
    doc: Mapping[str, Any], services: Sequence[Mapping[str, Any]]
) -> Problems:
    """Minimal structure of a monitoring.coreos.com/v1 ServiceMonitor (a CRD, no schema here)."""
    problems: Problems = []
    name = doc.get("metadata", {}).get("name")
    if doc.get("apiVersion") != "monitoring.coreos.com/v1" or not name:
        return [f"ServiceMonitor: apiVersion/metadata.name wrong in {doc.get('metadata')}"]
    spec = doc.get("spec") or {}
    unknown = set(spec) - {
        "selector",
        "endpoints",
        "namespaceSelector",
        "jobLabel",
        "targetLabels",
        "podTargetLabels",
        "sampleLimit",
    }
    if unknown:
        problems.append(f"ServiceMonitor {name}: unknown spec fields {sorted(unknown)}")
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    selected = [
        s
        for s in services
        if wanted and wanted.items() <= (s["metadata"].get("labels") or {}).items()
    ]
    if not selected:
        problems.append(f"ServiceMonitor {name}: selector {wanted} matches no Service")
    port_names = {p.get("name") for s in selected for p in s["spec"].get("ports", [])}
    endpoint_fields = {
        "port",
        "targetPort",
        "path",
        "interval",
        "scrapeTimeout",
        "scheme",
        "honorLabels",
        "relabelings",
        "metricRelabelings",
        "params",
        "tlsConfig",
    }
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        problems.append(f"ServiceMonitor {name}: no endpoints")
    for endpoint in endpoints:
        if set(endpoint) - endpoint_fields:
            problems.append(
                f"ServiceMonitor {name}: unknown fields {set(endpoint) - endpoint_fields}"
            )
        if endpoint.get("port") not in port_names:
            problems.append(f"ServiceMonitor {name}: port {endpoint.get('port')} not on a Service")
        if not str(endpoint.get("path", "/metrics")).startswith("/"):
            problems.append(f"ServiceMonitor {name}: path must start with /")
        for key in ("interval", "scrapeTimeout"):
            if key in endpoint and not re.fullmatch(r"(\d+(ms|s|m|h))+", str(endpoint[key])):
                problems.append(f"ServiceMonitor {name}: {key} {endpoint[key]} is no duration")
    return problems


def kubernetes_schema_problems(docs: list[tuple[str, dict[str, Any]]], version: str) -> Problems:
    problems: Problems = []
    services = [d for _, d in docs if d.get("kind") == "Service"]
    for file, doc in docs:
        where = f"{file} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            if doc.get("kind") == "ServiceMonitor":
                problems += servicemonitor_problems(doc, services)
            else:
                problems.append(f"{where}: no schema for this kind in Kubernetes {version}")
    return problems


def find(docs: list[tuple[str, dict[str, Any]]], kind: str, name: str) -> dict[str, Any] | None:
    for _, doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return doc
    return None


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def container_environ(
    container: Mapping[str, Any], docs: list[tuple[str, dict[str, Any]]]
) -> tuple[dict[str, str], Problems]:
    """The container's environment, with ConfigMap and Secret references resolved."""
    env: dict[str, str] = {}
    problems: Problems = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            ref = find(docs, "ConfigMap", source["configMapRef"]["name"])
            values = (ref or {}).get("data") or {}
        else:
            ref = find(docs, "Secret", source["secretRef"]["name"])
            values = secret_data(ref or {})
        if ref is None:
            problems.append(f"container {container['name']}: envFrom {source} not found")
        env.update({source.get("prefix", "") + k: str(v) for k, v in values.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref_spec = item.get("valueFrom", {})
        if "configMapKeyRef" in ref_spec:
            key_ref = ref_spec["configMapKeyRef"]
            values = ((find(docs, "ConfigMap", key_ref["name"]) or {}).get("data")) or {}
        elif "secretKeyRef" in ref_spec:
            key_ref = ref_spec["secretKeyRef"]
            values = secret_data(find(docs, "Secret", key_ref["name"]) or {})
        else:
            env[item["name"]] = ""  # fieldRef / resourceFieldRef: known only at run time
            continue
        if key_ref["key"] not in values:
            problems.append(f"env {item['name']}: {key_ref['name']}/{key_ref['key']} not found")
        env[item["name"]] = str(values.get(key_ref["key"], ""))
    return env, problems


def container_config_text(
    container: Mapping[str, Any], pod: Mapping[str, Any], docs: list[tuple[str, dict[str, Any]]]
) -> tuple[str | None, Problems]:
    """The config file passed with --config, read from the ConfigMap mounted there."""
    args = [*container.get("command", []), *container.get("args", [])]
    if "--config" not in args:
        return None, []
    path = args[args.index("--config") + 1]
    for mount in container.get("volumeMounts", []):
        if not path.startswith(mount["mountPath"].rstrip("/") + "/"):
            continue
        volume = next(v for v in pod.get("volumes", []) if v["name"] == mount["name"])
        if "configMap" not in volume:
            break
        file_name = path.removeprefix(mount["mountPath"].rstrip("/") + "/")
        items = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])}
        key = items.get(file_name, file_name if not items else None)
        data = ((find(docs, "ConfigMap", volume["configMap"]["name"]) or {}).get("data")) or {}
        if key in data:
            return str(data[key]), []
        break
    return None, [f"container {container['name']}: --config {path} is not a mounted ConfigMap"]


def k8s_setting_problems(docs: list[tuple[str, dict[str, Any]]]) -> Problems:
    """Every STREAMPROC_* name in ConfigMaps and containers is real; each worker validates."""
    problems: Problems = []
    known = env_names()
    for file, doc in docs:
        if doc.get("kind") in {"ConfigMap", "Secret"}:
            keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
            for key in sorted(k for k in keys if k.startswith(ENV_PREFIX) and k not in known):
                problems.append(f"{file} {doc['metadata']['name']}: unknown setting {key}")
        for container in pod_containers(doc):
            if not str(container.get("image", "")).startswith(STREAMPROC_IMAGE):
                continue
            env, env_problems = container_environ(container, docs)
            config_text, config_problems = container_config_text(
                container, doc["spec"]["template"]["spec"], docs
            )
            problems += env_problems + config_problems
            problems += setting_problems(env, f"{file} container {container['name']}", config_text)
    return problems


def probe_path(probe: Mapping[str, Any] | None) -> str | None:
    return ((probe or {}).get("httpGet") or {}).get("path")


def k8s_worker_problems(docs: list[tuple[str, dict[str, Any]]]) -> Problems:
    """The worker Deployment is locked down, probed and consistent with its settings."""
    deployment = find(docs, "Deployment", "streamproc-worker")
    if deployment is None:
        return ["no Deployment streamproc-worker"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    problems: Problems = []
    if pod.get("enableServiceLinks") is not False:
        problems.append("pod: enableServiceLinks must be false (injects STREAMPROC_*_SERVICE_*)")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append("pod: runAsNonRoot is not set")
    security = container.get("securityContext", {})
    if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation"):
        problems.append("worker: needs readOnlyRootFilesystem and no privilege escalation")
    if probe_path(container.get("livenessProbe")) != "/healthz":
        problems.append("worker: liveness probe is not /healthz")
    if probe_path(container.get("readinessProbe")) != "/readyz":
        problems.append("worker: readiness probe is not /readyz")
    resources = container.get("resources", {})
    if not resources.get("requests") or not resources.get("limits", {}).get("memory"):
        problems.append("worker: resources need requests and a memory limit")

    env, _ = container_environ(container, docs)
    config_text, _ = container_config_text(container, pod, docs)
    try:
        settings = effective_settings(env, config_text)
    except ConfigError as exc:
        return [*problems, f"worker settings: {exc}"]
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if ports.get("metrics") != settings.metrics.port:
        problems.append(f"worker: port 'metrics' {ports.get('metrics')} != {settings.metrics.port}")
    # A surge pod beyond the partition count gets none, never turns ready, and stalls the rollout.
    replicas = int(deployment["spec"].get("replicas", 1))
    surge = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    if str(surge).endswith("%"):
        surge = -(-replicas * int(str(surge)[:-1]) // 100)  # Kubernetes rounds a surge up
    if replicas + int(surge) > settings.topics.partitions:
        problems.append("worker: more replicas (plus maxSurge) than partitions")
    if pod.get("terminationGracePeriodSeconds", 30) <= settings.worker.shutdown_timeout_seconds:
        problems.append("pod: terminationGracePeriodSeconds must exceed the shutdown timeout")
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    writable = {
        m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs
    }
    if str(settings.worker.data_dir) not in writable:
        problems.append(f"worker: data dir {settings.worker.data_dir} is not an emptyDir mount")

    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        for _, doc in docs:
            if doc.get("kind") != kind:
                continue
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector) if kind != "Service" else selector
            if not selector or not selector.items() <= pod_labels.items():
                problems.append(f"{kind} {doc['metadata']['name']}: selector misses the pods")
            for port in doc["spec"].get("ports", []):
                if port.get("targetPort") not in {*ports, *ports.values()}:
                    problems.append(f"Service port {port} targets no container port")
    return problems


def kustomization_problems(k8s_dir: Path) -> Problems:
    kustomization = load_yaml(k8s_dir / "kustomization.yaml")
    resources = set(kustomization.get("resources", []))
    problems = [
        f"kustomization: {r} does not exist" for r in resources if not (k8s_dir / r).exists()
    ]
    manifests = {p.name for p in k8s_dir.glob("*.yaml")} - K8S_NOT_APPLIED
    problems += [f"kustomization: {m} is not listed" for m in sorted(manifests - resources)]
    if resources & K8S_NOT_APPLIED:
        problems.append(f"kustomization: must not apply {resources & K8S_NOT_APPLIED}")
    if not kustomization.get("namespace"):
        problems.append("kustomization: no namespace")
    return problems


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


@pytest.fixture(scope="module")
def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    return k8s_documents(K8S)


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


# --- the real files ------------------------------------------------------------------------


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_schema_problems(compose) == []


def test_compose_settings_are_real_and_valid(compose: dict[str, Any]) -> None:
    assert compose_setting_problems(compose, image_env()) == []


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    assert image_problems(compose_images(compose)) == []


def test_compose_services_are_health_checked(compose: dict[str, Any]) -> None:
    has_check = any(
        kw == "HEALTHCHECK" for kw, _ in dockerfile_instructions(DOCKERFILE.read_text())
    )
    assert compose_health_problems(compose, image_has_healthcheck=has_check) == []


def test_compose_mounts_exist(compose: dict[str, Any]) -> None:
    # deploy/prometheus and deploy/grafana are mounted: this fails until they exist.
    assert compose_mount_problems(compose, ROOT) == []


def test_compose_pieces_agree(compose: dict[str, Any]) -> None:
    assert compose_consistency_problems(compose, image_env()) == []


def test_compose_monitoring_config_points_at_compose_services(compose: dict[str, Any]) -> None:
    port = effective_settings(service_environ(compose["services"]["worker"], image_env()))
    assert (
        grafana_problems(compose, ROOT) + prometheus_problems(compose, ROOT, port.metrics.port)
        == []
    )


def test_topic_script_is_valid_bash() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    subprocess.run([bash, "-n", str(TOPICS_SCRIPT)], check=True)


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


def test_k8s_manifests_match_kubernetes_schemas(k8s_docs: list[tuple[str, dict[str, Any]]]) -> None:
    kinds = sorted(d["kind"] for _, d in k8s_docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "Namespace",
            "PodDisruptionBudget",
            "Secret",
            "Service",
            "ServiceMonitor",
        ]
    )
    assert kubernetes_schema_problems(k8s_docs, KUBERNETES_VERSION) == []


def test_k8s_settings_are_real_and_valid(k8s_docs: list[tuple[str, dict[str, Any]]]) -> None:
    assert k8s_setting_problems(k8s_docs) == []


def test_k8s_worker_is_locked_down_and_consistent(
    k8s_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    assert k8s_worker_problems(k8s_docs) == []


def test_k8s_images_are_pinned(k8s_docs: list[tuple[str, dict[str, Any]]]) -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert image_problems(k8s_images(k8s_docs, kustomization)) == []


def test_kustomization_applies_every_manifest_but_the_example_secret() -> None:
    assert kustomization_problems(K8S) == []


def test_example_secret_holds_only_placeholders(
    k8s_docs: list[tuple[str, dict[str, Any]]],
) -> None:
    secret = find(k8s_docs, "Secret", "streamproc-kafka-sasl")
    assert secret is not None
    assert all(v.startswith("CHANGE-ME") for v in secret_data(secret).values())


# --- broken copies: the checks above can fail --------------------------------------------


def compose_problems(compose_path: Path) -> Problems:
    """Every compose check, as the real-file tests run them one by one."""
    compose = load_yaml(compose_path)
    base_env = image_env()
    has_check = any(
        kw == "HEALTHCHECK" for kw, _ in dockerfile_instructions(DOCKERFILE.read_text())
    )
    problems = (
        compose_schema_problems(compose)
        + compose_setting_problems(compose, base_env)
        + image_problems(compose_images(compose))
        + compose_health_problems(compose, image_has_healthcheck=has_check)
        + compose_mount_problems(compose, ROOT)
    )
    if problems:  # the rest needs settings that load
        return problems
    worker_env = service_environ(compose["services"]["worker"], base_env)
    port = effective_settings(worker_env).metrics.port
    return (
        compose_consistency_problems(compose, base_env)
        + grafana_problems(compose, ROOT)
        + prometheus_problems(compose, ROOT, port)
    )


MISSPELLED = re.compile(r"unknown setting STREAMPROC_KAFKA_BOOTSTRAP_SERVER\b")


def test_misspelled_setting_in_compose_is_reported(tmp_path: Path) -> None:
    broken = copy_with(
        tmp_path,
        COMPOSE,
        "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS:",
        "STREAMPROC_KAFKA_BOOTSTRAP_SERVER:",
    )
    problems = compose_setting_problems(load_yaml(broken), image_env())
    assert any(MISSPELLED.search(p) for p in problems), problems


def test_misspelled_setting_in_k8s_is_reported(tmp_path: Path) -> None:
    broken = copy_with(
        tmp_path, K8S, "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS:", "STREAMPROC_KAFKA_BOOTSTRAP_SERVER:"
    )
    problems = k8s_setting_problems(k8s_documents(broken))
    # Once as a ConfigMap key, once in the environment of the container that reads it.
    assert any(MISSPELLED.search(p) and "configmap.yaml" in p for p in problems), problems
    assert any(MISSPELLED.search(p) and "container worker" in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'STREAMPROC_TOPICS_PARTITIONS: "8"',
            'STREAMPROC_TOPICS_PARTITIONS: "0"',
            "STREAMPROC_TOPICS_PARTITIONS",
        ),
        ('STREAMPROC_LOG_LEVEL: "INFO"', 'STREAMPROC_LOG_LEVEL: "LOUD"', "STREAMPROC_LOG_LEVEL"),
        ("condition: service_healthy", "condition: healthy", "compose schema"),
        ("stop_grace_period:", "stop_grace:", "compose schema"),
        ("image: prom/prometheus:v3.5.0", "image: prom/prometheus:latest", "not pinned"),
        ("image: grafana/grafana:12.1.1", "image: grafana/grafana:12", "not pinned"),
        ("    healthcheck:\n      disable: true\n", "", "serves no /healthz"),
        ("replicas: 2", "replicas: 12", "worker replicas 12"),
        ('KAFKA_NUM_PARTITIONS: "8"', 'KAFKA_NUM_PARTITIONS: "4"', "KAFKA_NUM_PARTITIONS"),
        ("image: apache/kafka:4.1.2", "image: apache/kafka:4.1.1", "pom.xml"),
        ('restart: "no"', "restart: unless-stopped", "waits for kafka-init to complete"),
        ("./deploy/docker/create-topics.sh", "./deploy/docker/create_topics.sh", "does not exist"),
        (
            "./deploy/docker/grafana-datasources.yml:",
            "./deploy/grafana/provisioning/datasources/prometheus.yml:",
            "on localhost, not a service",
        ),
        (
            "./deploy/docker/prometheus.yml:",
            "./deploy/prometheus/prometheus.yml:",
            "target localhost:9108 is not a service",
        ),
        (
            "/var/lib/grafana/dashboards/streamproc:ro",
            "/var/lib/grafana/dashboards:ro",
            "holds no mounted dashboard",
        ),
        (
            "      - ./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro\n",
            "",
            "rule file /etc/prometheus/rules.yml is not mounted",
        ),
    ],
)
def test_broken_compose_is_reported(tmp_path: Path, old: str, new: str, expected: str) -> None:
    problems = compose_problems(copy_with(tmp_path, COMPOSE, old, new))
    assert any(expected in p for p in problems), problems


def _k8s_images(k8s_dir: Path) -> Problems:
    docs = k8s_documents(k8s_dir)
    return image_problems(k8s_images(docs, load_yaml(k8s_dir / "kustomization.yaml")))


def _k8s_schema(k8s_dir: Path) -> Problems:
    return kubernetes_schema_problems(k8s_documents(k8s_dir), KUBERNETES_VERSION)


def _k8s_settings(k8s_dir: Path) -> Problems:
    return k8s_setting_problems(k8s_documents(k8s_dir))


def _k8s_worker(k8s_dir: Path) -> Problems:
    return k8s_worker_problems(k8s_documents(k8s_dir))


@pytest.mark.parametrize(
    ("old", "new", "check", "expected"),
    [
        (
            "name: STREAMPROC_KAFKA_SASL_PASSWORD",
            "name: STREAMPROC_KAFKA_SASL_PASSWD",
            _k8s_settings,
            "unknown setting STREAMPROC_KAFKA_SASL_PASSWD",
        ),
        (
            "      replication_factor: 3",
            "      replication: 3",
            _k8s_settings,
            "topics.replication",
        ),
        (
            'STREAMPROC_KAFKA_SECURITY_PROTOCOL: "SASL_SSL"',
            'STREAMPROC_KAFKA_SECURITY_PROTOCOL: "SASL"',
            _k8s_settings,
            "STREAMPROC_KAFKA_SECURITY_PROTOCOL",
        ),
        ("key: password", "key: passwd", _k8s_settings, "streamproc-kafka-sasl/passwd not found"),
        ("readinessProbe:", "readinesProbe:", _k8s_schema, "readinesProbe"),
        ("maxUnavailable: 1", "maxUnavaliable: 1", _k8s_schema, "maxUnavaliable"),
        ("- port: metrics", "- port: http", _k8s_schema, "port http not on a Service"),
        (
            "enableServiceLinks: false",
            "enableServiceLinks: true",
            _k8s_worker,
            "enableServiceLinks",
        ),
        (
            "readOnlyRootFilesystem: true",
            "readOnlyRootFilesystem: false",
            _k8s_worker,
            "readOnlyRootFilesystem",
        ),
        ("path: /readyz", "path: /healthz", _k8s_worker, "readiness probe"),
        ("  replicas: 2", "  replicas: 12", _k8s_worker, "more replicas (plus maxSurge)"),
        ("containerPort: 9108", "containerPort: 9109", _k8s_worker, "port 'metrics' 9109"),
        (
            "terminationGracePeriodSeconds: 45",
            "terminationGracePeriodSeconds: 20",
            _k8s_worker,
            "terminationGracePeriodSeconds",
        ),
        (
            'STREAMPROC_WORKER_DATA_DIR: "/var/lib/streamproc/data"',
            'STREAMPROC_WORKER_DATA_DIR: "/var/lib/streamproc/cache"',
            _k8s_worker,
            "not an emptyDir mount",
        ),
        (
            "    app.kubernetes.io/component: worker\n  ports:",
            "    app.kubernetes.io/component: metrics\n  ports:",
            _k8s_worker,
            "Service streamproc-worker: selector misses the pods",
        ),
        ("image: streamproc:0.1.0", "image: streamproc:latest", _k8s_images, "not pinned"),
        ("newTag: 0.1.0", "newTag: main", _k8s_images, "not pinned"),
        ("  - pdb.yaml\n", "", kustomization_problems, "pdb.yaml is not listed"),
    ],
)
def test_broken_k8s_is_reported(
    tmp_path: Path, old: str, new: str, check: Any, expected: str
) -> None:
    problems = check(copy_with(tmp_path, K8S, old, new))
    assert any(expected in p for p in problems), problems


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
