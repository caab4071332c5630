"""Definitions in PostgreSQL: apply (idempotent, versioned, with history), single
document operations for the REST API, and the catalog services load.

Every change (create, change, delete) writes a new row to ``definition_versions``
with author, time and reason; ``definitions`` holds the current version. Version
numbers of a name never repeat, even across a delete and a re-create, so a version
is a sound ETag. Writers serialize on one transaction-scoped advisory lock so that
reference checks see a stable set; every change is announced on
:data:`CHANGES_CHANNEL` when the transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.definitions.exceptions import (
    AlreadyExists,
    NotFound,
    StillReferenced,
    VersionMismatch,
)
from shared.definitions.load import (
    DefinitionError,
    DefinitionsInvalid,
    Located,
    check_set,
    validate_model,
)
from shared.definitions.model import Agreement, Document, Receiver
from shared.definitions.refs import references
from shared.models import Definition, DefinitionVersion

Change = Literal["created", "changed", "unchanged", "deleted"]

#: PostgreSQL NOTIFY channel announcing that definitions changed (payload: "kind/name").
CHANGES_CHANNEL = "slawatch_definitions"
#: Advisory lock every definitions writer holds until its transaction ends.
WRITE_LOCK_ID = 0x534C4144  # "SLAD"
DEFAULT_AUTHOR = "slawatch"


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    change: Change
    version: int
    #: for ``changed``: the field paths that differ (``spec.objectives[0].target``)
    fields: tuple[str, ...] = ()


def changed_paths(old: object, new: object, path: str = "") -> list[str]:
    """Field paths where two JSON values differ; a whole list when its length differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            here = f"{path}.{key}" if path else str(key)
            out.extend(changed_paths(old.get(key), new.get(key), here))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            p
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for p in changed_paths(a, b, f"{path}[{i}]")
        ]
    return [] if old == new else [path]


@dataclass(frozen=True)
class Stored:
    """The current version of one definition."""

    kind: str
    name: str
    version: int
    document: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class VersionInfo:
    """One entry of a definition's history; ``document`` is None for a deletion."""

    kind: str
    name: str
    version: int
    change: str
    author: str
    reason: str | None
    created_at: datetime
    document: dict[str, Any] | None


def as_json(document: Document) -> dict[str, object]:
    return document.model_dump(mode="json", by_alias=True, exclude_none=True)


async def _lock(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": WRITE_LOCK_ID})


async def stored_documents(session: AsyncSession) -> list[Document]:
    """Every stored definition that still validates (for reference checks)."""
    return _present(await _stored_documents(session))


async def _stored_documents(session: AsyncSession) -> dict[tuple[str, str], Document | None]:
    """Every stored definition; None for one that no longer validates (kept by name)."""
    rows = (await session.execute(select(Definition))).scalars().all()
    out: dict[tuple[str, str], Document | None] = {}
    for row in rows:
        try:
            out[(row.kind, row.name)] = validate_model(row.document, f"db:{row.kind}/{row.name}")
        except DefinitionsInvalid:
            out[(row.kind, row.name)] = None
    return out


async def _next_version(session: AsyncSession, kind: str, name: str) -> int:
    latest = await session.scalar(
        select(func.max(DefinitionVersion.version)).where(
            DefinitionVersion.kind == kind, DefinitionVersion.name == name
        )
    )
    current = await session.scalar(
        select(Definition.version).where(Definition.kind == kind, Definition.name == name)
    )
    return max(latest or 0, current or 0) + 1


def _record(
    kind: str,
    name: str,
    version: int,
    change: Change,
    document: dict[str, Any] | None,
    author: str,
    reason: str | None,
) -> DefinitionVersion:
    return DefinitionVersion(
        kind=kind,
        name=name,
        version=version,
        change=change,
        document=document,
        author=author,
        reason=reason,
    )


def _located(documents: Sequence[Document | Located]) -> list[Located]:
    return [
        d if isinstance(d, Located) else Located(d, f"{d.kind}/{d.metadata.name}", 0)
        for d in documents
    ]


async def apply(
    session: AsyncSession,
    documents: Sequence[Document | Located],
    *,
    author: str = DEFAULT_AUTHOR,
    reason: str | None = None,
    prune: bool = False,
    check: bool = True,
) -> list[Applied]:
    """Store each document; an unchanged one keeps its version. Caller commits.

    ``prune``: delete every stored definition not among ``documents``.
    ``check``: refuse (:class:`DefinitionsInvalid`) duplicates and references that
    resolve neither among ``documents`` nor among the stored definitions that remain.
    Results: one per document in order, then the deletions.
    """
    await _lock(session)
    located = _located(documents)
    stored = await _stored_documents(session)
    wanted = {(item.document.kind, item.document.metadata.name) for item in located}
    doomed = sorted(key for key in stored if prune and key not in wanted)
    if check:
        remaining = [d for key, d in stored.items() if d is not None and key not in doomed]
        errors = check_set(located, remaining)
        if errors:
            raise DefinitionsInvalid(errors)
    results: list[Applied] = []
    for item in located:
        doc = item.document
        results.append(await _put(session, doc, author=author, reason=reason))
    for kind, name in doomed:
        results.append(await _delete(session, kind, name, author=author, reason=reason))
    await session.flush()
    for result in results:
        if result.change != "unchanged":
            await notify_change(session, f"{result.kind}/{result.name}")
    return results


async def _put(session: AsyncSession, doc: Document, *, author: str, reason: str | None) -> Applied:
    body = as_json(doc)
    kind, name = doc.kind, doc.metadata.name
    row = await session.get(Definition, (kind, name), with_for_update=True)
    if row is not None and row.document == body:
        return Applied(kind, name, "unchanged", row.version)
    version = await _next_version(session, kind, name)
    change: Change = "created" if row is None else "changed"
    fields: tuple[str, ...] = ()
    if row is None:
        session.add(Definition(kind=kind, name=name, version=version, document=body))
    else:
        fields = tuple(changed_paths(row.document, body))
        row.version = version
        row.document = body
        row.updated_at = func.now()
    session.add(_record(kind, name, version, change, body, author, reason))
    return Applied(kind, name, change, version, fields)


async def _delete(
    session: AsyncSession, kind: str, name: str, *, author: str, reason: str | None
) -> Applied:
    version = await _next_version(session, kind, name)
    await session.execute(
        delete(Definition).where(Definition.kind == kind, Definition.name == name)
    )
    session.add(_record(kind, name, version, "deleted", None, author, reason))
    return Applied(kind, name, "deleted", version)


async def notify_change(session: AsyncSession, what: str) -> None:
    """Announce a change; PostgreSQL delivers it to listeners when the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :what)"), {"channel": CHANGES_CHANNEL, "what": what}
    )


# -- single documents (REST) ----------------------------------------------------------


async def get(session: AsyncSession, kind: str, name: str) -> Stored:
    row = await session.get(Definition, (kind, name))
    if row is None:
        raise NotFound(kind, name)
    return Stored(row.kind, row.name, row.version, row.document, row.updated_at)


async def put(
    session: AsyncSession,
    document: Document,
    *,
    author: str = DEFAULT_AUTHOR,
    reason: str | None = None,
    expected_version: int | None = None,
    create_only: bool = False,
) -> Applied:
    """Create or replace one document. ``expected_version``: refuse
    (:class:`VersionMismatch`) unless it is the current version. Caller commits."""
    await _lock(session)
    kind, name = document.kind, document.metadata.name
    current = await session.scalar(
        select(Definition.version).where(Definition.kind == kind, Definition.name == name)
    )
    if create_only and current is not None:
        raise AlreadyExists(kind, name, current)
    if expected_version is not None and current != expected_version:
        raise VersionMismatch(kind, name, expected_version, current)
    stored = await _stored_documents(session)
    errors = check_set([Located(document, f"{kind}/{name}", 0)], _present(stored))
    if errors:
        raise DefinitionsInvalid(errors)
    result = await _put(session, document, author=author, reason=reason)
    await session.flush()
    if result.change != "unchanged":
        await notify_change(session, f"{kind}/{name}")
    return result


async def remove(
    session: AsyncSession,
    kind: str,
    name: str,
    *,
    author: str = DEFAULT_AUTHOR,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Applied:
    """Delete one document; refused while another document refers to it. Caller commits."""
    await _lock(session)
    current = await session.scalar(
        select(Definition.version).where(Definition.kind == kind, Definition.name == name)
    )
    if current is None:
        raise NotFound(kind, name)
    if expected_version is not None and current != expected_version:
        raise VersionMismatch(kind, name, expected_version, current)
    stored = await _stored_documents(session)
    others = [d for key, d in stored.items() if d is not None and key != (kind, name)]
    still = _referrers(others, kind, name)
    if still:
        raise StillReferenced(kind, name, still)
    result = await _delete(session, kind, name, author=author, reason=reason)
    await session.flush()
    await notify_change(session, f"{kind}/{name}")
    return result


def _present(stored: dict[tuple[str, str], Document | None]) -> list[Document]:
    return [d for d in stored.values() if d is not None]


def _referrers(documents: Iterable[Document], kind: str, name: str) -> list[str]:
    """Documents with a reference to ``kind/name`` that would dangle without it.

    A soft reference dangles only if ``kind/name`` is the last of its kind."""
    docs = list(documents)
    last_of_kind = not any(d.kind == kind for d in docs)
    return sorted(
        {
            f"{d.kind}/{d.metadata.name}"
            for d in docs
            for ref in references(d)
            if ref.kind == kind and ref.name == name and not (ref.soft and last_of_kind)
        }
    )


async def list_documents(
    session: AsyncSession,
    kind: str,
    *,
    limit: int = 100,
    after: str | None = None,
    labels: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
    name_prefix: str | None = None,
) -> list[Stored]:
    """One page of ``kind`` by name; ``after``: the last name of the previous page.

    ``labels``: equality on ``metadata.labels``; ``fields``: equality on top-level
    ``spec`` fields (text, number or boolean, compared as text)."""
    query = select(Definition).where(Definition.kind == kind)
    if after is not None:
        query = query.where(Definition.name > after)
    if name_prefix:
        escaped = name_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Definition.name.like(f"{escaped}%"))
    for key, value in (labels or {}).items():
        query = query.where(Definition.document["metadata"]["labels"][key].astext == value)
    for key, value in (fields or {}).items():
        query = query.where(Definition.document["spec"][key].astext == value)
    rows = (await session.execute(query.order_by(Definition.name).limit(limit))).scalars()
    return [Stored(r.kind, r.name, r.version, r.document, r.updated_at) for r in rows]


async def history(session: AsyncSession, kind: str, name: str) -> list[VersionInfo]:
    """Every version of ``kind/name``, oldest first (empty if it never existed)."""
    rows = (
        await session.execute(
            select(DefinitionVersion)
            .where(DefinitionVersion.kind == kind, DefinitionVersion.name == name)
            .order_by(DefinitionVersion.version)
        )
    ).scalars()
    return [
        VersionInfo(
            r.kind, r.name, r.version, r.change, r.author, r.reason, r.created_at, r.document
        )
        for r in rows
    ]


# -- the catalog services load --------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """Every stored definition: ``by_kind[kind][name]``; agreements and receivers also
    as attributes (the evaluator and notifier read those)."""

    agreements: dict[str, Agreement]
    receivers: dict[str, Receiver]
    by_kind: dict[str, dict[str, Document]] = field(default_factory=dict)

    def of(self, kind: str) -> dict[str, Document]:
        """Every document of ``kind`` by name (also for catalogs built by hand)."""
        if kind in self.by_kind:
            return self.by_kind[kind]
        legacy: dict[str, dict[str, Agreement] | dict[str, Receiver]] = {
            "Agreement": self.agreements,
            "Receiver": self.receivers,
        }
        return dict(legacy.get(kind, {}))


async def load_catalog(session: AsyncSession) -> Catalog:
    """Every stored definition. Raises :class:`DefinitionsInvalid` if one no longer
    validates (watchers then keep their previous catalog)."""
    rows = (await session.execute(select(Definition))).scalars().all()
    by_kind: dict[str, dict[str, Document]] = {}
    errors: list[DefinitionError] = []
    for row in rows:
        try:
            doc = validate_model(row.document, f"db:{row.kind}/{row.name}")
        except DefinitionsInvalid as exc:
            errors.extend(exc.errors)
            continue
        by_kind.setdefault(doc.kind, {})[doc.metadata.name] = doc
    if errors:
        raise DefinitionsInvalid(errors)
    agreements = {n: d for n, d in by_kind.get("Agreement", {}).items() if isinstance(d, Agreement)}
    receivers = {n: d for n, d in by_kind.get("Receiver", {}).items() if isinstance(d, Receiver)}
    return Catalog(agreements, receivers, by_kind)
