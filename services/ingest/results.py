"""Per-item results of ``POST /v1/events`` and the decision on the response.

Given the rejected items and the publish outcome of every valid event:

* nothing valid → 422 problem with every item's errors;
* valid events, none acknowledged by the broker → 503 problem;
* otherwise → 202 with ``accepted`` / ``rejected`` / ``failed`` counts and one
  result per item, in item order; an item whose id was acknowledged a moment ago
  (``services.ingest.dedup``) is ``accepted`` with ``"duplicate": true``.
  ``failed`` items were valid but not acknowledged: the client should send them
  again (with the same ``id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from services.ingest import problems
from services.ingest.items import FieldError, Rejected
from services.ingest.problems import Problem
from shared.schemas import Event


@dataclass(frozen=True)
class Published:
    """A valid event at its item index, with the broker's verdict (``None`` = acknowledged)."""

    index: int
    event: Event
    error: str | None
    duplicate: bool = False


def failed_rejection(published: Published) -> Rejected:
    """A valid event the broker did not acknowledge, as a per-item rejection."""
    message = f"not stored, retry: {published.error}"
    return Rejected(published.index, "publish_failed", (FieldError(None, message),))


def decide(
    rejected: Sequence[Rejected], published: Sequence[Published]
) -> Problem | dict[str, Any]:
    """The 202 body, or the problem for the whole request."""
    if not published:
        return problems.invalid_events(rejected)
    accepted = [p for p in published if p.error is None]
    failed = [(p, failed_rejection(p)) for p in published if p.error is not None]
    if not accepted:
        return problems.unavailable([*rejected, *(f for _, f in failed)])
    results: list[tuple[int, dict[str, Any]]] = [(p.index, _accepted_body(p)) for p in accepted]
    results.extend((r.index, _item_body("rejected", r)) for r in rejected)
    results.extend((p.index, _item_body("failed", f) | {"id": p.event.id}) for p, f in failed)
    results.sort(key=lambda pair: pair[0])
    return {
        "accepted": len(accepted),
        "rejected": len(rejected),
        "failed": len(failed),
        "results": [body for _, body in results],
    }


def _accepted_body(published: Published) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": published.index,
        "status": "accepted",
        "id": published.event.id,
    }
    if published.duplicate:
        body["duplicate"] = True
    return body


def _item_body(status: str, rejection: Rejected) -> dict[str, Any]:
    return {
        "index": rejection.index,
        "status": status,
        "errors": [{"field": e.field, "message": e.message} for e in rejection.errors],
    }


class ItemErrorModel(BaseModel):
    """OpenAPI shape: what is wrong with one item."""

    field: str | None = Field(description="dotted field path; null: the item as a whole")
    message: str


class AcceptedItem(BaseModel):
    """OpenAPI shape: an item the broker acknowledged."""

    index: int
    status: Literal["accepted"]
    id: str = Field(description="the event id (generated when the item had none)")
    duplicate: bool = Field(
        default=False, description="true: acknowledged moments ago already; not produced again"
    )


class RejectedItem(BaseModel):
    """OpenAPI shape: an invalid item (not retried, not dead-lettered)."""

    index: int
    status: Literal["rejected"]
    errors: list[ItemErrorModel]


class FailedItem(BaseModel):
    """OpenAPI shape: a valid item the broker did not acknowledge; send it again."""

    index: int
    status: Literal["failed"]
    id: str
    errors: list[ItemErrorModel]


class IngestResponse(BaseModel):
    """OpenAPI shape of the 202 body."""

    accepted: int
    rejected: int
    failed: int
    results: list[
        Annotated[AcceptedItem | RejectedItem | FailedItem, Field(discriminator="status")]
    ]
