"""One HTTP POST with the classification every HTTP channel shares.

    connection refused/reset, DNS   retriable      connection
    timeout (connect/read/total)    retriable      timeout
    429                             retriable      http_429 (Retry-After honoured)
    5xx                             retriable      http_5xx (Retry-After honoured)
    other 4xx, 1xx/3xx              not retriable  http_4xx / protocol
    denied destination              not retriable  denied
    refused secret reference        not retriable  config

Destinations are checked by the client's transport, on the address it connects to
(:func:`~services.notifier.channels.destinations.outbound_client`, which the
notifier's ``main`` builds); redirects are never followed, whatever the client says.

Error messages name the receiver, never its URL (Slack/Teams URLs are secrets) nor
its headers. httpx itself logs every request's full URL at INFO: its logger is held
at WARNING from the first delivery on, so those URLs never reach the logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import httpx

from services.notifier.backoff import parse_retry_after_ms
from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.destinations import DestinationDenied, Outbound
from services.notifier.secrets import SecretRefused, Secrets, SecretUnavailable
from services.notifier.templates import Renderer, TemplateFailed

USER_AGENT = "slawatch-notifier/1"
T = TypeVar("T")


def denied(receiver_name: str, exc: DestinationDenied, started_ns: int) -> DeliveryError:
    """The delivery error of a destination the outbound policy refuses (never retried:
    only a change of ``SLAWATCH_OUTBOUND_ALLOW`` or of the receiver helps)."""
    return DeliveryError(
        Reason.DENIED,
        f"{receiver_name}: destination refused: {exc} (SLAWATCH_OUTBOUND_ALLOW)",
        retriable=False,
        latency_ms=elapsed_ms(started_ns),
    )


def elapsed_ms(started_ns: int) -> int:
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


def prepare(build: Callable[[], T]) -> T:
    """Run the part of a delivery that resolves secrets and renders templates, turning
    their failures into delivery errors (a missing secret may appear: retriable; a
    refused reference will not change by itself)."""
    try:
        return build()
    except SecretUnavailable as exc:
        raise DeliveryError(Reason.CONFIG, str(exc), retriable=True) from None
    except SecretRefused as exc:
        raise DeliveryError(Reason.CONFIG, str(exc), retriable=False) from None
    except TemplateFailed as exc:
        raise DeliveryError(Reason.TEMPLATE, str(exc), retriable=False) from None


_quieted: list[bool] = []


def _quiet_httpx() -> None:
    if not _quieted:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        _quieted.append(True)


async def post(
    http: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    receiver_name: str,
) -> DeliveryResult:
    """POST once; any 2xx is success, anything else a :class:`DeliveryError`. The
    destination is checked by ``http``'s transport, on the address it connects to."""
    _quiet_httpx()
    started = time.perf_counter_ns()
    try:
        # The total deadline bounds the whole exchange; httpx's timeout is per phase.
        async with asyncio.timeout(timeout_s):
            response = await http.post(
                url, content=content, headers=headers, timeout=timeout_s, follow_redirects=False
            )
    except DestinationDenied as exc:
        raise denied(receiver_name, exc, started) from None
    except (TimeoutError, httpx.TimeoutException):
        raise DeliveryError(
            Reason.TIMEOUT,
            f"no response within {timeout_s:g} s",
            retriable=True,
            latency_ms=elapsed_ms(started),
        ) from None
    except httpx.TransportError as exc:
        raise DeliveryError(
            Reason.CONNECTION,
            f"{type(exc).__name__}: cannot reach {receiver_name}",
            retriable=True,
            latency_ms=elapsed_ms(started),
        ) from None
    latency = elapsed_ms(started)
    failure = classify_status(response.status_code)
    if failure is None:
        return DeliveryResult(status_code=response.status_code, latency_ms=latency)
    reason, retriable = failure
    raise DeliveryError(
        reason,
        f"HTTP {response.status_code} from {receiver_name}",
        retriable=retriable,
        status_code=response.status_code,
        latency_ms=latency,
        retry_after_ms=parse_retry_after_ms(response.headers.get("retry-after"))
        if retriable
        else None,
    )


async def post_json(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    idempotency_key: str,
    *,
    timeout_s: float,
    receiver_name: str,
    destinations: Outbound | None = None,
) -> DeliveryResult:
    """:func:`post` a JSON body with the standard headers and an ``Idempotency-Key``."""
    return await post(
        http,
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": idempotency_key,
        },
        timeout_s=timeout_s,
        receiver_name=receiver_name,
    )


class TemplatedChannel:
    """An HTTP channel that renders templates and resolves secrets at delivery."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout_ms: int,
        secrets: Secrets,
        renderer: Renderer,
    ) -> None:
        self._http = http
        self._timeout_s = timeout_ms / 1000
        self._secrets = secrets
        self._renderer = renderer
