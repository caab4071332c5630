"""Per-kind routes of the configuration API.

For a kind ``K`` with resource name ``r`` (``Agreement`` → ``agreements``,
``MaintenanceWindow`` → ``maintenance-windows``):

======  ==============================  ==========================================
GET     /v1/r                           list: ``limit`` (≤ 500), ``after`` (cursor:
                                        the ``next`` of the previous page),
                                        ``label=key=value`` (repeatable),
                                        ``prefix`` (name), any other parameter
                                        filters a top-level spec field
                                        (``?type=SLA&provider=shopco``)
POST    /v1/r                           create (201; 409 if the name exists)
POST    /v1/r/validate                  validate without storing (200 or 422)
GET     /v1/r/{name}                    the document; ``ETag: "<version>"``
PUT     /v1/r/{name}                    create or replace; ``If-Match`` → 412 when
                                        stale, ``If-None-Match: *`` → create only
DELETE  /v1/r/{name}                    204; ``If-Match`` honoured; 409 while
                                        another document refers to it
GET     /v1/r/{name}/versions           the history: version, change, author,
                                        time, reason
GET     /v1/r/{name}/versions/{n}       one past version's document
======  ==============================  ==========================================

Also ``GET /v1/schema`` (any document) and ``GET /v1/schema/{kind}``, and
``POST /v1/definitions/validate`` for a multi-document YAML body.

Reads need an API key with ``config:read``, writes ``config:write``. Bodies are JSON
or YAML (``application/yaml``). The history's author is the key's name (with the
person an ``X-Slawatch-Author`` header names: ``ci (ana)``), the reason comes from
``X-Slawatch-Reason`` or ``?reason=``; every change notifies running services.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, create_model
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.config import bodies
from services.ingest.config.objectives import objectives_router
from services.ingest.config.problems import documented, invalid, problem
from shared.apikeys.scopes import Scope
from shared.definitions import store
from shared.definitions.exceptions import (
    AlreadyExists,
    NotFound,
    StillReferenced,
    VersionMismatch,
)
from shared.definitions.kinds.common import NAME_PATTERN
from shared.definitions.load import (
    DefinitionError,
    DefinitionsInvalid,
    Located,
    check_set,
    parse_document,
    parse_text,
)
from shared.definitions.model import KINDS, Document
from shared.definitions.schema import all_schema, kind_schema
from shared.http.auth import require
from shared.http.problems import HttpProblem, Problem

YAML_TYPES = bodies.YAML_TYPES
MAX_LIMIT = 500
_FILTER_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")
_RESERVED = {"limit", "after", "label", "prefix", "reason"}
#: served by the source runners (services.ingest.source_api), whose router comes first:
#: the list of Source documents would be documented there but never answered
SERVED_ELSEWHERE = {("GET", "/sources")}
#: a document name as the model takes it: any other name cannot exist (422, not 404)
DocName = Annotated[str, Path(pattern=NAME_PATTERN)]


class Applied(BaseModel):
    """The answer of a create or replace."""

    kind: str
    name: str
    change: Literal["created", "changed", "unchanged"]
    version: int


class Valid(BaseModel):
    """The answer of a validation."""

    valid: Literal[True]
    kind: str | None = None
    name: str | None = None
    documents: int | None = None


class VersionEntry(BaseModel):
    version: int
    change: str
    author: str | None
    reason: str | None
    time: str


class History(BaseModel):
    items: list[VersionEntry]


def _body_doc(schema: dict[str, Any], media_types: tuple[str, ...]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of a route that reads its body itself (:mod:`.bodies`)."""
    content = {media: {"schema": schema} for media in media_types}
    return {"requestBody": {"required": True, "content": content}}


def resource_name(kind: str) -> str:
    """``MaintenanceWindow`` → ``maintenance-windows``; ``Party`` → ``parties``."""
    words = re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()
    if words.endswith("y") and words[-2:-1] not in "aeiou":
        return words[:-1] + "ies"
    if words.endswith(("s", "x", "ch", "sh")):
        return words + "es"
    return words + "s"


def etag(version: int) -> str:
    return f'"{version}"'


def _if_match(header: str | None) -> tuple[int | None, bool]:
    """(expected version, must exist): ``"3"`` / ``W/"3"`` → (3, True), ``*`` →
    (None, True), absent → (None, False); anything else → (-1, True): matches nothing."""
    if header is None:
        return None, False
    value = header.strip()
    if value == "*":
        return None, True
    value = value.removeprefix("W/").strip('"')
    return (int(value) if value.isdigit() else -1), True


async def _body(request: Request) -> Any | Response:
    # limits applied while reading, YAML through the bounded loader: config.bodies
    return await bodies.decode(request)


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _author(request: Request) -> str:
    """The audit actor: the API key that made the change (set by ``require``), and
    the person an ``X-Slawatch-Author`` header names, if any: ``ci-key (ana)``."""
    actor: str = request.state.principal.name
    claimed = (request.headers.get("x-slawatch-author") or "").strip()
    return (f"{actor} ({claimed})" if claimed and claimed != actor else actor)[:256]


def _reason(request: Request) -> str | None:
    return request.headers.get("x-slawatch-reason") or request.query_params.get("reason")


def _storable(text: str) -> bool:
    """PostgreSQL text and JSONB hold no NUL (the model refuses a lone surrogate)."""
    return "\x00" not in text


def _unstorable(value: object, path: str = "") -> str | None:
    """The dotted path of the first key or string that cannot be stored, or None."""
    if isinstance(value, str):
        return None if _storable(value) else path
    pairs: Any = ()
    if isinstance(value, dict):
        pairs = value.items()
    elif isinstance(value, list):
        pairs = enumerate(value)
    for key, item in pairs:
        if isinstance(key, str) and not _storable(key):
            return f"{path}.{key!a}" if path else ascii(key)
        found = _unstorable(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _storable_query(request: Request) -> None:
    """A NUL in a filter, cursor or reason would reach PostgreSQL: refused first."""
    for key, value in request.query_params.multi_items():
        if not _storable(key) or not _storable(value):
            detail = f"parameter {ascii(key)[:80]}: NUL characters are not accepted"
            raise HttpProblem(Problem(400, "invalid-query", "Invalid query", detail))


def _parse_for(kind: str, raw: object, name: str | None = None) -> Document | Response:
    """The body as a document of ``kind`` (named ``name`` when given)."""
    where = _unstorable(raw)
    if where is not None:
        message = "NUL characters cannot be stored"
        return invalid([DefinitionError("<body>", 0, where, message)])
    if isinstance(raw, dict):
        if raw.get("kind") is None:
            raw = {**raw, "kind": kind}
        if raw.get("kind") != kind:
            return invalid(
                [DefinitionError("<body>", 0, "kind", f"this resource holds {kind} documents")]
            )
        metadata = raw.get("metadata")
        if name is not None and isinstance(metadata, dict) and metadata.get("name") != name:
            return invalid(
                [
                    DefinitionError(
                        "<body>", 0, "metadata.name", f"must be {name!r}, the name in the URL"
                    )
                ]
            )
    try:
        return parse_document(raw, "<body>", 0)
    except DefinitionsInvalid as exc:
        return invalid(exc.errors)


def config_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """Routes for every kind registered now, plus schema, validation and the listing
    of objectives (:mod:`.objectives`)."""
    router = APIRouter(prefix="/v1")
    router.include_router(objectives_router(sessions))

    @router.get(
        "/schema",
        tags=["schema"],
        summary="JSON Schema of any definition document",
        dependencies=[require(Scope.CONFIG_READ)],
    )
    async def schema_all() -> Response:
        return _json(all_schema())

    @router.get(
        "/schema/{kind}",
        tags=["schema"],
        summary="JSON Schema of one kind",
        responses=documented([404, 422]),
        dependencies=[require(Scope.CONFIG_READ)],
    )
    async def schema_one(kind: str) -> Response:
        if kind not in KINDS:
            return problem(404, "not-found", "Unknown kind", f"known: {', '.join(sorted(KINDS))}")
        return _json(kind_schema(kind))

    @router.post(
        "/definitions/validate",
        tags=["definitions"],
        summary="Validate a set of documents (multi-document YAML) without storing it",
        response_model=Valid,
        responses=documented([400, 415, 422]),
        # any text is a YAML stream (an empty one is a valid empty set)
        openapi_extra=_body_doc({"description": "documents separated by ---"}, YAML_TYPES[:1]),
        dependencies=[require(Scope.CONFIG_READ)],
    )
    async def validate_set(request: Request) -> Response:
        raw = await bodies.read(request)
        if isinstance(raw, Response):
            return raw
        text = bodies.text(raw)
        if isinstance(text, Response):
            return text
        located, errors = parse_text(text, "<body>")
        async with sessions() as session:
            stored = await store.stored_documents(session)
        # in document order: a document's reference problems next to its other ones
        errors = sorted(errors + check_set(located, stored), key=lambda e: e.index)
        if errors:
            return invalid(errors)
        return _json({"valid": True, "documents": len(located)})

    for kind in KINDS:
        _add_kind(router, sessions, kind)
    return router


def _add_kind(router: APIRouter, sessions: async_sessionmaker[AsyncSession], kind: str) -> None:
    base = f"/{resource_name(kind)}"
    tags: list[str | Enum] = [resource_name(kind)]

    async def list_items(
        request: Request,
        limit: int = 100,
        after: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    ) -> Response:
        params = request.query_params
        labels: dict[str, str] = {}
        for label in params.getlist("label"):
            key, sep, value = label.partition("=")
            if not sep or not key:
                return problem(
                    400,
                    "invalid-query",
                    "Invalid label filter",
                    f"write label=key=value, not {label!r}",
                )
            labels[key] = value
        fields: dict[str, str] = {}
        for key, value in params.items():
            if key in _RESERVED:
                continue
            if not _FILTER_KEY.match(key):
                return problem(400, "invalid-query", "Invalid filter", f"no spec field {key!r}")
            fields[key] = value
        limit = max(1, min(limit, MAX_LIMIT))
        async with sessions() as session:
            page = await store.list_documents(
                session,
                kind,
                limit=limit + 1,
                after=after,
                labels=labels,
                fields=fields,
                name_prefix=params.get("prefix"),
            )
        more = len(page) > limit
        page = page[:limit]
        return _json(
            {
                "items": [s.document for s in page],
                "next": page[-1].name if more and page else None,
            }
        )

    async def create(request: Request) -> Response:
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        document = _parse_for(kind, raw)
        if isinstance(document, Response):
            return document
        return await _write(request, sessions, document, create_only=True)

    async def validate(request: Request) -> Response:
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        document = _parse_for(kind, raw)
        if isinstance(document, Response):
            return document
        async with sessions() as session:
            stored = await store.stored_documents(session)
        errors = check_set([Located(document, "<body>", 0)], stored)
        if errors:
            return invalid(errors)
        return _json({"valid": True, "kind": kind, "name": document.metadata.name})

    async def get_item(name: DocName) -> Response:
        async with sessions() as session:
            try:
                found = await store.get(session, kind, name)
            except NotFound as exc:
                return problem(404, "not-found", "Not found", str(exc))
        return _json(found.document, headers={"ETag": etag(found.version)})

    async def replace(request: Request, name: DocName) -> Response:
        raw = await _body(request)
        if isinstance(raw, Response):
            return raw
        document = _parse_for(kind, raw, name)
        if isinstance(document, Response):
            return document
        create_only = (request.headers.get("if-none-match") or "").strip() == "*"
        return await _write(request, sessions, document, create_only=create_only)

    async def delete_item(request: Request, name: DocName) -> Response:
        expected, _ = _if_match(request.headers.get("if-match"))
        async with sessions() as session, session.begin():
            try:
                await store.remove(
                    session,
                    kind,
                    name,
                    author=_author(request),
                    reason=_reason(request),
                    expected_version=expected,
                )
            except NotFound as exc:
                return problem(404, "not-found", "Not found", str(exc))
            except VersionMismatch as exc:
                return _stale(exc)
            except StillReferenced as exc:
                return problem(409, "conflict", "Still referenced", str(exc))
        return Response(status_code=204)

    async def versions(name: DocName) -> Response:
        async with sessions() as session:
            found = await store.history(session, kind, name)
        if not found:
            return problem(404, "not-found", "Not found", f"{kind} {name!r} never existed")
        return _json(
            {
                "items": [
                    {
                        "version": v.version,
                        "change": v.change,
                        "author": v.author,
                        "reason": v.reason,
                        "time": v.created_at.isoformat(),
                    }
                    for v in found
                ]
            }
        )

    async def version(name: DocName, number: int) -> Response:
        async with sessions() as session:
            found = [v for v in await store.history(session, kind, name) if v.version == number]
        if not found:
            return problem(
                404, "not-found", "Not found", f"{kind} {name!r} has no version {number}"
            )
        v = found[0]
        return _json(
            {
                "version": v.version,
                "change": v.change,
                "author": v.author,
                "reason": v.reason,
                "time": v.created_at.isoformat(),
                "document": v.document,
            },
            headers={"ETag": etag(v.version)},
        )

    model = KINDS[kind]
    page = create_model(f"{kind}Page", items=(list[model], ...), next=(str | None, ...))  # type: ignore[valid-type]
    document: Any = model | None  # None: a deletion
    past = create_model(f"{kind}Version", __base__=VersionEntry, document=(document, ...))
    body = _body_doc(_document_schema(model), ("application/json", *YAML_TYPES[:1]))
    read, write = require(Scope.CONFIG_READ), require(Scope.CONFIG_WRITE)

    def add(
        path: str,
        endpoint: Any,
        method: str,
        summary: str,
        scope: Any,
        answer: Any,
        statuses: list[int],
        *,
        status: int = 200,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if (method, path) in SERVED_ELSEWHERE:
            return
        answers = documented(statuses)
        if endpoint is replace:  # create or replace
            answers[201] = {"description": f"{kind} created", "model": Applied}
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            tags=tags,
            summary=summary,
            dependencies=[scope, Depends(_storable_query)],
            status_code=status,
            response_model=answer,
            responses=answers,
            openapi_extra=extra,
        )

    # every route: 400 for a NUL in the query (_storable_query), 422 for a bad parameter
    one, changed = f"{base}/{{name}}", [400, 409, 412, 415, 422]
    add(base, list_items, "GET", f"List {kind}s", read, page, [400, 422])
    add(base, create, "POST", f"Create a {kind}", write, Applied, changed, status=201, extra=body)
    add(f"{base}/validate", validate, "POST", f"Validate a {kind}", read, Valid, [400, 415, 422],
        extra=body)  # fmt: skip
    add(one, get_item, "GET", f"Get a {kind}", read, model, [400, 404, 422])
    add(one, replace, "PUT", f"Replace a {kind}", write, Applied, changed, extra=body)
    add(one, delete_item, "DELETE", f"Delete a {kind}", write, None, [400, 404, 409, 412, 422],
        status=204)  # fmt: skip
    add(f"{one}/versions", versions, "GET", f"History of a {kind}", read, History, [400, 404, 422])
    add(f"{one}/versions/{{number}}", version, "GET", f"One past version of a {kind}", read, past,
        [400, 404, 422])  # fmt: skip


def _document_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A kind's JSON Schema as a request body: ``kind`` may be left out (the resource
    names it); the nested schemas are the components its answers register."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    schema["required"] = [name for name in schema.get("required", []) if name != "kind"]
    return schema


async def _write(
    request: Request,
    sessions: async_sessionmaker[AsyncSession],
    document: Document,
    *,
    create_only: bool,
) -> Response:
    expected, must_exist = _if_match(request.headers.get("if-match"))
    async with sessions() as session, session.begin():
        try:
            if must_exist and expected is None:
                found = await store.get(session, document.kind, document.metadata.name)
                expected = found.version
            applied = await store.put(
                session,
                document,
                author=_author(request),
                reason=_reason(request),
                expected_version=expected,
                create_only=create_only,
            )
        except DefinitionsInvalid as exc:
            return invalid(exc.errors)
        except AlreadyExists as exc:
            return problem(409, "conflict", "Already exists", str(exc))
        except NotFound as exc:  # If-Match: * on a missing document
            return problem(412, "precondition-failed", "Precondition failed", str(exc))
        except VersionMismatch as exc:
            return _stale(exc)
    status = 201 if applied.change == "created" else 200
    headers = {"ETag": etag(applied.version)}
    if status == 201:
        headers["Location"] = f"/v1/{resource_name(document.kind)}/{document.metadata.name}"
    return _json(
        {
            "kind": applied.kind,
            "name": applied.name,
            "change": applied.change,
            "version": applied.version,
        },
        status,
        headers,
    )


def _stale(exc: VersionMismatch) -> Response:
    headers = {"ETag": etag(exc.current)} if exc.current is not None else None
    return problem(412, "precondition-failed", "Precondition failed", str(exc), headers=headers)
