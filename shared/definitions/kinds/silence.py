"""Silences and maintenance windows: matchers plus a time range.

A notification whose breach matches (every ``match`` entry holds, with the routing
keys of ``shared.definitions.kinds.policy``) while ``start <= now < end`` is not sent:
it is recorded as ``suppressed``. ``Silence`` is an ad-hoc mute (also created through
the notifier API); ``MaintenanceWindow`` is planned work, and may say that the time
it covers does not count against compliance (``excludeFromCompliance``).

Times are RFC 3339 text (quoted or not in YAML) or epoch ms, stored as epoch ms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.definitions.kinds.common import Metadata, Spec
from shared.timeutil import parse_time_ms


class _WindowSpec(Spec):
    match: dict[str, str] = Field(default_factory=dict)
    start: int
    end: int
    comment: str | None = Field(default=None, max_length=1024)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: object) -> int:
        if isinstance(value, datetime):  # YAML parses unquoted timestamps itself
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return int(aware.timestamp() * 1000)
        return parse_time_ms(value)

    @model_validator(mode="after")
    def _ordered(self) -> _WindowSpec:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")
        return self


class SilenceSpec(_WindowSpec):
    created_by: str | None = Field(default=None, max_length=256)


class MaintenanceWindowSpec(_WindowSpec):
    exclude_from_compliance: bool = False


class Silence(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Silence"]
    metadata: Metadata
    spec: SilenceSpec


class MaintenanceWindow(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["MaintenanceWindow"]
    metadata: Metadata
    spec: MaintenanceWindowSpec
