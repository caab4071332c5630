"""ORM models: every table slawatch keeps in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB}


class Definition(Base):
    """The current version of one definition document (kind + name)."""

    __tablename__ = "definitions"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Checkpoint(Base):
    """Evaluator state snapshot and next offset of one partition, written in one transaction."""

    __tablename__ = "evaluator_checkpoints"

    consumer_group: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    #: The log ``next_offset`` belongs to (shared.logid.LogIdentity.encode); None for
    #: checkpoints written before identities were recorded.
    log_identity: Mapped[str | None] = mapped_column(String(600), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class DedupSlice(Base):
    """Event ids one evaluator partition saw within the dedup horizon, in one slice of
    arrival (every id's event time at most ``bound``); written once with a checkpoint."""

    __tablename__ = "evaluator_dedup_slices"
    __table_args__ = (
        Index(
            "ix_evaluator_dedup_slices_partition", "consumer_group", "topic", "partition", "bound"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    consumer_group: Mapped[str] = mapped_column(String(255), nullable=False)
    topic: Mapped[str] = mapped_column(String(255), nullable=False)
    partition: Mapped[int] = mapped_column(Integer, nullable=False)
    bound: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The next offset of the checkpoint written with this slice.
    next_offset: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: orjson list of the ids, in arrival order.
    ids: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class BreachRecord(Base):
    """One breach, as the notifier last saw it."""

    __tablename__ = "breaches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    objective_id: Mapped[str] = mapped_column(String(512), nullable=False)
    agreement: Mapped[str] = mapped_column(String(253), nullable=False)
    service: Mapped[str] = mapped_column(String(64), nullable=False)
    group: Mapped[dict[str, Any]] = mapped_column("group_attrs", JSONB, nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    opened_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)
    last_event: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    __table_args__ = (Index("ix_breaches_status_opened", "status", "opened_at"),)


class BreachEventRecord(Base):
    """Every lifecycle event of a breach, once: the notifier's idempotency log."""

    __tablename__ = "breach_events"

    breach_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("breaches.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Delivery(Base):
    """Outbox row: one lifecycle event to one receiver."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    breach_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    receiver: Mapped[str] = mapped_column(String(253), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("breach_id", "kind", "at", "receiver", name="uq_delivery_event_receiver"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )


class DeliveryAttempt(Base):
    """One try at delivering an outbox row: outcome, latency, response code, error."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class BreachAck(Base):
    """The acknowledgement of a breach (the first one wins): stops its escalation."""

    __tablename__ = "breach_acks"

    breach_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    acked_by: Mapped[str] = mapped_column(String(256), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: the API key that acknowledged (``ack link`` for a signed link); None before 0011
    actor: Mapped[str | None] = mapped_column(String(256))


class NotifierSilence(Base):
    """A silence created through the notifier API (YAML ones are definitions)."""

    __tablename__ = "notifier_silences"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    starts_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ends_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_by: Mapped[str] = mapped_column(String(256), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: the API key that created it; None before 0011
    actor: Mapped[str | None] = mapped_column(String(256))


class NotifierSecret(Base):
    """Secrets the notifier replicas share (the ack-link signing key), made on first start."""

    __tablename__ = "notifier_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), nullable=False)


class DefinitionVersion(Base):
    """Every version of every definition, deletions included: the history behind
    :class:`Definition` (who changed what, when and why)."""

    __tablename__ = "definition_versions"

    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    change: Mapped[str] = mapped_column(String(16), nullable=False)
    #: json, not jsonb: the keys stay in the order they were applied (0012)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(256), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class NotificationGroup(Base):
    """An Alertmanager-style group of breaches for one receiver, flushed on its own ticks."""

    __tablename__ = "notification_groups"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    receiver: Mapped[str] = mapped_column(String(253), nullable=False)
    group_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    next_flush_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_sent_at: Mapped[int | None] = mapped_column(BigInteger)
    interval_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    repeat_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    repeats: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    __table_args__ = (
        UniqueConstraint("receiver", "group_key", name="uq_notification_group"),
        Index("ix_notification_groups_due", "next_flush_at"),
    )


class NotificationGroupMember(Base):
    """A breach that belongs to a notification group."""

    __tablename__ = "notification_group_members"

    group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("notification_groups.id", ondelete="CASCADE"), primary_key=True
    )
    breach_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class PeriodReport(Base):
    """A closed period's report as it was built at the close, in every format (0013)."""

    __tablename__ = "period_reports"

    agreement: Mapped[str] = mapped_column(String(253), primary_key=True)
    period_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period_end: Mapped[int] = mapped_column(BigInteger, nullable=False)
    label: Mapped[str] = mapped_column(String(32), nullable=False)
    built_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    json: Mapped[str] = mapped_column(Text, nullable=False)
    csv: Mapped[str] = mapped_column(Text, nullable=False)
    html: Mapped[str] = mapped_column(Text, nullable=False)


class SliRollup(Base):
    """Good and valid events of one (objective, group) in one minute of event time
    (``minute`` = epoch ms of its start). Written by the evaluator in the checkpoint
    transaction, so every counted event is in exactly one rollup row; for reports and
    for rebuilding windows on a definition change. ``fingerprint``: what the objective
    measured (selection, good rule, grouping; ``""`` for rows older than the column),
    so rows counted under an earlier definition are told apart."""

    __tablename__ = "evaluator_sli_rollups"

    objective_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    group_key: Mapped[str] = mapped_column(String(2048), primary_key=True)
    group: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    good: Mapped[int] = mapped_column(BigInteger, nullable=False)
    valid: Mapped[int] = mapped_column(BigInteger, nullable=False)


class NotificationGroupFlush(Base):
    """What one flush of a notification group sent: the group's alerts at that instant
    (``document``), delivered as one ``deliveries`` row ``breach_id='flush:<id>'``."""

    __tablename__ = "notification_group_flushes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    receiver: Mapped[str] = mapped_column(String(253), nullable=False)
    group_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    flush_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)

    __table_args__ = (
        UniqueConstraint("receiver", "group_key", "flush_at", name="uq_notification_group_flush"),
    )


class ApiKeyRecord(Base):
    """An API key: its SHA-256 digest (never the key), scopes, limits and life cycle."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    rate_per_s: Mapped[float | None] = mapped_column(Float)
    burst: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(256), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(256))
