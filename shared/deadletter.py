"""Dead-letter records: what was rejected, why, and where it came from.

Published on ``<prefix>.deadletter`` keyed by the rejecting component, so an
operator can replay or inspect it; consumption never stops on a bad record.
"""

from __future__ import annotations

import base64
from typing import Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict

DEADLETTER_SCHEMA_VERSION: Final = 1

Rejector = Literal["ingest.http", "ingest.raw", "ingest.source", "evaluator", "notifier"]


class DeadLetter(BaseModel):
    """One rejected record. ``original_b64`` holds the original bytes unchanged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = DEADLETTER_SCHEMA_VERSION
    rejected_by: Rejector
    reason: str
    detail: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    at: int
    original_b64: str

    @classmethod
    def of(
        cls,
        rejected_by: Rejector,
        reason: str,
        original: bytes,
        *,
        at: int,
        detail: str | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DeadLetter:
        return cls(
            rejected_by=rejected_by,
            reason=reason,
            detail=detail,
            topic=topic,
            partition=partition,
            offset=offset,
            at=at,
            original_b64=base64.b64encode(original).decode(),
        )

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes) -> DeadLetter:
        return cls.model_validate_json(data)

    @property
    def key(self) -> bytes:
        return self.rejected_by.encode()
