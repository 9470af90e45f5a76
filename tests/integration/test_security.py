"""SASL_SSL (SCRAM-SHA-512) and mutual TLS against a real broker that enforces them.

The worker, ``streamproc alerts`` and ``streamproc demo`` run as operators run
them, with only the documented ``STREAMPROC_KAFKA_*`` settings. A wrong password,
an untrusted CA or a missing client certificate must end each command within
:data:`FAIL_FAST_SECONDS` (no retry loop) with exit code 2 and a message naming
the setting, and no password may appear in anything they print.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streamproc.commands import alerts as alerts_command
from streamproc.dev.processes import child_env, streamproc_command
from streamproc.errors import BrokerError, KafkaSetupError
from streamproc.settings import load_settings
from tests.integration.secure_kafka import SecureKafka, secure_broker
from tests.integration.workers import (
    Cluster,
    WorkerProcess,
    produce_events,
    spread_events,
    wait_for_processed,
)

FAIL_FAST_SECONDS = 60.0
"""Bound on a command that must refuse to start; Faust's own retries would never end."""
COMMAND_SECONDS = 120.0
COMMANDS = {
    "worker": ["worker"],
    "alerts": ["alerts"],
    "demo": ["demo", "--duration", "2", "--rate", "20"],
}


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """A second broker with SASL_SSL and mTLS listeners; fails (never skips) if it cannot run."""
    setup = secure_broker(tmp_path_factory.mktemp("pki"))
    error: BrokerError | None = None
    try:
        setup.broker.start()
    except BrokerError as exc:
        error = exc
    if error is not None:
        pytest.fail(f"the secured Kafka broker did not start: {error}", pytrace=False)
    try:
        yield setup
    finally:
        setup.broker.stop()


@pytest.fixture
def cluster(secure: SecureKafka, tmp_path: Path) -> Iterator[Cluster]:
    """Per-test names on the secured broker; its plaintext listener feeds the tests' events."""
    c = Cluster(secure.broker, tmp_path)
    try:
        yield c
    finally:
        for worker in c.workers:
            worker.stop()


def run(
    cluster: Cluster, args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``streamproc ARGS`` with the test's topics and ``env`` as its only settings."""
    return subprocess.run(
        streamproc_command(*args),
        env=child_env(cluster.env(**env)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_no_secret(secure: SecureKafka, *outputs: str) -> None:
    for text in outputs:
        for secret in secure.secrets:
            assert secret not in text


async def worker_processes_events(cluster: Cluster, worker: WorkerProcess, models: int) -> None:
    """Drifting events in through the plaintext listener, counted by the secured worker."""
    events = spread_events(models=models, per_model=600)
    await produce_events(cluster.kafka, cluster.settings(), events)
    await wait_for_processed(worker, len(events))


def alerts_json(
    cluster: Cluster, env: dict[str, str], want: int
) -> subprocess.CompletedProcess[str]:
    """``streamproc alerts --json`` until it shows ``want`` alerts (the worker publishes them
    just after counting the events)."""
    for _ in range(30):
        done = run(cluster, ["alerts", "--json"], env, COMMAND_SECONDS)
        assert done.returncode == 0, done.stderr
        if len(done.stdout.splitlines()) >= want:
            return done
    raise AssertionError(f"fewer than {want} alerts: {done.stdout}\n{done.stderr}")


async def test_worker_demo_and_alerts_work_over_sasl_ssl(
    secure: SecureKafka, cluster: Cluster
) -> None:
    env = secure.sasl_env()
    worker = cluster.start_worker(**env)
    demo = run(cluster, COMMANDS["demo"], env, COMMAND_SECONDS)
    assert demo.returncode == 0, demo.stderr
    assert "demo: stopped" in demo.stderr
    await worker_processes_events(cluster, worker, models=4)
    shown = alerts_json(cluster, env, want=4)
    models = {orjson.loads(line)["stream"]["model"] for line in shown.stdout.splitlines()}
    assert {f"model-{m}" for m in range(4)} <= models
    assert worker.stop() == 0
    assert "Authenticated as streamproc via SCRAM-SHA-512" in worker.output()
    assert_no_secret(secure, worker.output(), demo.stdout, demo.stderr, shown.stdout, shown.stderr)


async def test_worker_demo_and_alerts_work_over_mutual_tls(
    secure: SecureKafka, cluster: Cluster
) -> None:
    env = secure.mtls_env()
    worker = cluster.start_worker(**env)
    demo = run(cluster, COMMANDS["demo"], env, COMMAND_SECONDS)
    assert demo.returncode == 0, demo.stderr
    await worker_processes_events(cluster, worker, models=2)
    shown = alerts_json(cluster, env, want=2)
    assert worker.stop() == 0
    assert_no_secret(secure, worker.output(), demo.stdout, demo.stderr, shown.stdout, shown.stderr)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_wrong_password_stops_the_command_naming_the_setting(
    secure: SecureKafka, cluster: Cluster, command: str
) -> None:
    wrong = "wrong-" + secure.password[::-1]
    env = secure.sasl_env(STREAMPROC_KAFKA_SASL_PASSWORD=wrong)
    done = run(cluster, COMMANDS[command], env, FAIL_FAST_SECONDS)
    assert done.returncode == 2, done.stderr
    assert "kafka.sasl_password (STREAMPROC_KAFKA_SASL_PASSWORD)" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secret(secure, done.stdout, done.stderr)
    assert wrong not in done.stdout + done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_an_untrusted_ca_stops_the_command_naming_the_setting(
    secure: SecureKafka, cluster: Cluster, command: str
) -> None:
    env = secure.sasl_env(STREAMPROC_KAFKA_SSL_CAFILE=str(secure.pki.rogue_ca))
    done = run(cluster, COMMANDS[command], env, FAIL_FAST_SECONDS)
    assert done.returncode == 2, done.stderr
    assert "kafka.ssl_cafile (STREAMPROC_KAFKA_SSL_CAFILE)" in done.stderr
    assert "is not trusted" in done.stderr
    assert "Traceback" not in done.stderr
    assert_no_secret(secure, done.stdout, done.stderr)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_client_certificate_stops_the_command_naming_the_setting(
    secure: SecureKafka, cluster: Cluster, command: str
) -> None:
    env = secure.mtls_env()
    for name in ("CERTFILE", "KEYFILE", "PASSWORD"):
        del env[f"STREAMPROC_KAFKA_SSL_{name}"]
    done = run(cluster, COMMANDS[command], env, FAIL_FAST_SECONDS)
    assert done.returncode == 2, done.stderr
    assert "refused the client certificate" in done.stderr
    assert "kafka.ssl_certfile" in done.stderr
    assert "Traceback" not in done.stderr


async def test_alerts_of_a_missing_topic_is_a_setup_error_not_a_config_error(
    secure: SecureKafka, cluster: Cluster
) -> None:
    settings = load_settings(environ=cluster.env(**secure.sasl_env()))
    with pytest.raises(KafkaSetupError, match=r"topics\.alerts"):
        await alerts_command._read(settings, follow=False, as_json=True)
