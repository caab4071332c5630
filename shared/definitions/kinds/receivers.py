"""Receivers: delivery targets, one spec per channel type (a union discriminated by ``type``).

Secrets are never written into a definition: fields that hold one take a reference,
``env:NAME`` (an environment variable of the notifier, ``SLAWATCH_SECRET_*`` by
default) or ``file:PATH`` (a file under the secrets directory, trailing newline
stripped), resolved at delivery time and never logged.
Fields typed :data:`UrlOrSecret` take either a plain ``http(s)://`` URL or such a
reference (Slack and Teams webhook URLs are themselves secrets).

:meth:`Receiver.checks` refuses secrets slipped into plain fields (a chat webhook URL,
``user:pass@`` or ``?token=`` in a URL, an ``Authorization`` header, ...; see
:mod:`shared.definitions.kinds.secrets`), before the document reaches the history.
It runs with every write (``validate``, ``apply``, the API), not when stored documents
are loaded: a receiver stored before these checks still delivers.

:meth:`Receiver.checks` also applies the outbound rules (:class:`ReceiverRules`, the
process's settings, installed by the command's ``main`` with :func:`use_rules`):
a destination that is a denied literal address or an internal name
(:func:`shared.outbound.host_denial`; names are resolved and checked at delivery) and
a secret reference the rules refuse (:func:`shared.secret_refs.reference_problem`).

Every spec takes ``templates``: Jinja2 sources overriding the channel's default
templates by name (see ``services/notifier/templates.py`` for the names per channel).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from shared.definitions.kinds.common import Metadata, Spec, duration
from shared.definitions.kinds.secrets import (
    RECEIVER_TYPE,
    secret_header,
    url_credentials,
    webhook_service,
)
from shared.outbound import Allow, host_denial
from shared.secret_refs import SecretRules, reference_problem

if TYPE_CHECKING:
    from shared.settings import Settings

SecretRef = Annotated[str, Field(pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")]
"""``env:NAME`` or ``file:PATH`` (relative to the secrets directory, or absolute inside it)."""

UrlOrSecret = Annotated[str, Field(pattern=r"^(https?://.+|env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")]
"""A plain ``http(s)://`` URL, or a :data:`SecretRef` to one."""

Templates = dict[Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")], str]


class _ReceiverSpecBase(Spec):
    templates: Templates = Field(default_factory=dict)


class WebhookReceiverSpec(_ReceiverSpecBase):
    """Generic webhook: the full breach event as JSON, with ``webhook-id`` (and
    ``Idempotency-Key``); when ``secret`` (``whsec_...``) is set, signed the Standard
    Webhooks way (``webhook-signature``, see docs/webhooks.md)."""

    type: Literal["webhook"]
    url: UrlOrSecret
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
    url: UrlOrSecret = "https://events.pagerduty.com/v2/enqueue"
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

    def field_checks(self) -> list[tuple[str, str]]:
        """``verifyTls`` without TLS."""
        if self.security == "none" and "verify_tls" in self.model_fields_set:
            return [
                (
                    "verifyTls",
                    "'verifyTls' does not apply to security 'none' (no TLS, nothing to "
                    "verify); use security starttls or tls, or remove 'verifyTls'",
                )
            ]
        return []

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
    url: UrlOrSecret
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

    def checks(self) -> list[tuple[str, str]]:
        """Secrets written inline in plain fields, destinations and secret references
        the outbound rules refuse, as (field path, message)."""
        # Suggested names match the default env: pattern (shared.secret_refs).
        var = "SLAWATCH_SECRET_" + self.metadata.name.upper().replace("-", "_")
        return _inline_secrets(self.spec, var) + outbound_problems(self.spec, RULES.get())


@dataclass(frozen=True)
class ReceiverRules:
    """What a receiver written in this process may point at and reference."""

    allow: Allow = field(default_factory=Allow)
    secrets: SecretRules = field(default_factory=SecretRules)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReceiverRules:
        return cls(settings.outbound, settings.secret_rules)


RULES: ContextVar[ReceiverRules] = ContextVar(
    "receiver_rules",
    default=ReceiverRules(),  # noqa: B039 - frozen, so safe to share
)
"""The rules :meth:`Receiver.checks` applies: strict defaults until :func:`use_rules`."""


def use_rules(rules: ReceiverRules) -> None:
    """Install ``rules`` for this context and the tasks and threads started from it
    (``main`` calls it once, before the event loop)."""
    RULES.set(rules)


def _destinations(spec: object) -> list[tuple[str, str]]:
    """(field path, host) of every destination the notifier connects to."""
    if isinstance(spec, EmailReceiverSpec):
        # A host with userinfo is refused as an inline secret already.
        return [] if "@" in spec.host else [("spec.host", spec.host)]
    url = getattr(spec, "url", None)
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return [("spec.url", url)]
    return []


def _references(spec: object) -> list[tuple[str, str]]:
    """(field path, reference) of every secret reference in ``spec``."""
    out: list[tuple[str, str]] = []
    url = getattr(spec, "url", None)
    if isinstance(url, str) and url.startswith(("env:", "file:")):
        out.append(("spec.url", url))
    for attr, path in (("secret", "spec.secret"), ("password", "spec.password")):
        value = getattr(spec, attr, None)
        if isinstance(value, str):
            out.append((path, value))
    if isinstance(spec, PagerDutyReceiverSpec):
        out.append(("spec.routingKey", spec.routing_key))
    for name, value in (getattr(spec, "secret_headers", None) or {}).items():
        out.append((f"spec.secretHeaders.{name}", value))
    return out


def outbound_problems(spec: object, rules: ReceiverRules) -> list[tuple[str, str]]:
    """Destinations and secret references of ``spec`` that ``rules`` refuse."""
    out: list[tuple[str, str]] = []
    for path, target in _destinations(spec):
        if path == "spec.url":
            if any(c in target for c in "\\ \t\r\n"):
                out.append((path, "the URL contains a backslash or white space"))
                continue
            try:
                host = urlsplit(target).hostname or ""
            except ValueError as exc:
                out.append((path, f"not a URL: {exc}"))
                continue
        else:
            host = target
        why = host_denial(host, rules.allow)
        if why is not None:
            out.append(
                (
                    path,
                    f"destination refused: {why}; allow it with SLAWATCH_OUTBOUND_ALLOW "
                    "(a CIDR or host name) if the notifier is meant to reach it",
                )
            )
    for path, reference in _references(spec):
        why = reference_problem(reference, rules.secrets)
        if why is not None:
            out.append((path, why))
    return out


_KEPT = "and definitions keep every version"


def _inline_secrets(spec: object, var: str) -> list[tuple[str, str]]:
    """``var``: the environment variable name suggested in messages (from the name)."""
    out: list[tuple[str, str]] = []
    if isinstance(spec, SlackReceiverSpec | TeamsReceiverSpec):
        if spec.url.startswith(("http://", "https://")):
            service = webhook_service(spec.url)
            found = url_credentials(spec.url)
            store = (
                "store it in an environment variable of the notifier and write "
                f"`url: env:{var}_URL` (or `url: file:NAME` for a file in the secrets directory)"
            )
            if service is not None:
                out.append(("spec.url", f"this URL is the {service} webhook's credential: {store}"))
            elif found is not None:
                out.append(("spec.url", f"{found} is a credential, {_KEPT}: {store}"))
    elif isinstance(
        spec, WebhookReceiverSpec | AlertmanagerReceiverSpec | PagerDutyReceiverSpec
    ) and spec.url.startswith(("http://", "https://")):
        service = webhook_service(spec.url)
        found = url_credentials(spec.url)
        if service is not None:
            out.append(
                (
                    "spec.url",
                    f"this URL is the {service} webhook's credential, {_KEPT}: use a "
                    f"receiver of `type: {RECEIVER_TYPE[service]}` with `url: env:{var}_URL` "
                    "and the URL in that environment variable of the notifier",
                )
            )
        elif found is not None and isinstance(spec, PagerDutyReceiverSpec):
            out.append(
                (
                    "spec.url",
                    f"{found} is a credential, {_KEPT}: remove it; PagerDuty authenticates "
                    "with `routingKey` (a secret reference)",
                )
            )
        elif found is not None:
            out.append(
                (
                    "spec.url",
                    f"{found} is a credential, {_KEPT}: send it as a header, e.g. "
                    f"`secretHeaders: {{Authorization: env:{var}_TOKEN}}`, or, if the "
                    f"endpoint only takes it in the URL, write `url: env:{var}_URL` with "
                    "the whole URL in that environment variable of the notifier",
                )
            )
    if isinstance(spec, WebhookReceiverSpec | AlertmanagerReceiverSpec):
        for name, value in spec.headers.items():
            reference = value.startswith(("env:", "file:"))
            if secret_header(name, value) or reference:
                why = (
                    "plain headers are sent as written, references are resolved only in "
                    "secretHeaders"
                    if reference
                    else f"header {name} carries a credential, {_KEPT}"
                )
                out.append(
                    (
                        f"spec.headers.{name}",
                        f"{why}: move header {name} to secretHeaders with an env:/file: "
                        f"reference (`secretHeaders: {{{name}: env:{var}_{_env_word(name)}}}`)",
                    )
                )
    if isinstance(spec, AlertmanagerReceiverSpec) and spec.generator_url is not None:
        found = url_credentials(spec.generator_url)
        if found is not None:
            out.append(
                (
                    "spec.generatorUrl",
                    f"{found} is a credential, {_KEPT}: remove it; generatorUrl is a link "
                    "shown to people in Alertmanager",
                )
            )
    if isinstance(spec, EmailReceiverSpec) and "@" in spec.host:
        out.append(
            (
                "spec.host",
                "host is a host name only; give credentials as `username` and "
                f"`password: env:{var}_SMTP_PASSWORD` (a secret reference)",
            )
        )
    return out


def _env_word(header: str) -> str:
    """``X-Api-Key`` → ``X_API_KEY`` (an environment variable name part)."""
    return "".join(c if c.isalnum() else "_" for c in header.upper()).strip("_") or "HEADER"
