"""The webhook sink: the alert's JSON, as published, POSTed with a signature and a delivery id.

Receivers verify ``X-Streamproc-Signature`` (``sha256=`` and the hex
HMAC-SHA256 of the raw body under ``route.webhook_secret``) and de-duplicate on
``X-Streamproc-Delivery``, which is the same for every delivery of one alert's
firing (or resolved) message: the router delivers at least once.
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from streamproc.route.delivery import Failed, Outcome, http_outcome
from streamproc.route.messages import RoutedAlert
from streamproc.settings.route import RouteSettings

SIGNATURE_HEADER = "X-Streamproc-Signature"
DELIVERY_HEADER = "X-Streamproc-Delivery"
STATUS_HEADER = "X-Streamproc-Status"


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does (in constant time); the tests' receiver uses it too."""
    return hmac.compare_digest(signature(secret, body), header)


class WebhookSink:
    """Posts each alert to one URL."""

    name = "webhook"

    def __init__(
        self, session: aiohttp.ClientSession, url: str, *, secret: bytes, timeout: float
    ) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @classmethod
    def from_settings(cls, session: aiohttp.ClientSession, settings: RouteSettings) -> WebhookSink:
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        return cls(
            session,
            settings.webhook_url,
            secret=settings.webhook_secret.get_secret_value().encode(),
            timeout=settings.request_timeout_seconds,
        )

    async def send(self, alert: RoutedAlert) -> Outcome:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, alert.body),
            DELIVERY_HEADER: alert.delivery_id,
            STATUS_HEADER: alert.status,
        }
        try:
            async with self._session.post(
                self._url, data=alert.body, headers=headers, timeout=self._timeout
            ) as response:
                return http_outcome(response.status, await response.text(errors="replace"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Failed(f"{self._url}: {type(exc).__name__}: {exc}")
