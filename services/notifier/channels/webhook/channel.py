"""Generic webhook: POST the full breach event (``Breach.to_json()``) to the receiver's URL.

Headers: ``Content-Type: application/json``, ``Idempotency-Key: <breach.event_key>``
(the same for every retry of one lifecycle event, so a receiver can drop duplicates),
``User-Agent``, then the receiver's configured headers (which may override the
defaults). Any 2xx is success.

Classification:

    connection refused/reset, DNS   retriable      connection
    timeout (connect/read/total)    retriable      timeout
    429                             retriable      http_429 (Retry-After honoured)
    5xx                             retriable      http_5xx (Retry-After honoured)
    other 4xx, 1xx/3xx              not retriable  http_4xx / protocol

The HTTP client is injected (its transport too), so tests run against real servers.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from services.notifier.backoff import parse_retry_after_ms
from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from shared.definitions.model import Receiver, WebhookReceiverSpec
from shared.schemas import Breach

USER_AGENT = "slawatch-notifier/1"


def _elapsed_ms(started_ns: int) -> int:
    return (time.perf_counter_ns() - started_ns) // 1_000_000


def classify_status(status_code: int) -> tuple[Reason, bool] | None:
    """``None`` for success, else the failure reason and whether it is retriable."""
    if 200 <= status_code < 300:
        return None
    if status_code == 429:
        return Reason.HTTP_429, True
    if status_code >= 500:
        return Reason.HTTP_5XX, True
    if 400 <= status_code < 500:
        return Reason.HTTP_4XX, False
    return Reason.PROTOCOL, False


class WebhookChannel:
    """Delivers to ``spec.type: webhook`` receivers."""

    def __init__(self, http: httpx.AsyncClient, *, timeout_ms: int) -> None:
        self._http = http
        self._timeout_s = timeout_ms / 1000

    @property
    def name(self) -> str:
        return "webhook"

    async def deliver(self, breach: Breach, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, WebhookReceiverSpec):  # pragma: no cover - one spec type today
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not a webhook receiver", retriable=False
            )
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": breach.event_key,
            "User-Agent": USER_AGENT,
            **spec.headers,
        }
        started = time.perf_counter_ns()
        try:
            # The total deadline bounds the whole exchange; httpx's timeout is per phase.
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(
                    spec.url, content=breach.to_json(), headers=headers, timeout=self._timeout_s
                )
        except (TimeoutError, httpx.TimeoutException):
            raise DeliveryError(
                Reason.TIMEOUT,
                f"no response within {self._timeout_s:g} s",
                retriable=True,
                latency_ms=_elapsed_ms(started),
            ) from None
        except httpx.TransportError as exc:
            raise DeliveryError(
                Reason.CONNECTION,
                f"{type(exc).__name__}: cannot reach {receiver.metadata.name}",
                retriable=True,
                latency_ms=_elapsed_ms(started),
            ) from None
        latency = _elapsed_ms(started)
        failure = classify_status(response.status_code)
        if failure is None:
            return DeliveryResult(status_code=response.status_code, latency_ms=latency)
        reason, retriable = failure
        raise DeliveryError(
            reason,
            f"HTTP {response.status_code} from {receiver.metadata.name}",
            retriable=retriable,
            status_code=response.status_code,
            latency_ms=latency,
            retry_after_ms=parse_retry_after_ms(response.headers.get("retry-after"))
            if retriable
            else None,
        )
