"""The webhook channel against real local HTTP servers: request shape and the
retriable classification of every failure."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from services.notifier.channels import build_channels
from services.notifier.channels.base import DeliveryError, Reason
from services.notifier.channels.webhook import WebhookChannel
from shared.definitions.model import Receiver
from shared.schemas import Breach
from tests.unit.notifier.support import RecordingServer, make_breach, unused_port

SECRET = "s3cr3t-token-value"


def receiver(url: str) -> Receiver:
    return Receiver.model_validate(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Receiver",
            "metadata": {"name": "hook"},
            "spec": {"type": "webhook", "url": url, "headers": {"Authorization": SECRET}},
        }
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_posts_breach_json_with_idempotency_key(http: httpx.AsyncClient) -> None:
    breach = make_breach()
    async with RecordingServer() as server:
        result = await WebhookChannel(http, timeout_ms=2_000).deliver(breach, receiver(server.url))
    assert result.status_code == 200
    assert result.latency_ms >= 0
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == breach.event_key
    assert request.headers["authorization"] == SECRET
    assert Breach.model_validate(orjson.loads(request.body)) == breach


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
    http: httpx.AsyncClient, status: int, reason: Reason, retriable: bool
) -> None:
    async with RecordingServer(default=status) as server:
        with pytest.raises(DeliveryError) as caught:
            await WebhookChannel(http, timeout_ms=2_000).deliver(
                make_breach(), receiver(server.url)
            )
    assert (caught.value.reason, caught.value.retriable) == (reason, retriable)
    assert caught.value.status_code == status


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_success(http: httpx.AsyncClient, status: int) -> None:
    async with RecordingServer(default=status) as server:
        result = await WebhookChannel(http, timeout_ms=2_000).deliver(
            make_breach(), receiver(server.url)
        )
    assert result.status_code == status


async def test_retry_after_is_passed_on(http: httpx.AsyncClient) -> None:
    async with RecordingServer(default=429, headers={"Retry-After": "7"}) as server:
        with pytest.raises(DeliveryError) as caught:
            await WebhookChannel(http, timeout_ms=2_000).deliver(
                make_breach(), receiver(server.url)
            )
    assert caught.value.retry_after_ms == 7_000


async def test_connection_refused_is_retriable(http: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{unused_port()}/hook"
    with pytest.raises(DeliveryError) as caught:
        await WebhookChannel(http, timeout_ms=2_000).deliver(make_breach(), receiver(url))
    assert (caught.value.reason, caught.value.retriable) == (Reason.CONNECTION, True)


async def test_timeout_is_retriable(http: httpx.AsyncClient) -> None:
    async with RecordingServer(delay_s=1.0) as server:
        with pytest.raises(DeliveryError) as caught:
            await WebhookChannel(http, timeout_ms=100).deliver(make_breach(), receiver(server.url))
    assert (caught.value.reason, caught.value.retriable) == (Reason.TIMEOUT, True)
    assert caught.value.latency_ms >= 90


async def test_no_secret_in_errors_or_logs(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with RecordingServer(default=500) as server:
        with pytest.raises(DeliveryError) as caught:
            await WebhookChannel(http, timeout_ms=2_000).deliver(
                make_breach(), receiver(server.url)
            )
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text


def test_channels_by_receiver_type(http: httpx.AsyncClient) -> None:
    assert set(build_channels(http, 1_000)) == {"webhook"}
