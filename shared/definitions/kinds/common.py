"""Pieces every kind uses: the spec base (camelCase in YAML), names, metadata, durations."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.timeutil import parse_duration_ms

API_VERSION = "slawatch/v1"
Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]


class Spec(BaseModel):
    """Base of every spec model: unknown fields rejected, camelCase aliases, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Metadata(Spec):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


def duration(text: str) -> str:
    """Field validator: the text must be a duration such as ``5m``."""
    parse_duration_ms(text)
    return text
