"""Notification policy of an agreement: routes from breach events to receivers."""

from __future__ import annotations

from pydantic import Field

from shared.definitions.kinds.common import Name, Spec


class Route(Spec):
    """Send matching breach events to receivers; keys are equality matchers on severity,
    service, objective, kind and group attributes."""

    match: dict[str, str] = Field(default_factory=dict)
    receivers: list[Name] = Field(min_length=1)
