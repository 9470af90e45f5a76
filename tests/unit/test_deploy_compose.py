"""docker-compose.yml checks (tests/support/deploy), on the real file and on broken copies."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy.compose import (
    compose_consistency_problems,
    compose_health_problems,
    compose_images,
    compose_mount_problems,
    compose_schema_problems,
    compose_setting_problems,
    grafana_problems,
    prometheus_problems,
    service_environ,
)
from tests.support.deploy.dockerfile import has_healthcheck, image_env
from tests.support.deploy.files import (
    COMPOSE,
    DOCKERFILE,
    ROOT,
    TOPICS_SCRIPT,
    Problems,
    copy_with,
    effective_settings,
    image_problems,
    load_yaml,
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_schema_problems(compose) == []


def test_compose_settings_are_real_and_valid(compose: dict[str, Any]) -> None:
    assert compose_setting_problems(compose, image_env()) == []


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    assert image_problems(compose_images(compose)) == []


def test_compose_services_are_health_checked(compose: dict[str, Any]) -> None:
    has_check = has_healthcheck(DOCKERFILE.read_text(encoding="utf-8"))
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


def compose_problems(compose_path: Path) -> Problems:
    """Every compose check, as the real-file tests run them one by one."""
    compose = load_yaml(compose_path)
    base_env = image_env()
    has_check = has_healthcheck(DOCKERFILE.read_text(encoding="utf-8"))
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
