"""Receivers: delivery targets, one spec per channel type (a union discriminated by ``type``).

Secrets are never written into a definition: fields that hold one take a reference,
``env:NAME`` (an environment variable of the notifier) or ``file:/path`` (a mounted
file, trailing newline stripped), resolved at delivery time and never logged.
Fields typed :data:`UrlOrSecret` take either a plain ``http(s)://`` URL or such a
reference (Slack and Teams webhook URLs are themselves secrets).

Every spec takes ``templates``: Jinja2 sources overriding the channel's default
templates by name (see ``services/notifier/templates.py`` for the names per channel).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shared.definitions.kinds.common import Metadata, Spec, duration

SecretRef = Annotated[str, Field(pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$")]
"""``env:NAME`` or ``file:/absolute/path``."""

UrlOrSecret = Annotated[str, Field(pattern=r"^(https?://.+|env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$")]
"""A plain ``http(s)://`` URL, or a :data:`SecretRef` to one."""

Templates = dict[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], str]


class _ReceiverSpecBase(Spec):
    templates: Templates = Field(default_factory=dict)


class WebhookReceiverSpec(_ReceiverSpecBase):
    """Generic webhook: the full breach event as JSON, with ``Idempotency-Key``; when
    ``secret`` is set, signed (``X-Slawatch-Signature``, see docs/webhooks.md)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, SecretRef] = Field(default_factory=dict)
    secret: SecretRef | None = None


class SlackReceiverSpec(_ReceiverSpecBase):
    """Slack incoming webhook (Block Kit message)."""

    type: Literal["slack"]
    url: UrlOrSecret


class TeamsReceiverSpec(_ReceiverSpecBase):
    """Microsoft Teams incoming webhook / workflow (Adaptive Card)."""

    type: Literal["teams"]
    url: UrlOrSecret


class PagerDutyReceiverSpec(_ReceiverSpecBase):
    """PagerDuty Events API v2; ``url`` is configurable (tests, EU region, proxies)."""

    type: Literal["pagerduty"]
    routing_key: SecretRef
    url: str = Field(default="https://events.pagerduty.com/v2/enqueue", pattern=r"^https?://")
    source: str = "slawatch"


class EmailReceiverSpec(_ReceiverSpecBase):
    """Email over SMTP: ``security`` is ``starttls`` (upgrade on port 587), ``tls``
    (implicit TLS, port 465) or ``none`` (trusted relays and tests only)."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    from_: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    verify_tls: bool = True

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailReceiverSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both 'username' and 'password', or neither")
        return self


class AlertmanagerReceiverSpec(_ReceiverSpecBase):
    """Prometheus Alertmanager: breaches pushed as alerts to ``<url>/api/v2/alerts``.

    A firing alert is sent with ``endsAt`` = event time + ``firingTtl``, so Alertmanager
    keeps it active (slawatch does not re-push); the resolution sends the real end."""

    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, SecretRef] = Field(default_factory=dict)
    firing_ttl: str = "24h"
    generator_url: str | None = None

    _ttl_ok = field_validator("firing_ttl")(duration)


ReceiverSpec = Annotated[
    WebhookReceiverSpec
    | SlackReceiverSpec
    | TeamsReceiverSpec
    | PagerDutyReceiverSpec
    | EmailReceiverSpec
    | AlertmanagerReceiverSpec,
    Field(discriminator="type"),
]


class Receiver(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Receiver"]
    metadata: Metadata
    spec: ReceiverSpec
