"""aiokafka's and :mod:`ssl`'s exceptions, translated where streamproc first meets Kafka.

aiokafka reports a failed bootstrap as "Unable to bootstrap from [...]" and
leaves the reason (a refused password, an untrusted certificate) in its log,
and Faust retries such failures for ever. So every command first opens one
connection exactly as its clients will (:func:`check_connection`) and every
foreign error becomes one of ours (:func:`translate`) whose message names the
setting to fix, as httpx maps its transports' errors. Messages name settings
and never carry a secret: the configured passwords are masked in any text
taken from an exception.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from aiokafka import errors as ak
from aiokafka.conn import collect_hosts, create_conn

from streamproc.connection import aiokafka_options
from streamproc.errors import (
    KafkaAuthError,
    KafkaConnectionError,
    KafkaTLSError,
    StreamprocError,
)
from streamproc.settings import KafkaSettings

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 15.0
"""Bound on one connection attempt of the start-up check (TCP, TLS, SASL, ApiVersions)."""

_AUTH_FAILED = (
    ak.SaslAuthenticationFailed,
    ak.AuthenticationFailedError,
    ak.AuthenticationMethodNotSupported,
    ak.IllegalSaslStateError,
)
_DENIED = (
    ak.TopicAuthorizationFailedError,
    ak.GroupAuthorizationFailedError,
    ak.ClusterAuthorizationFailedError,
    ak.TransactionalIdAuthorizationFailed,
)
_CLIENT_CERT_REFUSED = (
    "BAD_CERTIFICATE",
    "CERTIFICATE_REQUIRED",
    "CERTIFICATE_UNKNOWN",
    "UNKNOWN_CA",
    "HANDSHAKE_FAILURE",
)
_HOSTNAME_MISMATCH = 62
"""OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH."""

TRANSLATED = (ak.KafkaError, OSError, asyncio.TimeoutError)
"""What :func:`translated` maps; anything else is a bug and keeps its own traceback."""


def translate(exc: BaseException, settings: KafkaSettings) -> StreamprocError:
    """Our exception for ``exc`` (raise it ``from exc``); unexpected ones are logged in full."""
    if isinstance(exc, StreamprocError):
        return exc
    for cause in _chain(exc):
        known = _known(cause, settings)
        if known is not None:
            return known
    if isinstance(exc, ak.KafkaConnectionError | OSError | asyncio.TimeoutError):
        return _unreachable(exc, settings)
    log.error("unexpected error from Kafka", exc_info=exc)
    return KafkaConnectionError(
        f"unexpected error from Kafka at kafka.bootstrap_servers={settings.bootstrap_servers}: "
        f"{type(exc).__name__}: {_masked(exc, settings)}"
    )


@asynccontextmanager
async def translated(settings: KafkaSettings) -> AsyncIterator[None]:
    """Run a block of aiokafka calls; Kafka, socket and TLS errors leave it translated."""
    try:
        yield
    except StreamprocError:
        raise
    except TRANSLATED as exc:
        raise translate(exc, settings) from exc


async def check_connection(
    settings: KafkaSettings, attempt_seconds: float = CHECK_TIMEOUT_SECONDS
) -> None:
    """Connect to one bootstrap server as every client will (TLS, SASL) or raise ours.

    A refused login or certificate ends the check at once: the other servers of
    the cluster would refuse it too.
    """
    options = aiokafka_options(settings)
    del options["bootstrap_servers"]
    error: StreamprocError | None = None
    for host, port, _ in collect_hosts(settings.bootstrap_servers, randomize=False):
        try:
            async with asyncio.timeout(attempt_seconds):
                conn = await create_conn(
                    host, port, request_timeout_ms=int(attempt_seconds * 1000), **options
                )
        except TRANSLATED as exc:
            error = translate(exc, settings)
            if isinstance(error, KafkaAuthError | KafkaTLSError):
                raise error from exc
            error.__cause__ = exc
            continue
        conn.close()
        return
    if error is not None:
        raise error


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes: the TLS or SASL error is often under a connection error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _known(exc: BaseException, settings: KafkaSettings) -> StreamprocError | None:
    if isinstance(exc, ak.UnsupportedSaslMechanismError):
        return KafkaAuthError(
            f"Kafka at {settings.bootstrap_servers} does not offer kafka.sasl_mechanism="
            f"{settings.sasl_mechanism} (STREAMPROC_KAFKA_SASL_MECHANISM): {_masked(exc, settings)}"
        )
    if isinstance(exc, _AUTH_FAILED):
        return KafkaAuthError(
            f"Kafka at {settings.bootstrap_servers} rejected the {settings.sasl_mechanism} login "
            f"of kafka.sasl_username={settings.sasl_username!r}: check kafka.sasl_password "
            f"(STREAMPROC_KAFKA_SASL_PASSWORD) and kafka.sasl_username "
            f"(broker: {_masked(exc, settings)})"
        )
    if isinstance(exc, _DENIED):
        return KafkaAuthError(
            f"Kafka denied kafka.sasl_username={settings.sasl_username!r} an operation "
            f"({type(exc).__name__}): grant it the ACLs in docs/kafka.md"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _untrusted(exc, settings)
    if isinstance(exc, ssl.SSLError):
        return _tls_failed(exc, settings)
    return None


def _untrusted(exc: ssl.SSLCertVerificationError, settings: KafkaSettings) -> KafkaTLSError:
    if exc.verify_code == _HOSTNAME_MISMATCH:
        return KafkaTLSError(
            f"the broker's TLS certificate does not name the host in kafka.bootstrap_servers="
            f"{settings.bootstrap_servers}: use a host name the certificate lists "
            f"({exc.verify_message})"
        )
    trusted = settings.ssl_cafile or "the system's CA bundle"
    return KafkaTLSError(
        f"the TLS certificate of Kafka at {settings.bootstrap_servers} is not trusted "
        f"({exc.verify_message}): set kafka.ssl_cafile (STREAMPROC_KAFKA_SSL_CAFILE) to the CA "
        f"that signed it; now trusted: {trusted}"
    )


def _tls_failed(exc: ssl.SSLError, settings: KafkaSettings) -> KafkaTLSError:
    reason = str(getattr(exc, "reason", "") or exc)
    if reason == "WRONG_VERSION_NUMBER":
        return KafkaTLSError(
            f"Kafka at {settings.bootstrap_servers} does not speak TLS there: check "
            f"kafka.security_protocol={settings.security_protocol} and the listener's port"
        )
    if any(marker in reason for marker in _CLIENT_CERT_REFUSED):
        return KafkaTLSError(
            f"Kafka at {settings.bootstrap_servers} refused the client certificate ({reason}): "
            "set kafka.ssl_certfile and kafka.ssl_keyfile (STREAMPROC_KAFKA_SSL_CERTFILE, "
            "STREAMPROC_KAFKA_SSL_KEYFILE) to a certificate the broker's CA signed; now: "
            f"{settings.ssl_certfile or 'none'}"
        )
    return KafkaTLSError(
        f"TLS with Kafka at {settings.bootstrap_servers} failed: {_masked(exc, settings)}; "
        "check the kafka.ssl_* settings"
    )


def _unreachable(exc: BaseException, settings: KafkaSettings) -> KafkaConnectionError:
    detail = _masked(exc, settings) or type(exc).__name__
    return KafkaConnectionError(
        f"cannot reach Kafka at kafka.bootstrap_servers={settings.bootstrap_servers} with "
        f"kafka.security_protocol={settings.security_protocol}: {detail}"
    )


def _masked(exc: BaseException, settings: KafkaSettings) -> str:
    """``str(exc)`` without any configured secret in it."""
    text = str(exc)
    for secret in (settings.sasl_password, settings.ssl_password):
        value = secret.get_secret_value() if secret is not None else ""
        if value:
            text = text.replace(value, "**********")
    return text
