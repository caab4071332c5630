"""Acknowledging a breach (one transaction), by API or by signed link.

The first acknowledgement wins (a second returns the first). A new one:
1. stores ``breach_acks``;
2. cancels the breach's pending escalation steps (an ack stops escalation);
3. if the breach is still open, logs a ``breach.acknowledged`` event and queues it
   for every receiver notified of the opening (PagerDuty turns it into
   ``acknowledge``; chat and mail say who acknowledged; webhooks get the breach with
   ``X-Slawatch-Kind: breach.acknowledged``; Alertmanager just gets the alert again).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import groups, outbox
from services.notifier.message import ACKNOWLEDGED
from shared.models import BreachAck, BreachEventRecord, BreachRecord
from shared.schemas import Breach


@dataclass(frozen=True)
class AckOutcome:
    found: bool
    created: bool = False
    acked_by: str | None = None
    comment: str | None = None
    at: int | None = None
    deliveries: int = 0


async def acknowledge(
    session: AsyncSession,
    breach_id: str,
    by: str,
    comment: str | None,
    via: str,
    now_ms: int,
    actor: str | None = None,
) -> AckOutcome:
    """Steps 1 to 3 inside the caller's transaction. ``actor``: the API key that
    acknowledged (``ack link`` for a signed link), kept for the audit trail."""
    breach = await session.get(BreachRecord, breach_id, with_for_update=True)
    if breach is None:
        return AckOutcome(found=False)
    inserted = await session.execute(
        insert(BreachAck)
        .values(breach_id=breach_id, acked_by=by, comment=comment, via=via, at=now_ms, actor=actor)
        .on_conflict_do_nothing()
        .returning(BreachAck.breach_id)
    )
    if inserted.first() is None:
        existing = await session.get(BreachAck, breach_id)
        assert existing is not None
        return AckOutcome(True, False, existing.acked_by, existing.comment, existing.at)
    await outbox.cancel_escalations(session, breach_id, f"acknowledged by {by}")
    count = 0
    if breach.status == "open":
        payload = breach.last_event
        await session.execute(
            insert(BreachEventRecord)
            .values(breach_id=breach_id, kind=ACKNOWLEDGED, at=now_ms, payload=payload)
            .on_conflict_do_nothing()
        )
        receivers = await outbox.notified_receivers(session, breach_id)
        held = await groups.holding(session, breach_id)
        event = Breach.model_validate(payload)
        for status, names in (
            ("pending", [r for r in receivers if r not in held]),
            (groups.GROUPED, [r for r in receivers if r in held]),  # with its group's flush
        ):
            count += await outbox.enqueue(
                session, event, names, now_ms, kind=ACKNOWLEDGED, at=now_ms, status=status
            )
    return AckOutcome(True, True, by, comment, now_ms, count)
