"""Generic webhook: POST the full breach event (``Breach.to_json()``) to the receiver's URL.

Headers: ``Content-Type: application/json``, ``Idempotency-Key`` (the same for every
retry of one notification, so a receiver can drop duplicates), ``X-Slawatch-Kind``
(the notification kind: a lifecycle kind, ``escalation.<n>`` or
``breach.acknowledged``), ``User-Agent``, ``X-Slawatch-Signature`` when the receiver
has a ``secret`` (see :mod:`.signature`), then the receiver's configured headers and
resolved secret headers (which may override the defaults). Any 2xx is success;
failures are classified by :mod:`services.notifier.channels.http`.
"""

from __future__ import annotations

import httpx

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.destinations import DestinationPolicy
from services.notifier.channels.http import USER_AGENT, post, prepare
from services.notifier.channels.webhook.signature import HEADER, sign
from services.notifier.message import Notification
from services.notifier.secrets import Secrets
from shared.definitions.model import Receiver, WebhookReceiverSpec
from shared.timeutil import Clock, wall_clock_ms


class WebhookChannel:
    """Delivers to ``spec.type: webhook`` receivers."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout_ms: int,
        secrets: Secrets | None = None,
        clock: Clock = wall_clock_ms,
        destinations: DestinationPolicy | None = None,
    ) -> None:
        self._destinations = destinations
        self._http = http
        self._timeout_s = timeout_ms / 1000
        self._secrets = secrets or Secrets({})
        self._clock = clock

    @property
    def name(self) -> str:
        return "webhook"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, WebhookReceiverSpec):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not a webhook receiver", retriable=False
            )
        body = note.breach.to_json()

        def headers() -> dict[str, str]:
            built = {
                "Content-Type": "application/json",
                "Idempotency-Key": note.idempotency_key,
                "X-Slawatch-Kind": note.kind,
                "User-Agent": USER_AGENT,
            }
            if spec.secret is not None:
                built[HEADER] = sign(
                    self._secrets.resolve(spec.secret), body, self._clock() // 1000
                )
            built.update(spec.headers)
            built.update({k: self._secrets.resolve(v) for k, v in spec.secret_headers.items()})
            return built

        return await post(
            self._http,
            spec.url,
            content=body,
            headers=prepare(headers),
            timeout_s=self._timeout_s,
            receiver_name=receiver.metadata.name,
            destinations=self._destinations,
        )
