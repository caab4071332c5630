"""Signed deliveries through the real delivery workers (PostgreSQL outbox, retries) to a
real loopback receiver, every attempt checked by the reference ``standardwebhooks``
library: one ``webhook-id`` and one body across the retries, a fresh timestamp per
attempt."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifier.channels import build_channels
from services.notifier.channels.webhook.channel import parse_breach_body
from services.notifier.channels.webhook.signature import format_secret
from services.notifier.secrets import Secrets
from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc, scalar
from tests.integration.notifier.test_worker import delivery_status, enqueue, run_workers
from tests.unit.notifier.support import RecordingServer, make_breach

pytestmark = pytest.mark.integration

SECRET = format_secret(bytes(range(100, 132)))


async def test_every_attempt_verifies_and_keeps_its_webhook_id(
    engine: AsyncEngine, make_settings: Any
) -> None:
    settings = make_settings(delivery_backoff_base_ms=20, delivery_backoff_max_ms=50)
    doc = receiver_doc("signed", "http://placeholder")
    async with httpx.AsyncClient() as http, RecordingServer(statuses=[500, 503]) as server:
        doc["spec"] |= {"url": server.url, "secret": "env:SLAWATCH_SECRET_SIGNED"}
        await apply_docs(engine, doc, agreement_doc([{"receivers": ["signed"]}]))
        await enqueue(engine, ["signed"])
        secrets = Secrets({"SLAWATCH_SECRET_SIGNED": SECRET})
        await run_workers(
            engine, settings, http, CollectorRegistry(), count=1,
            until=lambda: delivery_status(engine),
            channels=build_channels(http, settings.delivery_timeout_ms, secrets),
        )  # fmt: skip
    assert await scalar(engine, "SELECT status FROM deliveries") == "delivered"
    assert len(server.requests) == 3
    for request in server.requests:
        parsed = Webhook(SECRET).verify(request.body, request.headers)
        breach = parse_breach_body(request.body)
        # the worker's links: ack (signed) and console, under the notifier's public URL
        assert parsed["ack_url"].startswith("http://127.0.0.1:8082/v1/ack/")
        assert parsed["console_url"] == f"http://127.0.0.1:8082/console/breaches/{breach.id}"
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(request.body + b" ", request.headers)
    # a retry is the same message: same bytes, ack link included (a receiver may
    # compare the body of a redelivery with the one it already has)
    assert len({r.body for r in server.requests}) == 1
    ids = {r.headers["webhook-id"] for r in server.requests}
    assert ids == {r.headers["idempotency-key"] for r in server.requests}
    assert ids == {make_breach().event_key}
    stamps = [int(r.headers["webhook-timestamp"]) for r in server.requests]
    assert stamps == sorted(stamps)  # each attempt stamped when it was sent
