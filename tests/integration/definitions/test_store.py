"""The definition store on real PostgreSQL: idempotent apply with a diff, pruning,
version history, reference checks against what is stored, optimistic concurrency."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.definitions.exceptions import (
    AlreadyExists,
    NotFound,
    StillReferenced,
    VersionMismatch,
)
from shared.definitions.load import DefinitionsInvalid, parse_document
from shared.definitions.model import Document
from shared.definitions.store import (
    apply,
    get,
    history,
    list_documents,
    load_catalog,
    put,
    remove,
)

pytestmark = pytest.mark.integration


def receiver(name: str = "hook", url: str = "http://127.0.0.1:1/a") -> Document:
    return parse_document(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Receiver",
            "metadata": {"name": name},
            "spec": {"type": "webhook", "url": url},
        }
    )


def agreement(target: float = 0.99, receiver: str = "hook", **spec: Any) -> Document:
    return parse_document(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Agreement",
            "metadata": {"name": "shop", "labels": {"team": "payments"}},
            "spec": {
                "type": "SLA",
                "objectives": [
                    {
                        "name": "availability",
                        "kind": "ratio",
                        "service": "checkout",
                        "good": {"outcome": "good"},
                        "target": target,
                        "window": "1h",
                    }
                ],
                "notify": [{"receivers": [receiver]}],
                **spec,
            },
        }
    )


async def test_apply_is_idempotent_and_reports_a_diff(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        first = await apply(session, [receiver(), agreement()], author="ana", reason="initial")
    assert [(r.kind, r.change, r.version) for r in first] == [
        ("Receiver", "created", 1),
        ("Agreement", "created", 1),
    ]
    async with sessions() as session, session.begin():
        again = await apply(session, [receiver(), agreement()], author="ana")
    assert [r.change for r in again] == ["unchanged", "unchanged"]
    assert [r.version for r in again] == [1, 1]
    async with sessions() as session, session.begin():
        tighter = await apply(session, [receiver(), agreement(0.999)], author="bo")
    assert [(r.change, r.version) for r in tighter] == [("unchanged", 1), ("changed", 2)]
    assert tighter[1].fields == ("spec.objectives[0].target",)


async def test_prune_deletes_what_the_files_no_longer_hold(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        await apply(session, [receiver(), receiver("spare"), agreement()])
    async with sessions() as session, session.begin():
        results = await apply(session, [receiver(), agreement()], prune=True, author="ci")
    assert [(r.name, r.change) for r in results] == [
        ("hook", "unchanged"),
        ("shop", "unchanged"),
        ("spare", "deleted"),
    ]
    async with sessions() as session:
        catalog = await load_catalog(session)
    assert sorted(catalog.receivers) == ["hook"]


async def test_dry_run_by_rollback_stores_nothing(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session:
        results = await apply(session, [receiver()])
        await session.rollback()
    assert results[0].change == "created"
    async with sessions() as session:
        assert (await load_catalog(session)).receivers == {}


async def test_history_keeps_every_version_with_author_and_reason(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    for target, author in ((0.99, "ana"), (0.995, "bo"), (0.999, "cy")):
        async with sessions() as session, session.begin():
            await apply(
                session, [receiver(), agreement(target)], author=author, reason=f"to {target}"
            )
    async with sessions() as session, session.begin():
        await apply(session, [receiver()], prune=True, author="dee", reason="retired")
    async with sessions() as session, session.begin():
        await apply(session, [receiver(), agreement(0.9)], author="eve")
    async with sessions() as session:
        versions = await history(session, "Agreement", "shop")
        current = await get(session, "Agreement", "shop")
    assert [(v.version, v.change, v.author) for v in versions] == [
        (1, "created", "ana"),
        (2, "changed", "bo"),
        (3, "changed", "cy"),
        (4, "deleted", "dee"),
        (5, "created", "eve"),
    ]
    assert versions[1].reason == "to 0.995"
    assert versions[1].document is not None
    assert versions[1].document["spec"]["objectives"][0]["target"] == 0.995
    assert versions[3].document is None
    assert versions[0].created_at <= versions[-1].created_at
    assert current.version == 5  # never reused: a version is a sound ETag


async def test_references_resolve_against_stored_definitions(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        await apply(session, [receiver()])
    async with sessions() as session, session.begin():  # the receiver is already stored
        assert (await apply(session, [agreement()]))[0].change == "created"
    async with sessions() as session:
        with pytest.raises(DefinitionsInvalid) as info:
            await apply(session, [agreement(receiver="hooky")])
    error = info.value.errors[0]
    assert (error.path, error.message) == (
        "spec.notify[0].receivers[0]",
        "no Receiver named 'hooky'; did you mean 'hook'?",
    )
    async with sessions() as session:  # pruning the receiver would leave the route dangling
        with pytest.raises(DefinitionsInvalid):
            await apply(session, [agreement()], prune=True)


async def test_put_with_expected_version(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        created = await put(session, receiver(), create_only=True, author="ana")
    assert (created.change, created.version) == ("created", 1)
    async with sessions() as session:
        with pytest.raises(AlreadyExists):
            await put(session, receiver(), create_only=True)
    async with sessions() as session, session.begin():
        changed = await put(session, receiver(url="http://127.0.0.1:1/b"), expected_version=1)
    assert (changed.change, changed.version) == ("changed", 2)
    async with sessions() as session:  # a second editor still holding version 1
        with pytest.raises(VersionMismatch) as info:
            await put(session, receiver(url="http://127.0.0.1:1/c"), expected_version=1)
    assert (info.value.expected, info.value.current) == (1, 2)


async def test_remove_refuses_while_referenced(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        await apply(session, [receiver(), agreement()])
    async with sessions() as session:
        with pytest.raises(StillReferenced) as info:
            await remove(session, "Receiver", "hook")
    assert info.value.referrers == ["Agreement/shop"]
    async with sessions() as session, session.begin():
        await remove(session, "Agreement", "shop", author="ana", reason="contract ended")
        await remove(session, "Receiver", "hook")
    async with sessions() as session:
        with pytest.raises(NotFound):
            await remove(session, "Receiver", "hook")


async def test_list_pages_and_filters(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        await apply(session, [receiver(f"r{i}") for i in range(5)] + [agreement(receiver="r0")])
    async with sessions() as session:
        page1 = await list_documents(session, "Receiver", limit=2)
        page2 = await list_documents(session, "Receiver", limit=2, after=page1[-1].name)
        by_label = await list_documents(session, "Agreement", labels={"team": "payments"})
        by_field = await list_documents(session, "Agreement", fields={"type": "OLA"})
    assert [s.name for s in page1 + page2] == ["r0", "r1", "r2", "r3"]
    assert [s.name for s in by_label] == ["shop"]
    assert by_field == []


async def test_the_examples_apply_idempotently(engine: AsyncEngine) -> None:
    from pathlib import Path

    from shared.definitions.load import load_located

    located = load_located([Path(__file__).parents[3] / "examples"])
    sessions = db.sessions(engine)
    async with sessions() as session, session.begin():
        first = await apply(session, located, author="ci")
    async with sessions() as session, session.begin():
        second = await apply(session, located, author="ci", prune=True)
    assert {r.change for r in first} == {"created"}
    assert {r.change for r in second} == {"unchanged"}
    async with sessions() as session:
        catalog = await load_catalog(session)
    assert "acme-storefront" in catalog.agreements
    assert set(catalog.of("Party")) >= {"shopco", "acme", "payflow", "platform-team"}
