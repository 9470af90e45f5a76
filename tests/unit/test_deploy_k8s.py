"""Kubernetes manifest checks (tests/support/deploy), on deploy/k8s and on broken copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy.files import (
    K8S,
    Problems,
    copy_with,
    image_problems,
    k8s_documents,
    load_yaml,
)
from tests.support.deploy.k8s import (
    find,
    k8s_images,
    k8s_setting_problems,
    k8s_worker_problems,
    kubernetes_schema_problems,
    kustomization_problems,
    secret_data,
)
from tests.unit.test_deploy_compose import MISSPELLED

KUBERNETES_VERSION = "1.31"


@pytest.fixture(scope="module")
def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    return k8s_documents(K8S)


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


def test_misspelled_setting_in_k8s_is_reported(tmp_path: Path) -> None:
    broken = copy_with(
        tmp_path, K8S, "STREAMPROC_KAFKA_BOOTSTRAP_SERVERS:", "STREAMPROC_KAFKA_BOOTSTRAP_SERVER:"
    )
    problems = k8s_setting_problems(k8s_documents(broken))
    # Once as a ConfigMap key, once in the environment of the container that reads it.
    assert any(MISSPELLED.search(p) and "configmap.yaml" in p for p in problems), problems
    assert any(MISSPELLED.search(p) and "container worker" in p for p in problems), problems


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
