"""Static checks of how the alert router and Alertmanager are deployed (compose, Kubernetes).

Reuses the helpers of tests/unit/test_deploy.py (loading, settings resolution,
schemas) and adds the router's own rules. As there, every check is a function
returning problems, run on the real files and on broken copies.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from streamproc.errors import ConfigError
from tests.support.deploy.compose import bind_mounts, service_environ, url_host
from tests.support.deploy.dockerfile import image_env
from tests.support.deploy.files import (
    COMPOSE,
    K8S,
    KUBERNETES_VERSION,
    ROOT,
    Problems,
    copy_with,
    effective_settings,
    image_problems,
    k8s_documents,
    load_yaml,
)
from tests.support.deploy.k8s import (
    container_config_text,
    container_environ,
    find,
    k8s_images,
    k8s_setting_problems,
    kubernetes_schema_problems,
    kustomization_problems,
    probe_path,
    secret_data,
)

ROUTER_K8S = K8S / "router"
Docs = list[tuple[str, dict[str, Any]]]


def all_k8s_docs(k8s_dir: Path) -> Docs:
    """The workers' manifests and the router's: the router uses the workers' ConfigMaps."""
    return k8s_documents(k8s_dir) + k8s_documents(k8s_dir / "router")


def router_k8s_problems(docs: Docs) -> Problems:
    """The router Deployment is locked down, probed, has a sink, and is nobody else's pod."""
    deployment = find(docs, "Deployment", "streamproc-router")
    if deployment is None:
        return ["no Deployment streamproc-router"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    problems: Problems = []
    if container.get("args", [None])[0] != "route":
        problems.append("router: does not run `streamproc route`")
    if pod.get("enableServiceLinks") is not False:
        problems.append("router pod: enableServiceLinks must be false")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append("router pod: runAsNonRoot is not set")
    security = container.get("securityContext", {})
    if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation"):
        problems.append("router: needs readOnlyRootFilesystem and no privilege escalation")
    if probe_path(container.get("livenessProbe")) != "/healthz":
        problems.append("router: liveness probe is not /healthz")
    if probe_path(container.get("readinessProbe")) != "/readyz":
        problems.append("router: readiness probe is not /readyz")
    if int(deployment["spec"].get("replicas", 1)) != 1:
        problems.append("router: run one replica (order per model, one delivery memory)")
    env, _ = container_environ(container, docs)
    config_text, _ = container_config_text(container, pod, docs)
    try:
        settings = effective_settings(env, config_text)
    except ConfigError as exc:
        return [*problems, f"router settings: {exc}"]
    if not settings.route.sinks:
        problems.append("router: no sink configured (route.alertmanager_urls or webhook_url)")
    if settings.route.group_id == settings.kafka.group_id:
        problems.append("router: route.group_id must differ from the workers' kafka.group_id")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if ports.get("metrics") != settings.metrics.port:
        problems.append(f"router: port 'metrics' {ports.get('metrics')} != {settings.metrics.port}")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for _, doc in docs:
        if doc.get("kind") in {"Service", "PodDisruptionBudget"}:
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            if selector.items() <= pod_labels.items():
                problems.append(f"{doc['kind']} {doc['metadata']['name']} selects router pods")
    return problems


def compose_router_problems(compose: dict[str, Any], project_dir: Path) -> Problems:
    """The router runs `route`, reaches the compose Alertmanager, which mounts its config."""
    services = compose["services"]
    router, alertmanager = services.get("router"), services.get("alertmanager")
    if router is None or alertmanager is None:
        return ["compose: needs services router and alertmanager"]
    problems: Problems = []
    command = router.get("command", [])
    words = shlex.split(command) if isinstance(command, str) else command
    if words[:1] != ["route"]:
        problems.append("router: does not run `streamproc route`")
    try:
        settings = effective_settings(service_environ(router, image_env()))
    except ConfigError as exc:
        return [*problems, f"router settings: {exc}"]
    hosts = {url_host(url) for url in settings.route.alertmanager_url_list}
    if hosts != {"alertmanager"}:
        problems.append(f"router: route.alertmanager_urls reach {sorted(hosts)}, not alertmanager")
    if str(settings.metrics.port) not in [str(p) for p in router.get("expose", [])]:
        problems.append(f"router: metrics port {settings.metrics.port} is not exposed")
    if "alertmanager" not in (router.get("depends_on") or {}):
        problems.append("router: does not wait for alertmanager")
    args = [str(a) for a in alertmanager.get("command", [])]
    config = next((a.split("=", 1)[1] for a in args if a.startswith("--config.file=")), None)
    mounted = dict((target, source) for source, target in bind_mounts(alertmanager))
    source = mounted.get(config or "")
    if source is None or not (project_dir / source).is_file():
        problems.append(f"alertmanager: --config.file {config} is not a mounted file")
    elif (project_dir / source).resolve() != (ROOT / "deploy/alertmanager/alertmanager.yml"):
        problems.append(f"alertmanager: mounts {source}, not deploy/alertmanager/alertmanager.yml")
    return problems


# --- the real files ------------------------------------------------------------------------


def test_router_manifests_match_kubernetes_schemas() -> None:
    docs = k8s_documents(ROUTER_K8S)
    assert sorted(d["kind"] for _, d in docs) == ["ConfigMap", "Deployment", "Secret"]
    assert kubernetes_schema_problems(docs, KUBERNETES_VERSION) == []


def test_router_settings_are_real_and_valid() -> None:
    assert k8s_setting_problems(all_k8s_docs(K8S)) == []


def test_router_deployment_is_locked_down_and_consistent() -> None:
    assert router_k8s_problems(all_k8s_docs(K8S)) == []


def test_router_kustomization_is_applied_by_the_top_level_one() -> None:
    assert "router" in load_yaml(K8S / "kustomization.yaml")["resources"]
    assert kustomization_problems(ROUTER_K8S) == []


def test_router_image_is_pinned() -> None:
    docs = k8s_documents(ROUTER_K8S)
    assert image_problems(k8s_images(docs, load_yaml(K8S / "kustomization.yaml"))) == []


def test_router_example_secret_holds_only_placeholders() -> None:
    secret = find(k8s_documents(ROUTER_K8S), "Secret", "streamproc-route")
    assert secret is not None
    assert all(v.startswith("CHANGE-ME") for v in secret_data(secret).values())


def test_compose_router_reaches_the_compose_alertmanager() -> None:
    assert compose_router_problems(load_yaml(COMPOSE), ROOT) == []


# --- broken copies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("STREAMPROC_ROUTE_GROUP_DELAY_SECONDS", "STREAMPROC_ROUTE_GROUP_DELAY", "unknown setting"),
        ('"streamproc-route"', '"streamproc"', "must differ"),
        ("replicas: 1", "replicas: 2", "one replica"),
        ("path: /readyz", "path: /healthz", "readiness probe"),
        (
            "  STREAMPROC_ROUTE_ALERTMANAGER_URLS:",
            "  # STREAMPROC_ROUTE_ALERTMANAGER_URLS:",
            "no sink configured",
        ),
    ],
)
def test_broken_router_k8s_is_reported(tmp_path: Path, old: str, new: str, expected: str) -> None:
    k8s_dir = copy_with(tmp_path, K8S, old, new)
    docs = all_k8s_docs(k8s_dir)
    problems = k8s_setting_problems(docs) + router_k8s_problems(docs)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"http://alertmanager:9093"', '"http://localhost:9093"', "not alertmanager"),
        (
            "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml",
            "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/other.yml",
            "not a mounted file",
        ),
        ('command: ["route"]', 'command: ["alerts"]', "does not run"),
    ],
)
def test_broken_compose_router_is_reported(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    compose = load_yaml(copy_with(tmp_path, COMPOSE, old, new))
    problems = compose_router_problems(compose, ROOT)
    assert any(expected in p for p in problems), problems
