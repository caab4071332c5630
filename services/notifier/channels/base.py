"""The channel contract: one notification (:class:`~services.notifier.message.Notification`)
to one receiver, or one group flush
(:class:`~services.notifier.message.GroupNotification`: every alert of a notification
group in one message, like Alertmanager's; PagerDuty sends one event per alert).

A channel either returns a :class:`DeliveryResult` (the receiver accepted it) or
raises :class:`DeliveryError`, which says whether trying again may help
(``retriable``) and why (``reason``, a bounded enum that labels the failure metric).
Channels never retry, never sleep and never touch the database: the outbox worker
owns retries, backoff and the record of attempts.

    NotifierError
    └── DeliveryError(reason, retriable, status_code, latency_ms, retry_after_ms)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from services.notifier.exceptions import NotifierError
from services.notifier.message import GroupNotification, Notification
from shared.definitions.model import Receiver


class Reason(enum.StrEnum):
    """Why a delivery failed; a bounded set, used as a metric label."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    HTTP_5XX = "http_5xx"
    HTTP_429 = "http_429"
    HTTP_4XX = "http_4xx"
    PROTOCOL = "protocol"
    UNKNOWN_RECEIVER = "unknown_receiver"
    UNSUPPORTED_CHANNEL = "unsupported_channel"
    ABANDONED = "abandoned"
    INTERNAL = "internal"
    CONFIG = "config"
    TEMPLATE = "template"
    SMTP_TRANSIENT = "smtp_4xx"
    SMTP_PERMANENT = "smtp_5xx"
    AUTH = "auth"
    DENIED = "denied"


@dataclass(frozen=True)
class DeliveryResult:
    """A delivery the receiver accepted."""

    status_code: int | None
    latency_ms: int


class DeliveryError(NotifierError):
    """A failed delivery. The message never contains secrets (headers, tokens, URLs'
    credentials): it is stored in the database and logged."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retriable: bool,
        status_code: int | None = None,
        latency_ms: int = 0,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retriable = retriable
        self.status_code = status_code
        self.latency_ms = latency_ms
        self.retry_after_ms = retry_after_ms


class Channel(Protocol):
    """Delivers breach events to receivers of one ``spec.type``."""

    @property
    def name(self) -> str:
        """The channel's name, equal to the receiver ``spec.type`` it serves (metric label)."""
        ...

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        """Deliver once; raise :class:`DeliveryError` on failure."""
        ...

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        """Deliver one group flush once; raise :class:`DeliveryError` on failure."""
        ...
