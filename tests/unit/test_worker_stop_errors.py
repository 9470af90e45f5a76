"""The final checkpoint's failures are logged by kind: Kafka's translated, bugs with a traceback."""

from __future__ import annotations

import logging

import pytest
from aiokafka import errors as ak
from prometheus_client import CollectorRegistry

from streamproc.settings import load_settings
from streamproc.worker import WorkerRuntime


def _runtime(failure: BaseException, monkeypatch: pytest.MonkeyPatch) -> WorkerRuntime:
    settings = load_settings(environ={"STREAMPROC_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    runtime = WorkerRuntime(settings, CollectorRegistry())

    async def fail() -> int:
        raise failure

    monkeypatch.setattr(runtime.app, "stop_processing", fail)
    return runtime


async def test_a_kafka_failure_is_logged_translated_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _runtime(ak.KafkaConnectionError("Connection at 127.0.0.1:1 closed"), monkeypatch)
    with caplog.at_level(logging.WARNING, logger="streamproc.worker"):
        await runtime.graceful_stop()
    [record] = caplog.records
    assert "kafka.bootstrap_servers=127.0.0.1:1" in record.getMessage()
    assert record.exc_info is None


async def test_a_bug_is_logged_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _runtime(ValueError("bug"), monkeypatch)
    with caplog.at_level(logging.WARNING, logger="streamproc.worker"):
        await runtime.graceful_stop()
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
