"""The ``route`` settings section: where ``streamproc route`` delivers alerts, and how.

Kept apart from :mod:`streamproc.settings` (which embeds it as ``Settings.route``)
so the router's knobs live next to the router. Secrets are
:class:`pydantic.SecretStr`: they print as ``**********`` in ``check-config`` and
logs, and are unwrapped only where a request is signed or authenticated.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from streamproc.settings.frozen import Frozen

_INT32_MAX = 2**31 - 1


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    if parts.username or parts.password:
        # Credentials in a URL end up in logs and error messages; they have their own settings.
        raise ValueError(f"{parts.hostname}: put credentials in their settings, not in the URL")
    return url


class RouteSettings(Frozen):
    """Delivery of alerts to Alertmanager and webhooks (`streamproc route`, docs/operations.md)."""

    group_id: str = Field(
        default="streamproc-route",
        min_length=1,
        description="Consumer group of the router; apart from the workers' group.",
    )
    alertmanager_urls: str = Field(
        default="",
        description="Comma-separated Alertmanager base URLs (an HA pair: every one gets "
        "every alert); empty: no Alertmanager sink.",
    )
    alertmanager_username: str | None = Field(
        default=None, description="Basic-auth user for Alertmanager."
    )
    alertmanager_password: SecretStr | None = Field(
        default=None, description="Basic-auth password for Alertmanager; never logged or printed."
    )
    alertmanager_bearer_token: SecretStr | None = Field(
        default=None, description="Bearer token for Alertmanager (instead of basic auth)."
    )
    webhook_url: str | None = Field(
        default=None, description="URL that receives each alert as a signed JSON POST."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key of the webhook signature; required with webhook_url.",
    )
    group_delay_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="A stream alert is held this long so that a model alert covering it "
        "replaces it (like Alertmanager's group_wait); 0 delivers at once.",
    )
    alert_ttl_seconds: float = Field(
        default=86_400.0,
        gt=0,
        le=_INT32_MAX,
        description="endsAt of a firing alert in Alertmanager, after its detection, unless a "
        "resolved message ends it earlier.",
    )
    retry_initial_seconds: float = Field(
        default=0.5, gt=0, le=3600, description="First wait before retrying a failed delivery..."
    )
    retry_max_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="...doubling up to this wait."
    )
    request_timeout_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="Bound on one HTTP request to a sink."
    )
    max_pending: int = Field(
        default=10_000,
        ge=1,
        le=_INT32_MAX,
        description="Alerts read but not yet delivered before the router pauses consuming.",
    )

    @field_validator("alertmanager_urls", mode="before")
    @classmethod
    def _join_list(cls, value: Any) -> Any:
        """A YAML list is accepted too; the environment variable is comma-separated."""
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return value

    @field_validator("alertmanager_urls")
    @classmethod
    def _check_urls(cls, value: str) -> str:
        for url in (u.strip() for u in value.split(",")):
            if url:
                _check_url(url)
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        return _check_url(value) if value else value

    @model_validator(mode="after")
    def _check_pairs(self) -> RouteSettings:
        if self.alertmanager_bearer_token and (
            self.alertmanager_username or self.alertmanager_password
        ):
            raise ValueError(
                "alertmanager_bearer_token and alertmanager_username/password exclude each other"
            )
        if self.alertmanager_username and ":" in self.alertmanager_username:
            raise ValueError("alertmanager_username must not contain ':' (basic auth, RFC 7617)")
        if bool(self.alertmanager_username) != bool(self.alertmanager_password):
            raise ValueError("alertmanager_username and alertmanager_password go together")
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url needs webhook_secret (receivers verify the signature)")
        if self.retry_initial_seconds > self.retry_max_seconds:
            raise ValueError("retry_initial_seconds must not exceed retry_max_seconds")
        return self

    @property
    def alertmanager_url_list(self) -> tuple[str, ...]:
        return tuple(u.strip().rstrip("/") for u in self.alertmanager_urls.split(",") if u.strip())

    @property
    def sinks(self) -> tuple[str, ...]:
        """Names of the configured sinks, in delivery order."""
        names = ("alertmanager",) if self.alertmanager_url_list else ()
        return names + (("webhook",) if self.webhook_url else ())
