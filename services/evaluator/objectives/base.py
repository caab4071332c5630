"""What the engine needs from any compiled objective, whatever its kind.

A *compiled objective* is immutable and shared; a *shard* is its mutable state
within one partition (one entry per group), so that state moves with the partition.
The engine owns one shard per (partition, objective).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.schemas import Breach, WindowSli, group_key

#: Groups per objective and partition before new groups fold into the overflow group.
MAX_GROUPS = 10_000
#: The value every ``groupBy`` attribute takes in the overflow group.
OVERFLOW = "_overflow"


def capped_group(
    groups: dict[str, Any], group: dict[str, str], key: str, cap: int
) -> tuple[dict[str, str], str, bool]:
    """The group an event counts in, honouring the cap on groups.

    An existing group, or a new one while fewer than ``cap`` are held, is itself. Past
    the cap a *new* group's events count in the overflow group (every attribute
    :data:`OVERFLOW`): they are not lost, the objective still measures them, but per
    group detail is. The third value says whether the event was folded (metric
    ``slawatch_group_overflow_events_total``).
    """
    if key in groups or len(groups) < cap:
        return group, key, False
    folded = dict.fromkeys(group, OVERFLOW)
    return folded, group_key(folded), True


class EventLike(Protocol):
    """What objectives read from an event: :class:`shared.schemas.Event` or the
    consumer's slotted fast-path :class:`services.evaluator.fastevent.FastEvent`."""

    @property
    def id(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def time(self) -> int: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def entity(self) -> str | None: ...
    @property
    def attributes(self) -> dict[str, str]: ...
    @property
    def received_at(self) -> int | None: ...


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
    windows: list[WindowSli] = field(default_factory=list)
    burn_rates: dict[str, float] = field(default_factory=dict)
    budget_remaining: float | None = None
    severity: str | None = None


class CountWindow(Protocol):
    """A sliding window with ``good``/``valid`` counts (ratio and quantile windows)."""

    @property
    def head(self) -> int | None: ...
    @property
    def bucket_ms(self) -> int: ...
    @property
    def good(self) -> int: ...
    @property
    def valid(self) -> int: ...
    @property
    def sli(self) -> float | None: ...
    def advance(self, time_ms: int) -> None: ...
    def add(self, time_ms: int, x: Any, /) -> bool: ...
    def next_expiry_ms(self) -> int | None: ...
    def to_dict(self) -> dict[str, Any]: ...


class Shard(Protocol):
    """One objective's state within one partition."""

    def on_event(self, event: EventLike) -> list[Breach]:
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
    def resolutions(self) -> list[Breach]:
        """``breach.resolved`` for every open breach, without changing the state."""
        ...


class CompiledObjective(Protocol):
    """An objective ready to evaluate events."""

    #: Events folded into the overflow group, since the engine last took the count.
    overflow_events: int
    #: What it was compiled from (see :func:`compile_catalog`); "" when built by hand.
    fingerprint: str
    #: What its counts depend on (not targets or alerting); "" when state cannot carry over.
    measure_fingerprint: str
    #: The event types it takes (empty: any) and whether attribute matchers remain for
    #: :meth:`matches`: the engine's router tests the type itself.
    selection: tuple[frozenset[str], bool]

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

    def matches(self, event: EventLike) -> bool:
        """Whether the event is selected (service, types, attribute matchers)."""
        ...

    def new_shard(self) -> Shard: ...

    def load_shard(self, data: dict[str, Any]) -> Shard:
        """Rebuild a shard from :meth:`Shard.dump`; ``ValueError`` if it does not fit."""
        ...
