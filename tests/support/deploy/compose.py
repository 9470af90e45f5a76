"""docker-compose.yml: schema, settings, images, health checks, mounts, and the monitoring
configuration it mounts."""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema

from streamproc.settings import ENV_PREFIX
from tests.support.deploy.files import (
    HTTP_SUBCOMMANDS,
    KAFKA_POM,
    STREAMPROC_IMAGE,
    Problems,
    effective_settings,
    load_yaml,
    setting_problems,
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


def compose_images(compose: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    for name, service in compose.get("services", {}).items():
        out.append((f"compose service {name}", str(service.get("image", ""))))
    return out


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
