"""Definitions in PostgreSQL: apply (idempotent, versioned) and load."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.definitions.load import parse_document
from shared.definitions.model import Agreement, Document, Receiver
from shared.models import Definition

Change = Literal["created", "changed", "unchanged"]

#: PostgreSQL NOTIFY channel announcing that definitions changed (payload: "kind/name").
CHANGES_CHANNEL = "slawatch_definitions"


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    change: Change
    version: int


def as_json(document: Document) -> dict[str, object]:
    return document.model_dump(mode="json", by_alias=True, exclude_none=True)


async def apply(session: AsyncSession, documents: Sequence[Document]) -> list[Applied]:
    """Store each document; an unchanged one keeps its version. Caller commits."""
    results: list[Applied] = []
    for doc in documents:
        body = as_json(doc)
        row = await session.get(Definition, (doc.kind, doc.metadata.name), with_for_update=True)
        if row is None:
            session.add(Definition(kind=doc.kind, name=doc.metadata.name, version=1, document=body))
            results.append(Applied(doc.kind, doc.metadata.name, "created", 1))
        elif row.document == body:
            results.append(Applied(doc.kind, doc.metadata.name, "unchanged", row.version))
        else:
            row.version += 1
            row.document = body
            row.updated_at = func.now()
            results.append(Applied(doc.kind, doc.metadata.name, "changed", row.version))
    await session.flush()
    for result in results:
        if result.change != "unchanged":
            await notify_change(session, f"{result.kind}/{result.name}")
    return results


async def notify_change(session: AsyncSession, what: str) -> None:
    """Announce a change; PostgreSQL delivers it to listeners when the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :what)"), {"channel": CHANGES_CHANNEL, "what": what}
    )


@dataclass(frozen=True)
class Catalog:
    """Every stored definition, by kind."""

    agreements: dict[str, Agreement]
    receivers: dict[str, Receiver]


async def load_catalog(session: AsyncSession) -> Catalog:
    rows = (await session.execute(select(Definition))).scalars().all()
    agreements: dict[str, Agreement] = {}
    receivers: dict[str, Receiver] = {}
    for row in rows:
        doc = parse_document(row.document, f"db:{row.kind}/{row.name}")
        if isinstance(doc, Agreement):
            agreements[doc.metadata.name] = doc
        elif isinstance(doc, Receiver):
            receivers[doc.metadata.name] = doc
    return Catalog(agreements, receivers)
