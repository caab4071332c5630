"""Email over SMTP (standard library ``smtplib`` in a worker thread).

``security``: ``starttls`` (plain connect, then STARTTLS, required), ``tls``
(implicit TLS from the first byte), ``none``. Optional AUTH with ``username`` and a
``password`` reference. The message is ``multipart/alternative``: a plain-text part
(template ``text``) and an HTML part (template ``html``), subject from ``title``; a
group flush is one message listing every alert (``group_title``, ``group_text``,
``group_html``).
``Message-ID`` is derived from the idempotency key, and ``X-Slawatch-Idempotency-Key``
carries it, so a mailbox rule or the tests can drop a retried duplicate.

Classification:

    connection refused/reset, TLS failure   retriable      connection
    timeout                                 retriable      timeout
    4yz reply (e.g. 451, 421)               retriable      smtp_4xx
    5yz reply (e.g. 550, 554)               not retriable  smtp_5xx
    authentication refused (535)            not retriable  auth
    denied destination                      not retriable  denied

The SMTP host is resolved once and checked like every destination
(:meth:`~services.notifier.channels.destinations.Outbound.addresses`); ``smtplib``
then connects to the checked addresses (:class:`_Pinned`), while STARTTLS and
implicit TLS still verify the certificate against the host name.
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.destinations import DestinationDenied, Outbound
from services.notifier.channels.http import denied, elapsed_ms, prepare
from services.notifier.message import GroupNotification, Notification
from services.notifier.secrets import Secrets
from services.notifier.templates import (
    GROUP_DEFAULTS,
    HTML,
    TEXT,
    TITLE,
    Renderer,
    group_context,
    template_context,
)
from shared.definitions.kinds.receivers import EmailReceiverSpec
from shared.definitions.model import Receiver

DEFAULTS = {"title": TITLE, "text": TEXT, "html": HTML}
IDEMPOTENCY_HEADER = "X-Slawatch-Idempotency-Key"
# Fold only past RFC 5322's hard limit: a folded key would reach readers with a leading space.
POLICY = email.policy.default.clone(max_line_length=998)


def message(
    note: Notification | GroupNotification, spec: EmailReceiverSpec, renderer: Renderer
) -> EmailMessage:
    if isinstance(note, GroupNotification):
        context = group_context(note, renderer, spec.templates)
        defaults, prefix = GROUP_DEFAULTS, "group_"
    else:
        context = template_context(note)
        defaults, prefix = DEFAULTS, ""
    msg = EmailMessage(policy=POLICY)
    subject = renderer.render(f"{prefix}title", defaults, spec.templates, context)
    msg["Subject"] = subject.splitlines()[0]
    msg["From"] = spec.from_
    msg["To"] = ", ".join(spec.to)
    msg["Date"] = formatdate(localtime=False)
    digest = hashlib.sha256(note.idempotency_key.encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<{digest}@slawatch>"
    msg[IDEMPOTENCY_HEADER] = note.idempotency_key
    msg.set_content(renderer.render(f"{prefix}text", defaults, spec.templates, context) + "\n")
    msg.add_alternative(
        renderer.render(f"{prefix}html", defaults, spec.templates, context) + "\n",
        subtype="html",
    )
    return msg


class _Pinned(smtplib.SMTP):
    """SMTP connected to checked addresses; ``_host`` (TLS SNI and certificate check)
    stays the receiver's host name. ``_get_socket`` is smtplib's hook for the socket
    (``SMTP_SSL`` and ``LMTP`` override it the same way)."""

    addresses: tuple[str, ...] = ()

    def __init__(
        self, host: str, port: int, *args: Any, addresses: Sequence[str] = (), **kwargs: Any
    ) -> None:
        # smtplib connects from __init__ when given a host, so the addresses come first;
        # ``SMTP_SSL.__init__`` reaches here with them already set (``_PinnedSSL``).
        if addresses:
            self.addresses = tuple(addresses)
        super().__init__(host, port, *args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        failure: OSError = OSError(f"{host}: no address to connect to")
        for address in self.addresses:
            try:
                return socket.create_connection((address, port), timeout, self.source_address)
            except OSError as exc:
                failure = exc
        raise failure


class _PinnedSSL(smtplib.SMTP_SSL, _Pinned):
    """Implicit TLS over :class:`_Pinned`: ``SMTP_SSL._get_socket`` wraps the socket
    that ``_Pinned._get_socket`` (next in the MRO) connected."""

    def __init__(self, host: str, port: int, *, addresses: Sequence[str], **kwargs: Any) -> None:
        self.addresses = tuple(addresses)
        super().__init__(host, port, **kwargs)


def _send(
    spec: EmailReceiverSpec,
    addresses: Sequence[str],
    password: str | None,
    msg: EmailMessage,
    timeout_s: float,
) -> None:
    context = ssl.create_default_context()
    if not spec.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    smtp: _Pinned
    if spec.security == "tls":
        smtp = _PinnedSSL(
            spec.host, spec.port, addresses=addresses, timeout=timeout_s, context=context
        )
    else:
        smtp = _Pinned(spec.host, spec.port, addresses=addresses, timeout=timeout_s)
    with smtp:
        smtp.ehlo()
        if spec.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if spec.username is not None and password is not None:
            smtp.login(spec.username, password)
        smtp.send_message(msg)


class EmailChannel:
    """Delivers to ``spec.type: email`` receivers."""

    def __init__(
        self,
        *,
        timeout_ms: int,
        secrets: Secrets,
        renderer: Renderer,
        outbound: Outbound | None = None,
    ) -> None:
        self._outbound = outbound or Outbound()
        self._timeout_s = timeout_ms / 1000
        self._secrets = secrets
        self._renderer = renderer

    @property
    def name(self) -> str:
        return "email"

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        return await self.deliver(group, receiver)

    async def deliver(
        self, note: Notification | GroupNotification, receiver: Receiver
    ) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, EmailReceiverSpec):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not an email receiver", retriable=False
            )

        def build() -> tuple[EmailMessage, str | None]:
            password = None if spec.password is None else self._secrets.resolve(spec.password)
            return message(note, spec, self._renderer), password

        msg, password = prepare(build)
        name = receiver.metadata.name
        started = time.perf_counter_ns()
        try:
            async with asyncio.timeout(self._timeout_s):
                addresses = await self._outbound.addresses(spec.host, spec.port)
                await asyncio.to_thread(_send, spec, addresses, password, msg, self._timeout_s)
        except DestinationDenied as exc:
            raise denied(name, exc, started) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                Reason.AUTH,
                f"SMTP authentication refused by {name} ({exc.smtp_code})",
                retriable=False,
                status_code=exc.smtp_code,
                latency_ms=elapsed_ms(started),
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            transient = all(400 <= code < 500 for code in codes)
            raise DeliveryError(
                Reason.SMTP_TRANSIENT if transient else Reason.SMTP_PERMANENT,
                f"SMTP recipients refused by {name} ({', '.join(map(str, codes))})",
                retriable=transient,
                status_code=codes[0] if codes else None,
                latency_ms=elapsed_ms(started),
            ) from None
        except smtplib.SMTPResponseException as exc:
            transient = 400 <= exc.smtp_code < 500
            raise DeliveryError(
                Reason.SMTP_TRANSIENT if transient else Reason.SMTP_PERMANENT,
                f"SMTP {exc.smtp_code} from {name}",
                retriable=transient,
                status_code=exc.smtp_code,
                latency_ms=elapsed_ms(started),
            ) from None
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc)
            raise DeliveryError(
                Reason.TIMEOUT if timed_out else Reason.CONNECTION,
                f"no SMTP answer within {self._timeout_s:g} s"
                if timed_out
                else f"{name} closed the SMTP connection",
                retriable=True,
                latency_ms=elapsed_ms(started),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                Reason.CONNECTION,
                f"{type(exc).__name__}: cannot reach {name}",
                retriable=True,
                latency_ms=elapsed_ms(started),
            ) from None
        return DeliveryResult(status_code=250, latency_ms=elapsed_ms(started))
