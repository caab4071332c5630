"""Integration helpers: definitions in the database, bounded polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.definitions.load import parse_document
from shared.definitions.store import apply

T = TypeVar("T")


def agreement_doc(routes: list[dict[str, Any]], name: str = "acme-checkout") -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Agreement",
        "metadata": {"name": name},
        "spec": {
            "type": "SLA",
            "provider": "shopco",
            "consumer": "acme",
            "objectives": [
                {
                    "name": "availability",
                    "kind": "ratio",
                    "service": "checkout",
                    "good": {"outcome": "good"},
                    "target": 0.999,
                    "window": "1h",
                    "groupBy": ["customer"],
                }
            ],
            "notify": routes,
        },
    }


def receiver_doc(name: str, url: str) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": name},
        "spec": {"type": "webhook", "url": url, "headers": {"X-Team": "payments"}},
    }


async def apply_docs(engine: AsyncEngine, *raws: dict[str, Any]) -> None:
    async with db.sessions(engine)() as session:
        await apply(session, [parse_document(raw) for raw in raws])
        await session.commit()


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout_s: float = 10.0, every_s: float = 0.05
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(every_s)
