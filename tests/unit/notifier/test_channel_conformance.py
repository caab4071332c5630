"""The suite every channel runs, against real local HTTP servers: which failures are
retriable and why, timeouts, Retry-After, and no secret in errors or logs.

A new channel adds one :class:`ChannelCase` to ``CASES``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from services.notifier.channels.base import Channel, DeliveryError, Reason
from services.notifier.channels.webhook import WebhookChannel
from shared.definitions.model import Receiver
from tests.unit.notifier.support import RecordingServer, make_breach, unused_port

SECRET = "s3cr3t-token-value"


@dataclass(frozen=True)
class ChannelCase:
    """How to build one channel and a receiver of its type carrying ``SECRET``."""

    name: str
    channel: Callable[[httpx.AsyncClient, int], Channel]
    receiver: Callable[[str], Receiver]


def webhook_receiver(url: str) -> Receiver:
    return Receiver.model_validate(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Receiver",
            "metadata": {"name": "hook"},
            "spec": {"type": "webhook", "url": url, "headers": {"Authorization": SECRET}},
        }
    )


CASES = [
    ChannelCase("webhook", lambda http, ms: WebhookChannel(http, timeout_ms=ms), webhook_receiver),
]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> ChannelCase:
    chosen: ChannelCase = request.param
    return chosen


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def attempt(
    case: ChannelCase, http: httpx.AsyncClient, url: str, timeout_ms: int = 2_000
) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await case.channel(http, timeout_ms).deliver(make_breach(), case.receiver(url))
    return caught.value


@pytest.mark.parametrize(
    ("status", "reason", "retriable"),
    [
        (500, Reason.HTTP_5XX, True),
        (502, Reason.HTTP_5XX, True),
        (503, Reason.HTTP_5XX, True),
        (429, Reason.HTTP_429, True),
        (400, Reason.HTTP_4XX, False),
        (401, Reason.HTTP_4XX, False),
        (404, Reason.HTTP_4XX, False),
        (410, Reason.HTTP_4XX, False),
        (302, Reason.PROTOCOL, False),
    ],
)
async def test_status_classification(
    case: ChannelCase, http: httpx.AsyncClient, status: int, reason: Reason, retriable: bool
) -> None:
    async with RecordingServer(default=status) as server:
        error = await attempt(case, http, server.url)
    assert (error.reason, error.retriable, error.status_code) == (reason, retriable, status)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_success(case: ChannelCase, http: httpx.AsyncClient, status: int) -> None:
    async with RecordingServer(default=status) as server:
        result = await case.channel(http, 2_000).deliver(make_breach(), case.receiver(server.url))
    assert result.status_code == status
    assert result.latency_ms >= 0


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_passed_on(
    case: ChannelCase, http: httpx.AsyncClient, status: int
) -> None:
    async with RecordingServer(default=status, headers={"Retry-After": "7"}) as server:
        error = await attempt(case, http, server.url)
    assert error.retry_after_ms == 7_000


async def test_connection_refused_is_retriable(case: ChannelCase, http: httpx.AsyncClient) -> None:
    error = await attempt(case, http, f"http://127.0.0.1:{unused_port()}/hook")
    assert (error.reason, error.retriable) == (Reason.CONNECTION, True)


async def test_timeout_is_retriable(case: ChannelCase, http: httpx.AsyncClient) -> None:
    async with RecordingServer(delay_s=1.0) as server:
        error = await attempt(case, http, server.url, timeout_ms=100)
    assert (error.reason, error.retriable) == (Reason.TIMEOUT, True)
    assert error.latency_ms >= 90


@pytest.mark.parametrize("status", [None, 401, 500])
async def test_no_secret_in_errors_or_logs(
    case: ChannelCase,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    status: int | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    if status is None:
        error = await attempt(case, http, f"http://127.0.0.1:{unused_port()}/hook")
    else:
        async with RecordingServer(default=status) as server:
            error = await attempt(case, http, server.url)
    assert SECRET not in str(error)
    assert SECRET not in repr(error.args)
    assert SECRET not in caplog.text
