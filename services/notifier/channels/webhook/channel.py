"""Generic webhook: POST the full breach event (``Breach`` as JSON) to the receiver's URL,
with four more top-level keys (:func:`breach_body`): ``text`` (the default ``text`` template:
what, how badly in the objective's unit, since when, links), ``ack_url`` (``null``
once acknowledged or resolved), ``console_url`` and ``status_url``. A group flush
posts one Alertmanager-webhook-shaped document (:func:`group_body`) whose ``alerts``
list every breach of the group, each with ``annotations`` (``summary``,
``description``), ``ackURL``, ``consoleURL`` and ``statusURL``.

Headers: ``Content-Type: application/json``; ``webhook-id`` and ``Idempotency-Key``
(both the notification's idempotency key, the same on every retry, so a receiver can
drop duplicates); ``webhook-timestamp`` (this attempt's unix seconds);
``webhook-signature`` when the receiver has a ``secret`` (Standard Webhooks 1.0, see
:mod:`.signature`; a plain, non-``whsec_`` secret also gets the deprecated
``X-Slawatch-Signature`` of :mod:`.legacy` and a warning in the log, once per receiver);
``X-Slawatch-Kind`` (the notification kind: a lifecycle kind, ``escalation.<n>`` or
``breach.acknowledged``); ``User-Agent``; then the receiver's configured headers and
resolved secret headers (which may override the defaults). Any 2xx is success;
failures are classified by :mod:`services.notifier.channels.http`.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.http import USER_AGENT, post, prepare
from services.notifier.channels.webhook import legacy
from services.notifier.channels.webhook.signature import (
    ID_HEADER,
    TIMESTAMP_HEADER,
    SecretInvalid,
    SigningKey,
    parse_secret,
    signed_headers,
)
from services.notifier.message import GroupNotification, Notification, labels_of
from services.notifier.secrets import Secrets
from services.notifier.templates import TEXT, TITLE, Renderer, template_context
from shared.definitions.model import Receiver, WebhookReceiverSpec
from shared.schemas import Breach
from shared.timeutil import Clock, to_rfc3339, wall_clock_ms

GROUP_SCHEMA = "slawatch.group/1"

log = logging.getLogger(__name__)


DEFAULTS = {"title": TITLE, "text": TEXT}


def breach_body(note: Notification, renderer: Renderer) -> dict[str, Any]:
    """The breach event, then its text and links (keys a breach never has)."""
    return {
        **note.breach.model_dump(mode="json"),
        "text": renderer.render("text", DEFAULTS, {}, template_context(note)),
        "ack_url": note.ack_url,
        "console_url": note.console_url,
        "status_url": note.status_url,
    }


def parse_breach_body(data: bytes) -> Breach:
    """The breach of a :func:`breach_body` (its text and links left out); raises
    ``ValueError`` for anything else."""
    parsed = orjson.loads(data)
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    return Breach.model_validate({k: v for k, v in parsed.items() if k in Breach.model_fields})


def group_body(group: GroupNotification, renderer: Renderer | None = None) -> dict[str, Any]:
    """Alertmanager's webhook payload shape (``version`` 4), one entry per breach."""
    renderer = renderer or Renderer()
    alerts = []
    for note in group.alerts:
        breach = note.breach
        context = template_context(note)
        resolved = note.action == "resolve"
        ends = breach.resolved_at if resolved and breach.resolved_at is not None else None
        alerts.append(
            {
                "status": "resolved" if resolved else "firing",
                "kind": note.kind,
                "labels": labels_of(breach),
                "annotations": {
                    "summary": renderer.render("title", DEFAULTS, {}, context),
                    "description": renderer.render("text", DEFAULTS, {}, context),
                },
                "startsAt": to_rfc3339(breach.opened_at),
                "endsAt": None if ends is None else to_rfc3339(ends),
                "fingerprint": breach.id,
                "statusURL": note.status_url,
                "ackURL": note.ack_url,
                "consoleURL": note.console_url,
                "acknowledged": None
                if note.ack is None
                else {"by": note.ack.by, "comment": note.ack.comment, "at": note.ack.at},
                "breach": breach.model_dump(mode="json"),
            }
        )
    return {
        "version": "4",
        "schema": GROUP_SCHEMA,
        "groupKey": group.group_key,
        "receiver": group.receiver,
        "status": group.status,
        "flushedAt": to_rfc3339(group.at),
        "groupLabels": dict(group.group_labels),
        "commonLabels": group.common_labels,
        "commonAnnotations": {},
        "truncatedAlerts": 0,
        "alerts": alerts,
    }


class WebhookChannel:
    """Delivers to ``spec.type: webhook`` receivers."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout_ms: int,
        secrets: Secrets | None = None,
        clock: Clock = wall_clock_ms,
        renderer: Renderer | None = None,
    ) -> None:
        self._http = http
        self._renderer = renderer or Renderer()
        self._timeout_s = timeout_ms / 1000
        self._secrets = secrets or Secrets({})
        self._clock = clock
        self._warned_plain: set[str] = set()

    @property
    def name(self) -> str:
        return "webhook"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, WebhookReceiverSpec):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not a webhook receiver", retriable=False
            )
        content = prepare(lambda: orjson.dumps(breach_body(note, self._renderer)))
        return await self._post(content, note.idempotency_key, note.kind, spec, receiver)

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, WebhookReceiverSpec):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not a webhook receiver", retriable=False
            )
        content = prepare(lambda: orjson.dumps(group_body(group, self._renderer)))
        return await self._post(content, group.idempotency_key, group.kind, spec, receiver)

    async def _post(
        self,
        body: bytes,
        idempotency_key: str,
        kind: str,
        spec: WebhookReceiverSpec,
        receiver: Receiver,
    ) -> DeliveryResult:
        def headers() -> dict[str, str]:
            timestamp_s = self._clock() // 1000
            built = {
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                ID_HEADER: idempotency_key,
                TIMESTAMP_HEADER: str(timestamp_s),
                "X-Slawatch-Kind": kind,
                "User-Agent": USER_AGENT,
            }
            if spec.secret is not None:
                key = self._signing_key(self._secrets.resolve(spec.secret), receiver)
                built.update(signed_headers(key.key, idempotency_key, timestamp_s, body))
                if key.legacy:
                    built[legacy.HEADER] = legacy.sign(key.key, body, timestamp_s)
            built.update(spec.headers)
            built.update({k: self._secrets.resolve(v) for k, v in spec.secret_headers.items()})
            return built

        url, built = prepare(lambda: (self._secrets.url(spec.url), headers()))
        return await post(
            self._http,
            url,
            content=body,
            headers=built,
            timeout_s=self._timeout_s,
            receiver_name=receiver.metadata.name,
        )

    def _signing_key(self, secret: str, receiver: Receiver) -> SigningKey:
        try:
            key = parse_secret(secret)
        except SecretInvalid as exc:
            # Retriable like an unset secret: fixing the file or variable lets the
            # pending retries through instead of losing the notification.
            raise DeliveryError(
                Reason.CONFIG, f"receiver {receiver.metadata.name}: {exc}", retriable=True
            ) from None
        name = receiver.metadata.name
        if key.legacy and name not in self._warned_plain:
            self._warned_plain.add(name)
            log.warning(
                "receiver %s: a plain webhook secret is deprecated; it is used as raw key"
                " bytes and X-Slawatch-Signature is still sent. Switch to a whsec_ secret"
                " (docs/webhooks.md)",
                name,
            )
        return key
