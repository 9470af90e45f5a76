"""aiokafka's and ssl's errors become ours, naming the setting to fix and never a secret."""

from __future__ import annotations

import asyncio
import logging
import ssl

import pytest
from aiokafka import errors as ak
from pydantic import SecretStr

from streamproc import cli
from streamproc.dev.processes import free_ports
from streamproc.errors import (
    KafkaAuthError,
    KafkaConnectionError,
    KafkaSetupError,
    KafkaTLSError,
    StreamprocError,
)
from streamproc.kafka_errors import check_connection, translate, translated
from streamproc.settings import KafkaSettings

PASSWORD = "hunter2-very-secret"
KEY_PASSWORD = "key-pass-also-secret"


def _sasl() -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers="127.0.0.1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="alice",
        sasl_password=SecretStr(PASSWORD),
        ssl_password=SecretStr(KEY_PASSWORD),
    )


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


def _caused(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def test_a_refused_sasl_login_names_the_password_setting_but_not_the_password() -> None:
    exc = ak.SaslAuthenticationFailed("invalid credentials with SASL mechanism SCRAM-SHA-512")
    error = translate(exc, _sasl())
    assert isinstance(error, KafkaAuthError)
    assert "kafka.sasl_password" in str(error)
    assert "STREAMPROC_KAFKA_SASL_PASSWORD" in str(error)
    assert "'alice'" in str(error)
    assert PASSWORD not in str(error)


def test_an_unoffered_mechanism_names_the_mechanism_setting() -> None:
    error = translate(ak.UnsupportedSaslMechanismError("enabled: ['PLAIN']"), _sasl())
    assert isinstance(error, KafkaAuthError)
    assert "kafka.sasl_mechanism=SCRAM-SHA-512" in str(error)


def test_an_untrusted_broker_certificate_names_the_ca_setting() -> None:
    exc = _verify_error(19, "self-signed certificate in certificate chain")
    error = translate(exc, _sasl())
    assert isinstance(error, KafkaTLSError)
    assert "kafka.ssl_cafile" in str(error)
    assert "STREAMPROC_KAFKA_SSL_CAFILE" in str(error)
    assert "self-signed certificate in certificate chain" in str(error)


def test_a_certificate_for_another_host_names_the_bootstrap_servers() -> None:
    error = translate(_verify_error(62, "Hostname mismatch"), _sasl())
    assert isinstance(error, KafkaTLSError)
    assert "kafka.bootstrap_servers=127.0.0.1:9093" in str(error)


def test_a_refused_client_certificate_under_a_closed_connection_names_the_cert_settings() -> None:
    """As aiokafka reports it: the TLS alert arrives on the first read, as the cause."""
    alert = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")
    alert.reason = "SSLV3_ALERT_BAD_CERTIFICATE"
    exc = _caused(ak.KafkaConnectionError("Connection at 127.0.0.1:9093 closed"), alert)
    error = translate(exc, _sasl())
    assert isinstance(error, KafkaTLSError)
    assert "kafka.ssl_certfile" in str(error)
    assert "kafka.ssl_keyfile" in str(error)


def test_a_plaintext_port_under_tls_names_the_security_protocol() -> None:
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    exc.reason = "WRONG_VERSION_NUMBER"
    error = translate(exc, _sasl())
    assert isinstance(error, KafkaTLSError)
    assert "kafka.security_protocol=SASL_SSL" in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        ak.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9093)]"),
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
    ],
)
def test_an_unreachable_cluster_names_the_bootstrap_servers(exc: BaseException) -> None:
    error = translate(exc, _sasl())
    assert type(error) is KafkaConnectionError
    assert "kafka.bootstrap_servers=127.0.0.1:9093" in str(error)
    assert "kafka.security_protocol=SASL_SSL" in str(error)


def test_a_denied_operation_is_an_auth_error() -> None:
    error = translate(ak.TopicAuthorizationFailedError(), _sasl())
    assert isinstance(error, KafkaAuthError)
    assert "'alice'" in str(error)


def test_an_unexpected_kafka_error_is_translated_and_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unexpected = ak.CorruptRecordException("odd record")
    try:
        raise unexpected
    except ak.KafkaError as exc:
        with caplog.at_level(logging.ERROR, logger="streamproc.kafka_errors"):
            error = translate(exc, _sasl())
    assert type(error) is KafkaConnectionError
    assert "CorruptRecordException" in str(error)
    [record] = caplog.records
    assert record.exc_info is not None and record.exc_info[1] is unexpected
    assert "test_kafka_errors.py" in caplog.text  # the traceback, not just the message


def test_known_errors_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="streamproc.kafka_errors"):
        translate(ak.SaslAuthenticationFailed("no"), _sasl())
    assert caplog.records == []


def test_secrets_in_foreign_messages_are_masked() -> None:
    exc = ak.KafkaConnectionError(f"boom {PASSWORD} and {KEY_PASSWORD}")
    text = str(translate(exc, _sasl()))
    assert PASSWORD not in text
    assert KEY_PASSWORD not in text
    assert "**********" in text


def test_our_own_errors_pass_through_unchanged() -> None:
    ours = KafkaSetupError("topics differ")
    assert translate(ours, _sasl()) is ours


async def test_translated_raises_ours_from_the_foreign_error() -> None:
    cause = ak.SaslAuthenticationFailed("no")
    with pytest.raises(KafkaAuthError) as caught:
        async with translated(_sasl()):
            raise cause
    assert caught.value.__cause__ is cause


async def test_translated_leaves_bugs_alone() -> None:
    """A TypeError is a bug, not the environment: it keeps its own type and traceback."""
    with pytest.raises(TypeError):
        async with translated(_sasl()):
            raise TypeError("bug")


async def test_check_connection_to_a_closed_port_fails_at_once_naming_the_servers() -> None:
    [port] = free_ports(1)
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    async with asyncio.timeout(10):
        with pytest.raises(KafkaConnectionError) as caught:
            await check_connection(settings)
    assert f"kafka.bootstrap_servers=127.0.0.1:{port}" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError | ak.KafkaError)


def test_every_kafka_error_of_ours_is_a_streamproc_error() -> None:
    """So the CLI prints the message (exit 2), never a traceback."""
    for cls in (KafkaConnectionError, KafkaAuthError, KafkaTLSError):
        assert issubclass(cls, StreamprocError)


@pytest.mark.parametrize("command", [["alerts"], ["demo", "--duration", "1"], ["worker"]])
def test_commands_exit_2_with_the_setting_when_kafka_is_unreachable(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [port] = free_ports(1)
    monkeypatch.setenv("STREAMPROC_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Kafka at kafka.bootstrap_servers=127.0.0.1:{port}" in err
    assert "Traceback" not in err
