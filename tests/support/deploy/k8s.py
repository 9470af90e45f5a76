"""The Kubernetes manifests in deploy/k8s: schemas, settings, images, the worker's
lock-down and the kustomization."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate

from streamproc.errors import ConfigError
from streamproc.settings import ENV_PREFIX, env_names
from tests.support.deploy.files import (
    K8S_NOT_APPLIED,
    STREAMPROC_IMAGE,
    Problems,
    effective_settings,
    load_yaml,
    setting_problems,
)


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
