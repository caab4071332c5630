"""The suite every channel runs, against real local servers (HTTP, or SMTP for email):
success, which failures are retriable and why, timeouts, Retry-After, and no secret
in errors or logs.

A new channel adds one :class:`ChannelCase` to ``CASES``. ``Scripted`` servers answer
with an abstract outcome ("ok", "transient", "permanent") that each transport maps
to its own status: HTTP 200/503/400, SMTP 250/451/550.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.notifier.channels.alertmanager import AlertmanagerChannel
from services.notifier.channels.base import Channel, DeliveryError, Reason
from services.notifier.channels.destinations import outbound_client
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.message import GroupNotification, simple
from services.notifier.secrets import Secrets
from services.notifier.templates import Renderer
from shared.definitions.model import Receiver
from tests.unit.notifier.support import (
    LOCAL,
    RecordingServer,
    SmtpServer,
    make_breach,
    unused_port,
)

SECRET = "s3cr3t-token-value"
SECRETS = Secrets({"SLAWATCH_SECRET_S": SECRET, "SLACK_URL": "", "TEAMS_URL": ""})


def receiver(name: str, spec: dict[str, Any]) -> Receiver:
    return Receiver.model_validate(
        {"apiVersion": "slawatch/v1", "kind": "Receiver", "metadata": {"name": name}, "spec": spec}
    )


def webhook_receiver(url: str) -> Receiver:
    return receiver(
        "hook",
        {
            "type": "webhook",
            "url": url,
            "headers": {"Authorization": SECRET},
            "secret": "env:SLAWATCH_SECRET_S",
        },
    )


def slack_receiver(url: str) -> Receiver:
    # The Slack URL is a secret itself; keep it out of errors too.
    return receiver("chat", {"type": "slack", "url": url + "?token=" + SECRET})


def teams_receiver(url: str) -> Receiver:
    return receiver("teams", {"type": "teams", "url": url + "?sig=" + SECRET})


def pagerduty_receiver(url: str) -> Receiver:
    return receiver("pd", {"type": "pagerduty", "url": url, "routingKey": "env:SLAWATCH_SECRET_S"})


def alertmanager_receiver(url: str) -> Receiver:
    return receiver(
        "am",
        {
            "type": "alertmanager",
            "url": url,
            "secretHeaders": {"Authorization": "env:SLAWATCH_SECRET_S"},
        },
    )


def email_receiver(address: str) -> Receiver:
    host, port = address.rsplit(":", 1)
    return receiver(
        "mail",
        {
            "type": "email",
            "host": host,
            "port": int(port),
            "security": "none",
            "username": "alerts",
            "password": "env:SLAWATCH_SECRET_S",
            "from": "slawatch@example.org",
            "to": ["oncall@example.org"],
        },
    )


HTTP_STATUS = {"ok": 200, "transient": 503, "permanent": 400}
SMTP_REPLY = {"ok": "250 OK", "transient": "451 4.3.0 try later", "permanent": "550 5.1.1 no"}


def http_server(outcome: str, delay_s: float = 0.0) -> AbstractAsyncContextManager[Any]:
    return RecordingServer(default=HTTP_STATUS[outcome], delay_s=delay_s)


def smtp_server(outcome: str, delay_s: float = 0.0) -> AbstractAsyncContextManager[Any]:
    return SmtpServer(default=SMTP_REPLY[outcome], delay_s=delay_s)


def http_address(server: Any) -> str:
    return str(server.url)


def smtp_address(server: Any) -> str:
    return f"127.0.0.1:{server.port}"


@dataclass(frozen=True)
class ChannelCase:
    """How to build one channel, a receiver of its type carrying ``SECRET``, and a
    scripted server of its transport."""

    name: str
    channel: Callable[[httpx.AsyncClient, int], Channel]
    receiver: Callable[[str], Receiver]
    transport: str = "http"
    transient: Reason = Reason.HTTP_5XX
    permanent: Reason = Reason.HTTP_4XX

    def server(self, outcome: str, delay_s: float = 0.0) -> AbstractAsyncContextManager[Any]:
        return (http_server if self.transport == "http" else smtp_server)(outcome, delay_s)

    def address(self, server: Any) -> str:
        return (http_address if self.transport == "http" else smtp_address)(server)

    def closed_address(self) -> str:
        port = unused_port()
        return f"http://127.0.0.1:{port}/hook" if self.transport == "http" else f"127.0.0.1:{port}"


def _http(kind: type[Any]) -> Callable[[httpx.AsyncClient, int], Channel]:
    return lambda http, ms: kind(http, timeout_ms=ms, secrets=SECRETS, renderer=Renderer())


CASES = [
    ChannelCase(
        "webhook",
        lambda http, ms: WebhookChannel(http, timeout_ms=ms, secrets=SECRETS),
        webhook_receiver,
    ),
    ChannelCase("slack", _http(SlackChannel), slack_receiver),
    ChannelCase("teams", _http(TeamsChannel), teams_receiver),
    ChannelCase("pagerduty", _http(PagerDutyChannel), pagerduty_receiver),
    ChannelCase("alertmanager", _http(AlertmanagerChannel), alertmanager_receiver),
    ChannelCase(
        "email",
        lambda _http, ms: EmailChannel(
            timeout_ms=ms, secrets=SECRETS, renderer=Renderer(), outbound=LOCAL
        ),
        email_receiver,
        transport="smtp",
        transient=Reason.SMTP_TRANSIENT,
        permanent=Reason.SMTP_PERMANENT,
    ),
]
HTTP_CASES = [c for c in CASES if c.transport == "http"]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> ChannelCase:
    chosen: ChannelCase = request.param
    return chosen


@pytest.fixture(params=HTTP_CASES, ids=lambda case: case.name)
def http_case(request: pytest.FixtureRequest) -> ChannelCase:
    chosen: ChannelCase = request.param
    return chosen


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The notifier's own client (guarded transport), so every case also proves that the
    # channel connects through the destination check.
    async with outbound_client(LOCAL, 10.0) as client:
        yield client


async def attempt(
    case: ChannelCase, http: httpx.AsyncClient, address: str, timeout_ms: int = 2_000
) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await case.channel(http, timeout_ms).deliver(simple(make_breach()), case.receiver(address))
    return caught.value


async def test_success(case: ChannelCase, http: httpx.AsyncClient) -> None:
    async with case.server("ok") as server:
        result = await case.channel(http, 2_000).deliver(
            simple(make_breach()), case.receiver(case.address(server))
        )
    assert result.latency_ms >= 0


async def test_group_success_and_failure(case: ChannelCase, http: httpx.AsyncClient) -> None:
    """Every channel delivers a group flush, classifying failures as for one breach."""
    flush = GroupNotification("r", "k", make_breach().at, (simple(make_breach()),))
    async with case.server("ok") as server:
        result = await case.channel(http, 2_000).deliver_group(
            flush, case.receiver(case.address(server))
        )
    assert result.latency_ms >= 0
    async with case.server("transient") as server:
        with pytest.raises(DeliveryError) as caught:
            await case.channel(http, 2_000).deliver_group(
                flush, case.receiver(case.address(server))
            )
    assert caught.value.retriable
    assert caught.value.reason == case.transient


@pytest.mark.parametrize("outcome", ["transient", "permanent"])
async def test_failure_classification(
    case: ChannelCase, http: httpx.AsyncClient, outcome: str
) -> None:
    async with case.server(outcome) as server:
        error = await attempt(case, http, case.address(server))
    expected = (case.transient, True) if outcome == "transient" else (case.permanent, False)
    assert (error.reason, error.retriable) == expected


@pytest.mark.parametrize(
    ("status", "reason", "retriable"),
    [
        (500, Reason.HTTP_5XX, True),
        (502, Reason.HTTP_5XX, True),
        (429, Reason.HTTP_429, True),
        (401, Reason.HTTP_4XX, False),
        (404, Reason.HTTP_4XX, False),
        (410, Reason.HTTP_4XX, False),
        (302, Reason.PROTOCOL, False),
    ],
)
async def test_http_status_classification(
    http_case: ChannelCase, http: httpx.AsyncClient, status: int, reason: Reason, retriable: bool
) -> None:
    async with RecordingServer(default=status) as server:
        error = await attempt(http_case, http, server.url)
    assert (error.reason, error.retriable, error.status_code) == (reason, retriable, status)


@pytest.mark.parametrize("status", [201, 202, 204])
async def test_any_2xx_is_success(
    http_case: ChannelCase, http: httpx.AsyncClient, status: int
) -> None:
    async with RecordingServer(default=status) as server:
        result = await http_case.channel(http, 2_000).deliver(
            simple(make_breach()), http_case.receiver(server.url)
        )
    assert result.status_code == status


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_passed_on(
    http_case: ChannelCase, http: httpx.AsyncClient, status: int
) -> None:
    async with RecordingServer(default=status, headers={"Retry-After": "7"}) as server:
        error = await attempt(http_case, http, server.url)
    assert error.retry_after_ms == 7_000


async def test_connection_refused_is_retriable(case: ChannelCase, http: httpx.AsyncClient) -> None:
    error = await attempt(case, http, case.closed_address())
    assert (error.reason, error.retriable) == (Reason.CONNECTION, True)


async def test_timeout_is_retriable(case: ChannelCase, http: httpx.AsyncClient) -> None:
    async with case.server("ok", delay_s=1.0) as server:
        error = await attempt(case, http, case.address(server), timeout_ms=200)
    assert (error.reason, error.retriable) == (Reason.TIMEOUT, True)
    assert error.latency_ms >= 150


async def test_missing_secret_is_a_config_error(case: ChannelCase, http: httpx.AsyncClient) -> None:
    if case.name in ("slack", "teams"):
        spec = {"type": case.name, "url": "env:SLAWATCH_SECRET_UNSET_URL"}
        target = receiver("x", spec)
    else:
        target = case.receiver(case.closed_address())
    with pytest.raises(DeliveryError) as caught:
        await _without_secrets(case, http).deliver(simple(make_breach()), target)
    assert (caught.value.reason, caught.value.retriable) == (Reason.CONFIG, True)


async def test_a_url_given_as_a_reference_is_resolved_at_delivery(
    case: ChannelCase, http: httpx.AsyncClient
) -> None:
    """Every HTTP channel takes ``url: env:NAME`` (a URL that is itself a credential)."""
    if case.transport != "http":
        pytest.skip("email has a host, not a url")
    async with case.server("ok") as server:
        spec = case.receiver(case.address(server)).spec.model_dump(by_alias=True)
        target = receiver("x", {**spec, "url": "env:SLAWATCH_SECRET_TARGET_URL"})
        environ = {"SLAWATCH_SECRET_S": SECRET, "SLAWATCH_SECRET_TARGET_URL": case.address(server)}
        await _without_secrets(case, http, environ).deliver(simple(make_breach()), target)
        assert len(server.requests) == 1


def _without_secrets(
    case: ChannelCase, http: httpx.AsyncClient, environ: dict[str, str] | None = None
) -> Channel:
    empty = Secrets(environ or {})
    kinds: dict[str, Callable[[], Channel]] = {
        "webhook": lambda: WebhookChannel(http, timeout_ms=1_000, secrets=empty),
        "slack": lambda: SlackChannel(http, timeout_ms=1_000, secrets=empty, renderer=Renderer()),
        "teams": lambda: TeamsChannel(http, timeout_ms=1_000, secrets=empty, renderer=Renderer()),
        "pagerduty": lambda: PagerDutyChannel(
            http, timeout_ms=1_000, secrets=empty, renderer=Renderer()
        ),
        "alertmanager": lambda: AlertmanagerChannel(
            http, timeout_ms=1_000, secrets=empty, renderer=Renderer()
        ),
        "email": lambda: EmailChannel(
            timeout_ms=1_000, secrets=empty, renderer=Renderer(), outbound=LOCAL
        ),
    }
    return kinds[case.name]()


@pytest.mark.parametrize("outcome", [None, "permanent", "transient"])
async def test_no_secret_in_errors_or_logs(
    case: ChannelCase,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    outcome: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    if outcome is None:
        error = await attempt(case, http, case.closed_address())
    else:
        async with case.server(outcome) as server:
            error = await attempt(case, http, case.address(server))
    assert SECRET not in str(error)
    assert SECRET not in repr(error.args)
    assert SECRET not in caplog.text


async def test_bad_override_template_is_permanent(
    case: ChannelCase, http: httpx.AsyncClient
) -> None:
    if case.name == "webhook":
        pytest.skip("the webhook sends the breach JSON; it has no templates")
    base = case.receiver(case.closed_address())
    spec = base.spec.model_copy(
        update={"templates": {n: "{{ no_such_variable }}" for n in ("title", "summary")}}
    )
    broken = base.model_copy(update={"spec": spec})
    with pytest.raises(DeliveryError) as caught:
        await case.channel(http, 1_000).deliver(simple(make_breach()), broken)
    assert (caught.value.reason, caught.value.retriable) == (Reason.TEMPLATE, False)
