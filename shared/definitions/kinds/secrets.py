"""Spotting secrets written inline in plain receiver fields.

Definitions are versioned: whatever is stored in one stays in the history for good.
Fields typed as secret references take only ``env:NAME`` / ``file:NAME``; this
module catches credentials slipped into the *plain* fields instead:

- a URL that is itself a credential: Slack, Teams and Power Automate / Logic Apps
  incoming-webhook URLs (whoever knows the URL can post);
- userinfo in a URL (``https://user:pass@host``);
- a query parameter that names a credential (``token``, ``api_key``, ``sig``, ...)
  with a non-empty value;
- a plain header that carries one (``Authorization``, ``Cookie``, ``X-Api-Key``, a
  name with token / secret / key / password / auth in it, or a ``Bearer``/``Basic``
  value).

Pure functions over strings; each returns what it found in words for a person, never
the secret itself (messages end up in CLI output, logs and API answers).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

_CREDENTIAL_PARAMS = frozenset(
    {
        "token", "access_token", "accesstoken", "auth", "auth_token", "authtoken",
        "authorization", "api_key", "apikey", "key", "secret", "client_secret", "password",
        "passwd", "pwd", "pass", "sig", "signature", "code", "jwt", "session", "sessionid",
        "private_token", "refresh_token", "id_token", "credential", "credentials",
    }
)  # fmt: skip
_CREDENTIAL_PARAM_WORDS = (
    "token", "secret", "password", "passwd", "apikey", "api_key", "signature",
)  # fmt: skip

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
_SECRET_HEADER_WORDS = frozenset(
    {
        "token", "secret", "key", "apikey", "password", "passwd", "pwd", "auth",
        "authorization", "authentication", "cookie", "signature", "session", "credential",
        "credentials", "jwt", "bearer",
    }
)  # fmt: skip
_SECRET_HEADER_PARTS = ("token", "secret", "password", "apikey", "credential")
#: the receiver type that takes a reference to each service's webhook URL
RECEIVER_TYPE = {"Slack": "slack", "Teams": "teams", "Power Automate": "teams"}
_SCHEMES = re.compile(r"^\s*(bearer|basic|token|digest|negotiate|apikey)\s+\S", re.IGNORECASE)


def webhook_service(url: str) -> str | None:
    """``"Slack"``, ``"Teams"`` or ``"Power Automate"`` when ``url`` is an
    incoming-webhook URL of that service (the URL is the credential), else None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    path = parts.path.lower()

    def on(domain: str) -> bool:
        return host == domain or host.endswith("." + domain)

    if on("hooks.slack.com") or on("hooks.slack-gov.com"):
        return "Slack"
    if on("webhook.office.com") or (
        (on("outlook.office.com") or on("outlook.office365.com")) and path.startswith("/webhook")
    ):
        return "Teams"
    if on("logic.azure.com") or on("powerplatform.com") or on("flow.microsoft.com"):
        return "Power Automate"
    return None


def url_credentials(url: str) -> str | None:
    """What in ``url`` is a credential (``"user:password@ in the URL"``,
    ``"query parameter 'token'"``), or None when it carries none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None  # not a URL: the field's own pattern reports it
    if "@" in parts.netloc:
        return "credentials before '@' in the URL"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if value and _credential_param(name):
            return f"query parameter {name!r}"
    return None


def _credential_param(name: str) -> bool:
    key = name.strip().lower().replace("-", "_")
    return (
        key in _CREDENTIAL_PARAMS
        or key.endswith("_key")
        or any(w in key for w in _CREDENTIAL_PARAM_WORDS)
    )


def secret_header(name: str, value: str) -> bool:
    """Whether a plain header would carry a credential, by its name or its value."""
    lowered = name.strip().lower()
    if lowered in _SECRET_HEADERS or _SCHEMES.match(value):
        return True
    words = [w for w in re.split(r"[-_.\s]+", lowered) if w]
    if any(w in _SECRET_HEADER_WORDS for w in words):
        return True
    # run-together words (XAuthToken, X-AccessToken); "author" is not "auth"
    return any(p in w for w in words for p in _SECRET_HEADER_PARTS) or any(
        w.startswith("auth") and not w.startswith("author") for w in words
    )
