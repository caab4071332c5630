"""What the engine needs from any compiled objective, whatever its kind.

A *compiled objective* is immutable and shared; a *shard* is its mutable state
within one partition (one entry per group), so that state moves with the partition.
The engine owns one shard per (partition, objective).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shared.schemas import Breach, Event


@dataclass(frozen=True)
class GroupStatus:
    """The present state of one group of an objective, for the status API."""

    group: dict[str, str]
    window: str
    target: float
    sli: float | None
    good: int
    valid: int
    active_breach_id: str | None
    opened_at: int | None
    clock: int | None


class Shard(Protocol):
    """One objective's state within one partition."""

    def on_event(self, event: Event) -> list[Breach]:
        """Count a selected, not-late event; return the lifecycle events it causes."""
        ...

    def advance(self, to_ms: int) -> list[Breach]:
        """Let event time pass to ``to_ms`` for every group (windows expire, timers fire)."""
        ...

    def dump(self) -> dict[str, Any]:
        """Plain data for the snapshot (orjson)."""
        ...

    def status(self) -> list[GroupStatus]: ...

    def open_breaches(self) -> int: ...


class CompiledObjective(Protocol):
    """An objective ready to evaluate events."""

    @property
    def objective_id(self) -> str:
        """``"<agreement>/<objective>"``."""
        ...

    @property
    def service(self) -> str: ...

    @property
    def window_label(self) -> str:
        """The window as written in the definition (metric label)."""
        ...

    @property
    def grouped(self) -> bool:
        """Whether the objective groups by attributes (unbounded label set)."""
        ...

    def matches(self, event: Event) -> bool:
        """Whether the event is selected (service, types, attribute matchers)."""
        ...

    def new_shard(self) -> Shard: ...

    def load_shard(self, data: dict[str, Any]) -> Shard:
        """Rebuild a shard from :meth:`Shard.dump`; ``ValueError`` if it does not fit."""
        ...
