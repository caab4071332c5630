"""Receivers: secrets written inline in plain fields are refused before they are stored
(one table row per case, asserting field path and message), references and local URLs
pass, and no message repeats the secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.definitions.kinds.secrets import secret_header, url_credentials, webhook_service
from shared.definitions.load import DefinitionsInvalid, load_paths, parse_document
from shared.definitions.model import Receiver

SECRET = "xoxTOPsecret42"


def receiver(spec: dict[str, Any], name: str = "team-chat") -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": name},
        "spec": spec,
    }


def webhook(**fields: Any) -> dict[str, Any]:
    return receiver({"type": "webhook", "url": "https://hooks.example.com/slo", **fields})


def alertmanager(**fields: Any) -> dict[str, Any]:
    return receiver({"type": "alertmanager", "url": "http://127.0.0.1:9093", **fields})


REFUSED = [
    (
        "slack plain hook URL",
        receiver(
            {"type": "slack", "url": f"https://hooks.slack.com/services/T0001/B0002/{SECRET}"}
        ),
        "spec.url",
        "this URL is the Slack webhook's credential: store it in an environment variable of "
        "the notifier and write `url: env:SLAWATCH_SECRET_TEAM_CHAT_URL`",
    ),
    (
        "teams webhook URL",
        receiver(
            {
                "type": "teams",
                "url": f"https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/{SECRET}",
            }
        ),
        "spec.url",
        "this URL is the Teams webhook's credential: store it in an environment variable",
    ),
    (
        "teams legacy outlook webhook URL",
        receiver({"type": "teams", "url": f"https://outlook.office.com/webhook/{SECRET}"}),
        "spec.url",
        "Teams webhook's credential",
    ),
    (
        "teams workflow (Power Automate) URL",
        receiver(
            {
                "type": "teams",
                "url": "https://prod-12.westeurope.logic.azure.com:443/workflows/1/triggers/"
                f"manual/paths/invoke?api-version=2016-06-01&sp=%2F&sv=1.0&sig={SECRET}",
            }
        ),
        "spec.url",
        "Power Automate webhook's credential",
    ),
    (
        "slack URL on another host with a signature",
        receiver({"type": "slack", "url": f"https://relay.example.com/chat?sig={SECRET}"}),
        "spec.url",
        "query parameter 'sig' is a credential, and definitions keep every version: store it "
        "in an environment variable of the notifier and write "
        "`url: env:SLAWATCH_SECRET_TEAM_CHAT_URL`",
    ),
    (
        "Slack hook URL in a plain webhook",
        webhook(url=f"https://hooks.slack.com/services/T1/B2/{SECRET}"),
        "spec.url",
        "use a receiver of `type: slack` with `url: env:SLAWATCH_SECRET_TEAM_CHAT_URL`",
    ),
    (
        "userinfo in URL",
        webhook(url=f"https://alerts:{SECRET}@status.example.com/hook"),
        "spec.url",
        "credentials before '@' in the URL is a credential, and definitions keep every "
        "version: send it as a header, e.g. "
        "`secretHeaders: {Authorization: env:SLAWATCH_SECRET_TEAM_CHAT_TOKEN}`, or, if the "
        "endpoint only takes it in the URL, write `url: env:SLAWATCH_SECRET_TEAM_CHAT_URL`",
    ),
    (
        "token in query",
        webhook(url=f"http://127.0.0.1:9000/hook?team=shop&token={SECRET}"),
        "spec.url",
        "query parameter 'token' is a credential",
    ),
    (
        "api key in query of an alertmanager",
        alertmanager(url=f"https://am.example.com/?X-Api-Key={SECRET}"),
        "spec.url",
        "query parameter 'X-Api-Key' is a credential",
    ),
    (
        "Azure Functions code in query",
        webhook(url=f"https://fn.azurewebsites.net/api/slo?code={SECRET}"),
        "spec.url",
        "query parameter 'code'",
    ),
    (
        "userinfo in a PagerDuty URL",
        receiver(
            {
                "type": "pagerduty",
                "routingKey": "env:SLAWATCH_SECRET_PD_KEY",
                "url": f"https://proxy:{SECRET}@pd-proxy.example.com/v2/enqueue",
            }
        ),
        "spec.url",
        "remove it; PagerDuty authenticates with `routingKey`",
    ),
    (
        "token in an alertmanager generatorUrl",
        alertmanager(generatorUrl=f"https://slawatch.example.com/ui?access_token={SECRET}"),
        "spec.generatorUrl",
        "query parameter 'access_token' is a credential, and definitions keep every version: "
        "remove it; generatorUrl is a link shown to people",
    ),
    (
        "Authorization header",
        webhook(headers={"Authorization": f"Bearer {SECRET}"}),
        "spec.headers.Authorization",
        "header Authorization carries a credential, and definitions keep every version: move "
        "header Authorization to secretHeaders with an env:/file: reference "
        "(`secretHeaders: {Authorization: env:SLAWATCH_SECRET_TEAM_CHAT_AUTHORIZATION}`)",
    ),
    (
        "X-Api-Key header",
        alertmanager(headers={"X-Api-Key": SECRET}),
        "spec.headers.X-Api-Key",
        "move header X-Api-Key to secretHeaders with an env:/file: reference "
        "(`secretHeaders: {X-Api-Key: env:SLAWATCH_SECRET_TEAM_CHAT_X_API_KEY}`)",
    ),
    (
        "Proxy-Authorization header",
        webhook(headers={"Proxy-Authorization": SECRET}),
        "spec.headers.Proxy-Authorization",
        "carries a credential",
    ),
    (
        "Cookie header",
        webhook(headers={"Cookie": f"session={SECRET}"}),
        "spec.headers.Cookie",
        "carries a credential",
    ),
    (
        "header named with token",
        webhook(headers={"X-Auth-Token": SECRET}),
        "spec.headers.X-Auth-Token",
        "carries a credential",
    ),
    (
        "harmless name, bearer value",
        webhook(headers={"X-Upstream": f"Bearer {SECRET}"}),
        "spec.headers.X-Upstream",
        "carries a credential",
    ),
    (
        "reference in a plain header",
        webhook(headers={"X-Team": "env:TEAM"}),
        "spec.headers.X-Team",
        "plain headers are sent as written, references are resolved only in secretHeaders: "
        "move header X-Team to secretHeaders",
    ),
    (
        "userinfo in an SMTP host",
        receiver(
            {
                "type": "email",
                "host": f"alerts:{SECRET}@smtp.example.com",
                "from": "slawatch@example.com",
                "to": ["oncall@example.com"],
            }
        ),
        "spec.host",
        "host is a host name only; give credentials as `username` and "
        "`password: env:SLAWATCH_SECRET_TEAM_CHAT_SMTP_PASSWORD`",
    ),
]

ACCEPTED = [
    (
        "slack env reference",
        receiver({"type": "slack", "url": "env:SLAWATCH_SECRET_PLATFORM_SLACK_WEBHOOK_URL"}),
    ),
    ("teams file reference", receiver({"type": "teams", "url": "file:teams-url"})),
    ("slack local test server", receiver({"type": "slack", "url": "http://127.0.0.1:8080/"})),
    ("teams local test server", receiver({"type": "teams", "url": "http://127.0.0.1:9/hook"})),
    ("local webhook", webhook(url="http://127.0.0.1:9000/hook")),
    ("public webhook, harmless query", webhook(url="https://hooks.example.com/slo?team=shop&v=2")),
    ("empty token parameter", webhook(url="http://127.0.0.1:9000/hook?token=")),
    (
        "harmless headers and secret headers",
        webhook(
            headers={"Content-Type": "application/json", "X-Team": "shop", "X-Author": "ana"},
            secretHeaders={
                "Authorization": "env:SLAWATCH_SECRET_PAYFLOW_TOKEN",
                "X-Api-Key": "file:k",
            },
            secret="env:SLAWATCH_SECRET_PAYFLOW_WEBHOOK_SECRET",
        ),
    ),
    (
        "alertmanager with a plain generator URL",
        alertmanager(generatorUrl="https://slawatch.example.com/ui/breaches?agreement=shop"),
    ),
    (
        "pagerduty EU endpoint",
        receiver(
            {
                "type": "pagerduty",
                "routingKey": "env:SLAWATCH_SECRET_PD_KEY",
                "url": "https://events.eu.pagerduty.com/v2/enqueue",
            }
        ),
    ),
    (
        "email with password reference",
        receiver(
            {
                "type": "email",
                "host": "smtp.example.com",
                "username": "alerts",
                "password": "env:SLAWATCH_SECRET_SMTP_PASSWORD",
                "from": "slawatch@example.com",
                "to": ["oncall@example.com"],
            }
        ),
    ),
]


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    file = tmp_path / "receiver.yaml"
    file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return file


@pytest.mark.parametrize(
    ("case", "doc", "path", "message"), REFUSED, ids=[row[0] for row in REFUSED]
)
def test_inline_secret_is_refused(
    tmp_path: Path, case: str, doc: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([write(tmp_path, doc)])
    (error,) = info.value.errors
    assert error.path == path
    assert message in error.message
    assert SECRET not in str(info.value), "the message must not repeat the secret"


@pytest.mark.parametrize(("case", "doc"), ACCEPTED, ids=[row[0] for row in ACCEPTED])
def test_references_local_urls_and_harmless_headers_pass(
    tmp_path: Path, case: str, doc: dict[str, Any]
) -> None:
    (document,) = load_paths([write(tmp_path, doc)])
    assert document.kind == "Receiver"


def test_the_api_path_refuses_too_and_stored_documents_still_load() -> None:
    """``parse_document`` (the REST API's path) runs the checks; the bare model (how
    stored documents are read back) does not, so a receiver stored before these checks
    still delivers."""
    raw = webhook(headers={"Authorization": SECRET})
    with pytest.raises(DefinitionsInvalid) as info:
        parse_document(raw, "<body>", 0)
    assert [e.path for e in info.value.errors] == ["spec.headers.Authorization"]
    assert Receiver.model_validate(raw).checks() == [
        (info.value.errors[0].path, info.value.errors[0].message)
    ]


@pytest.mark.parametrize(
    ("url", "service"),
    [
        ("https://hooks.slack.com/services/T/B/x", "Slack"),
        ("https://hooks.slack-gov.com/services/T/B/x", "Slack"),
        ("https://a.webhook.office.com/webhookb2/x", "Teams"),
        ("https://outlook.office365.com/webhook/x", "Teams"),
        ("https://outlook.office.com/mail/", None),
        ("https://x.environment.api.powerplatform.com/powerautomate/x", "Power Automate"),
        ("https://notslack.com/services/T/B/x", None),
        ("http://127.0.0.1:8080/services/T/B/x", None),
    ],
)
def test_webhook_service(url: str, service: str | None) -> None:
    assert webhook_service(url) == service


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("https://u:p@h/", "credentials before '@' in the URL"),
        ("https://token@h/", "credentials before '@' in the URL"),
        ("https://h/?apikey=1", "query parameter 'apikey'"),
        ("https://h/?X-Amz-Signature=1", "query parameter 'X-Amz-Signature'"),
        ("https://h/?subscription_key=1", "query parameter 'subscription_key'"),
        ("https://h/?password=1", "query parameter 'password'"),
        ("https://h/a@b?design=1&signal=2&page=3", None),
        ("https://h/?key=", None),
    ],
)
def test_url_credentials(url: str, found: str | None) -> None:
    assert url_credentials(url) == found


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("Authorization", "x", True),
        ("proxy-authorization", "x", True),
        ("X-API-KEY", "x", True),
        ("Ocp-Apim-Subscription-Key", "x", True),
        ("X-AccessToken", "x", True),
        ("X-Client-Secret", "x", True),
        ("X-Authn", "x", True),
        ("X-Custom", "Basic dXNlcjpwYXNz", True),
        ("Content-Type", "application/json", False),
        ("X-Team", "shop", False),
        ("X-Author", "ana", False),
        ("Keep-Alive", "timeout=5", False),
    ],
)
def test_secret_header(name: str, value: str, secret: bool) -> None:
    assert secret_header(name, value) is secret
