"""No secret in any log line or error body of the running stack.

The stack runs as `slawatch up` runs it (three service processes, the embedded broker
and PostgreSQL; fixtures of tests/e2e/test_stack.py). The test creates a key with
`slawatch keys create` (a real CLI process), a webhook receiver whose Standard
Webhooks secret comes from a ``file:`` reference and whose ``secretHeaders`` entry
from an allowed ``env:SLAWATCH_SECRET_*`` one, drives events until a breach is
delivered (signature verified with the ``standardwebhooks`` package, the header seen
resolved), and makes failing requests: no key, a wrong key, a revoked-looking key,
bad bodies, an oversize body, a receiver refused at creation, a receiver that refuses
deliveries and echoes what it got. Then every file the stack wrote under its logs and
data directory (text) and every error body it answered are searched for each secret:
the admin key, the created key, the webhook secret, the header value and the database
password (read from the stack's URL and its password file, when there is one) and
the ack-link signing key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from services.notifier.channels.webhook.signature import format_secret
from services.stack import Stack, running_stack
from shared.embedded import free_port
from shared.runtime import HttpServer
from shared.settings import Settings
from tests.keys import bearer

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = format_secret(os.urandom(32))
HEADER_VALUE = "hdr-" + uuid.uuid4().hex + uuid.uuid4().hex
HEADER_ENV = "SLAWATCH_SECRET_E2E_LEAK_TOKEN"
SECRET_FILE = "leak-hook.whsec"

DEFINITIONS = """
apiVersion: slawatch/v1
kind: Agreement
metadata: {{name: leak-shop}}
spec:
  type: SLA
  provider: shopco
  consumer: acme
  objectives:
    - name: availability
      kind: ratio
      service: checkout
      select: {{type: request}}
      good: {{outcome: good}}
      target: 0.95
      window: 5m
      alerting: {{policy: threshold, minEvents: 10, severity: page}}
  notify: [{{match: {{}}, receivers: [signed-hook, refusing-hook]}}]
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: signed-hook}}
spec:
  type: webhook
  url: "http://127.0.0.1:{port}/alerts"
  secret: "file:{secret_file}"
  secretHeaders: {{X-Leak-Token: "env:{header_env}"}}
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: refusing-hook}}
spec:
  type: webhook
  url: "http://127.0.0.1:{port}/refuse"
  secretHeaders: {{X-Leak-Token: "env:{header_env}"}}
"""


class Hook:
    """A real receiver: ``/alerts`` records signed deliveries, ``/refuse`` answers 400
    with every header it got (a careless receiver echoing the secret back)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0
        self.changed = asyncio.Condition()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/alerts")
        async def alerts(request: Request) -> dict[str, str]:
            body = await request.body()
            async with self.changed:
                self.deliveries.append((dict(request.headers), body))
                self.changed.notify_all()
            return {"status": "ok"}

        @app.post("/refuse")
        async def refuse(request: Request) -> JSONResponse:
            async with self.changed:
                self.refused += 1
                self.changed.notify_all()
            return JSONResponse({"echo": dict(request.headers)}, status_code=400)

        return app

    async def wait(self, done: Any, timeout_s: float = 40.0) -> None:
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(done)


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, int]]:
    box = Hook()
    port = free_port()
    server = HttpServer(box.app(), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.started(), 10)
    yield box, port
    server.stop()
    await task


@pytest.fixture
async def stack(
    tmp_path: Path, hook: tuple[Hook, int], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    data = tmp_path / "data"
    (data / "secrets").mkdir(parents=True)
    (data / "secrets" / SECRET_FILE).write_text(WEBHOOK_SECRET + "\n")
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "shop.yaml").write_text(
        DEFINITIONS.format(port=hook[1], secret_file=SECRET_FILE, header_env=HEADER_ENV)
    )
    # the services inherit this environment (services.stack.service_env)
    monkeypatch.setenv(HEADER_ENV, HEADER_VALUE)
    settings = Settings(
        kafka_bootstrap=None,
        database_url=None,
        data_dir=data,
        embedded_kafka_port=0,
        embedded_postgres_port=0,
        ingest_port=free_port(),
        evaluator_port=free_port(),
        notifier_port=free_port(),
        topic_prefix="leak",
        kafka_session_timeout_ms=6_000,
        kafka_heartbeat_interval_ms=500,
        delivery_poll_interval_ms=100,
    )
    exits = contextlib.ExitStack()
    started = await asyncio.to_thread(
        exits.enter_context, running_stack(settings, [tmp_path / "defs"])
    )
    try:
        yield started
    finally:
        await asyncio.to_thread(exits.close)


def events(outcome: str, count: int) -> bytes:
    now = int(time.time() * 1000)
    return b"\n".join(
        orjson.dumps(
            {
                "id": f"{outcome}-{i}",
                "service": "checkout",
                "type": "request",
                "time": now,
                "outcome": outcome,
            }
        )
        for i in range(count)
    )


def create_key(stack: Stack) -> str:
    """``slawatch keys create`` as a person runs it (its own process, the stack's env)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "keys",
            "create",
            "--name",
            "leak-ci",
            *("--scope", "events:write", "--scope", "config:write", "--scope", "config:read"),
            *("--scope", "breaches:read", "--scope", "breaches:ack"),
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def database_password(stack: Stack) -> str | None:
    url = stack.settings.database_url
    password = make_url(url).password if url else None
    stored = stack.settings.data_dir / "pgdata.password"
    if password is None and stored.exists():
        password = stored.read_text().strip() or None
    return password


#: where secrets belong: the files the test wrote and the stack's own key files
KEY_FILES = ("admin.key", "pgdata.password", "database.password", "ack-link.key")


def text_files(root: Path) -> dict[Path, str]:
    """Every text file the stack wrote under its data directory (the service, broker
    and PostgreSQL logs, anything else); the database's own directory (binary pages)
    and the files that are meant to hold a secret are left out."""
    out: dict[Path, str] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root).parts
        if not path.is_file() or path.is_symlink() or relative[0] in ("pgdata", "secrets"):
            continue
        if path.name in KEY_FILES:
            continue
        raw = path.read_bytes()
        if b"\x00" in raw[:4096]:
            continue
        out[path] = raw.decode("utf-8", errors="replace")
    return out


async def test_no_secret_in_any_log_or_error_body(
    stack: Stack, hook: tuple[Hook, int], caplog: pytest.LogCaptureFixture
) -> None:
    box, _ = hook
    key = await asyncio.to_thread(create_key, stack)
    assert key.startswith("sw_")
    ingest, notifier = stack.url("ingest"), stack.url("notifier")
    answers: list[httpx.Response] = []

    async with httpx.AsyncClient(timeout=30, headers=bearer(key)) as http:
        ndjson = {"content-type": "application/x-ndjson"}
        opened = await http.post(f"{ingest}/v1/events", content=events("bad", 12), headers=ndjson)
        assert opened.status_code == 202, opened.text

        # a receiver with secrets created through the API with the new key
        created = await http.post(
            f"{ingest}/v1/receivers",
            json={
                "apiVersion": "slawatch/v1",
                "kind": "Receiver",
                "metadata": {"name": "api-hook"},
                "spec": {
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{hook[1]}/alerts",
                    "secret": f"file:{SECRET_FILE}",
                    "secretHeaders": {"X-Leak-Token": f"env:{HEADER_ENV}"},
                },
            },
        )
        assert created.status_code in (200, 201), created.text

        failing = [
            # no key, a wrong key, a key-shaped unknown one, the admin key misspelt
            ("GET", f"{notifier}/v1/breaches", {"authorization": ""}, None),
            ("GET", f"{notifier}/v1/breaches", bearer("not-a-key"), None),
            ("GET", f"{notifier}/v1/breaches", bearer("sw_" + "B" * 43), None),
            ("GET", f"{ingest}/v1/receivers", bearer(stack.admin_key[:-1] + "x"), None),
            ("GET", f"{ingest}/v1/receivers", {"authorization": f"Basic {key}"}, None),
            # bad bodies
            ("POST", f"{ingest}/v1/events", ndjson, b"{not json"),
            ("POST", f"{ingest}/v1/receivers", {"content-type": "application/json"}, b"[" * 500),
            ("POST", f"{notifier}/v1/silences", {"content-type": "application/json"}, b"{}"),
            (
                "POST",
                f"{notifier}/v1/breaches/nope/ack",
                {"content-type": "application/json"},
                b"1",
            ),
            # a body far over the limit: 413 at once, nothing read
            (
                "POST",
                f"{notifier}/v1/silences",
                {"content-type": "application/json"},
                b'{"comment": "' + b"z" * (30 * 1024 * 1024) + b'"}',
            ),
        ]
        for method, url, headers, body in failing:
            answers.append(await http.request(method, url, headers=headers, content=body))
        refused_at_creation: list[dict[str, Any]] = [
            {"url": "http://169.254.169.254/latest", "secretHeaders": {"A": f"env:{HEADER_ENV}"}},
            {"url": "http://127.0.0.1:1/x", "secretHeaders": {"A": "env:HOME"}},
            {"url": "http://127.0.0.1:1/x", "secret": "file:../../pgdata.password"},
            {"url": "http://127.0.0.1:1/x", "secretHeaders": {"Authorization": key}},
            {"url": "http://127.0.0.1:1/x", "secret": WEBHOOK_SECRET},
        ]
        for spec in refused_at_creation:
            answers.append(
                await http.post(
                    f"{ingest}/v1/receivers/validate",
                    json={
                        "apiVersion": "slawatch/v1",
                        "kind": "Receiver",
                        "metadata": {"name": "bad-hook"},
                        "spec": {"type": "webhook", **spec},
                    },
                )
            )

        # a 4xx is not retried: one refused attempt
        await box.wait(lambda: bool(box.deliveries) and box.refused >= 1)
        breaches = (await http.get(f"{notifier}/v1/breaches")).json()
        items = breaches["items"] if isinstance(breaches, dict) else breaches
        attempts = await http.get(f"{notifier}/v1/receivers/refusing-hook/attempts")
        answers.append(attempts)
        for breach in items:
            answers.append(await http.get(f"{notifier}/v1/breaches/{breach['id']}"))

    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [401] * 5, statuses
    assert statuses[9] == 413, statuses
    # bad bodies and refused receivers: client errors, never a server error
    assert all(400 <= status < 500 for status in statuses[5:15]), statuses

    # the delivery carried the secrets: resolved header, a signature with the secret
    headers, body = box.deliveries[0]
    assert headers["x-leak-token"] == HEADER_VALUE
    Webhook(WEBHOOK_SECRET).verify(body, headers)

    secrets = {
        "admin key": stack.admin_key,
        "created key": key,
        "webhook secret": WEBHOOK_SECRET,
        "webhook secret (base64)": WEBHOOK_SECRET.removeprefix("whsec_"),
        "secret header value": HEADER_VALUE,
    }
    if (password := database_password(stack)) is not None:
        secrets["database password"] = password
    if (ack_key := stack.settings.data_dir / "ack-link.key").exists():
        secrets["ack-link signing key"] = ack_key.read_text().strip()

    stack.stop_services()  # flushes every log
    files = text_files(stack.settings.data_dir)
    logs = [p for p in files if p.suffix == ".log"]
    assert {p.name for p in logs} >= {"ingest.log", "evaluator.log", "notifier.log"}
    places = {str(p): text for p, text in files.items()}
    places |= {f"answer {i} ({a.request.url})": a.text for i, a in enumerate(answers)}
    places["this process's log"] = caplog.text
    leaks = [
        f"{what} in {where}"
        for what, value in secrets.items()
        for where, text in places.items()
        if value in text
    ]
    assert leaks == []
    # the search reads what the stack wrote: the delivery is in the notifier's log
    assert any("signed-hook" in text for text in files.values())
