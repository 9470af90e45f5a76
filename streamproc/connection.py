"""Kafka connection settings, translated once for Faust and for plain aiokafka clients.

The worker (Faust), the demo producer, the alerts reader and the topic check
(aiokafka) must all reach the cluster the same way, so the translation of
:class:`~streamproc.settings.KafkaSettings` lives here and nowhere else.
Secrets are unwrapped only at this edge, never logged.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from streamproc.errors import ConfigError
from streamproc.settings import KafkaSettings


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL, or None for plaintext protocols."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        )
        if settings.ssl_certfile:
            context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
                settings.ssl_password.get_secret_value() if settings.ssl_password else None,
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka.ssl_*: cannot load the TLS files: {exc}") from exc
    return context


def aiokafka_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client streamproc creates."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def faust_broker(settings: KafkaSettings) -> list[str]:
    """Faust's broker URLs for the bootstrap list."""
    return [f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")]


def faust_credentials(settings: KafkaSettings) -> Any:
    """Faust's credentials object for the configured security protocol (None: plaintext)."""
    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            ssl_context=context,
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
