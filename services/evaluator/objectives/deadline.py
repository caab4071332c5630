"""The ``deadline`` objective: per entity, a clock that must stop within its target.

Per entity (``event.entity``, within its group), the clock is driven by event types::

    start ──run──▶ pause ──(stopped)──▶ resume ──run──▶ stop
    │◀── used = business time while running (pauses excluded) ──▶│

The target comes from the ``targetBy`` attribute of the start event (``targets``) or
``target``; entities without one are not measured. Time runs in the business time of
the objective's Calendar (:class:`~services.evaluator.business.BusinessClock`).

Timers, due at instants computed from the clock (so a replay fires them at the same
instants and with the same ids, whenever the tick runs): a ``deadline.warning`` when
``used`` reaches each warning fraction, ``breach.opened`` when it reaches the target.
A timer fires when event time passes its instant (an event of the entity, or the
watermark on a tick), and also when an event of the entity other than a stop lands
exactly on it: a stop at the deadline meets the target, while a pause there comes
with the target used up. ``stop`` closes the entity: after the deadline it resolves
the breach; the published window then reports the overrun.

Reported window: ``window`` = the target (e.g. ``15m``), ``sli`` = fraction of the
target used (> 1: overrun; overrun ms = (sli - 1) x target), ``target`` = 1.0,
``good`` = business ms used, ``valid`` = the target in ms.

The breach id is derived from the group, the entity and the start time, so the
warnings, the breach and its resolution of one entity share it. Events of an entity
older than its clock are applied at the clock's time (a clock never runs backwards).
A stop, pause or resume for an unknown entity is ignored; a repeated start too.

Bounded memory, per partition: at most ``max_groups`` groups hold open clocks (the
start of an entity of a new group past that cap counts in the overflow group, every
``groupBy`` attribute ``_overflow``, as in every other objective; the entity's later
events find it there), and at most ``max_open_entities`` clocks are open per group.
At that cap a *start* is refused: the entity is not measured (its later events are
those of an unknown entity, ignored), the clocks already open run on untouched, and
the refusal is counted (``slawatch_deadline_entities_refused_total``) and logged by
the consumer. A stop frees a slot for the next start. Refusing the newcomer rather
than evicting an old clock keeps the warnings and breaches of the tickets already
tracked, whose deadlines come first. Counts are derived from the open clocks, which
are in the snapshot, so a replay or a restore refuses exactly the same starts; a
snapshot taken under a larger cap keeps all its clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.evaluator.business import BusinessClock
from services.evaluator.objectives.base import OVERFLOW, EventLike, GroupStatus, capped_group
from services.evaluator.objectives.common import Selected
from shared.definitions.model import Agreement, CalendarSpec, DeadlineObjective
from shared.schemas import Breach, BreachKind, WindowSli, breach_id, group_key
from shared.timeutil import Clock, format_duration

RULE = "deadline"
ENTITY = "entity"
#: Open clocks per group and partition before new starts are refused.
MAX_OPEN_ENTITIES = 100_000


@dataclass
class EntityClock:
    """One entity's clock."""

    group: dict[str, str]
    started_at: int
    target_ms: int
    used_ms: int = 0
    running_since: int | None = None
    clock: int = 0
    warned: int = 0
    opened: bool = False
    opened_at: int | None = None
    #: ``group_key`` of the group without the entity (not in the snapshot: derived).
    gkey: str = ""


class CompiledDeadline(Selected):
    """A deadline objective ready to evaluate events."""

    def __init__(
        self,
        agreement: Agreement,
        objective: DeadlineObjective,
        clock: Clock,
        calendar: CalendarSpec | None = None,
        *,
        max_open_entities: int = MAX_OPEN_ENTITIES,
        **kw: Any,
    ) -> None:
        super().__init__(agreement, objective, clock, **kw)
        self.definition = objective
        self.max_open_entities = max_open_entities
        #: Starts refused at the open-entity cap since the consumer last took the count.
        self.refused_entities = 0
        self.business = BusinessClock(calendar)
        self.start_types = frozenset(objective.start)
        self.stop_types = frozenset(objective.stop)
        self.pause_types = frozenset(objective.pause)
        self.resume_types = frozenset(objective.resume)
        self.warnings = tuple(sorted(objective.warnings))
        self.window_label = objective.target or "per-entity"

    def new_shard(self) -> DeadlineShard:
        return DeadlineShard(self, {})

    def load_shard(self, data: dict[str, Any]) -> DeadlineShard:
        entities: dict[str, EntityClock] = {}
        for raw in data["entities"]:
            e = EntityClock(
                group={str(k): str(v) for k, v in raw["g"].items()},
                started_at=int(raw["start"]),
                target_ms=int(raw["target"]),
                used_ms=int(raw["used"]),
                running_since=raw["since"],
                clock=int(raw["clock"]),
                warned=int(raw["warned"]),
                opened=bool(raw["opened"]),
                opened_at=raw["opened_at"],
            )
            e.gkey = group_key({k: v for k, v in e.group.items() if k != ENTITY})
            entities[group_key(e.group)] = e
        return DeadlineShard(self, entities)


def take_refused(objectives: Iterable[object]) -> dict[str, int]:
    """Starts refused at the open-entity cap per deadline objective since the last call."""
    out: dict[str, int] = {}
    for objective in objectives:
        if isinstance(objective, CompiledDeadline) and objective.refused_entities:
            out[objective.objective_id] = objective.refused_entities
            objective.refused_entities = 0
    return out


class DeadlineShard:
    """A deadline objective's open entity clocks within one partition."""

    def __init__(self, compiled: CompiledDeadline, entities: dict[str, EntityClock]) -> None:
        self.compiled = compiled
        self.entities = entities
        #: Open clocks per group (``gkey``); a group without any is not held.
        self.open: dict[str, int] = {}
        for e in entities.values():
            self.open[e.gkey] = self.open.get(e.gkey, 0) + 1

    # -- clock arithmetic ---------------------------------------------------------

    def used(self, e: EntityClock, at: int) -> int:
        if e.running_since is None:
            return e.used_ms
        return e.used_ms + self.compiled.business.elapsed(e.running_since, at)

    def _due(self, e: EntityClock) -> tuple[int, BreachKind] | None:
        """The next timer of a running clock: its instant and what it publishes."""
        if e.running_since is None or e.opened:
            return None
        c = self.compiled
        if e.warned < len(c.warnings):
            mark = int(e.target_ms * c.warnings[e.warned])
            kind: BreachKind = "deadline.warning"
        else:
            mark, kind = e.target_ms, "breach.opened"
        return c.business.add(e.running_since, mark - e.used_ms), kind

    def _run_timers(
        self,
        e: EntityClock,
        to_ms: int,
        out: list[Breach],
        trigger: EventLike | None,
        *,
        inclusive: bool = False,
    ) -> None:
        """Fire the timers due before ``to_ms`` (and at it, when ``inclusive``)."""
        while (due := self._due(e)) is not None and (
            due[0] < to_ms or (inclusive and due[0] == to_ms)
        ):
            at, kind = due
            if kind == "deadline.warning":
                e.warned += 1
            else:
                e.opened, e.opened_at = True, at
            out.append(self._breach(kind, e, at, trigger))

    # -- events and time ----------------------------------------------------------

    def on_event(self, event: EventLike) -> list[Breach]:
        c = self.compiled
        entity = event.entity
        if entity is None:
            return []
        group = c.group_of(event)
        key = group_key({**group, ENTITY: entity})
        e = self.entities.get(key)
        if e is None and group:
            # Its clock may have started while its group was folded into the overflow.
            folded = group_key({**dict.fromkeys(group, OVERFLOW), ENTITY: entity})
            e = self.entities.get(folded)
            if e is not None:
                key = folded
        out: list[Breach] = []
        kind = event.type
        if e is None:
            if kind in c.start_types:
                self._start(group, entity, event)
            return out
        at = max(e.clock, event.time)
        # Due before the event: time passing; due at it: fired unless the event stops.
        self._run_timers(e, at, out, None, inclusive=kind not in c.stop_types)
        e.clock = at
        if kind in c.stop_types:
            e.used_ms = self.used(e, at)
            e.running_since = None
            if e.opened:  # the timers above have opened it if the stop came late
                out.append(self._breach("breach.resolved", e, at, event))
            del self.entities[key]
            left = self.open[e.gkey] - 1
            if left:
                self.open[e.gkey] = left
            else:
                del self.open[e.gkey]  # frees the group's slot under the group cap
        elif kind in c.pause_types and e.running_since is not None:
            e.used_ms = self.used(e, at)
            e.running_since = None
        elif kind in c.resume_types and e.running_since is None:
            e.running_since = at
        return out

    def _start(self, group: dict[str, str], entity: str, event: EventLike) -> None:
        c = self.compiled
        target = c.definition.target_ms(event.attributes)
        if target is None:
            return  # not measured, and so not counted against the cap
        group, gkey, folded = capped_group(self.open, group, group_key(group), c.max_groups)
        c.overflow_events += folded
        held = self.open.get(gkey, 0)
        if held >= c.max_open_entities:
            c.refused_entities += 1
            return
        self.open[gkey] = held + 1
        group = {**group, ENTITY: entity}
        self.entities[group_key(group)] = EntityClock(
            group, event.time, target, running_since=event.time, clock=event.time, gkey=gkey
        )

    def advance(self, to_ms: int) -> list[Breach]:
        out: list[Breach] = []
        for e in self.entities.values():
            self._run_timers(e, to_ms, out, None)
            e.clock = max(e.clock, to_ms)
        return out

    # -- output -------------------------------------------------------------------

    def _breach(
        self, kind: BreachKind, e: EntityClock, at: int, trigger: EventLike | None
    ) -> Breach:
        c = self.compiled
        used = self.used(e, at)
        opened_at = e.started_at if e.opened_at is None else e.opened_at
        return c.make_breach(
            kind,
            id=breach_id(c.objective_id, e.group, RULE, e.started_at),
            group=e.group,
            rule=RULE,
            severity="warning" if kind == "deadline.warning" else c.severity,
            at=at,
            opened_at=opened_at,
            windows=[
                WindowSli(
                    window=format_duration(e.target_ms),
                    sli=used / e.target_ms,
                    target=1.0,
                    good=used,
                    valid=e.target_ms,
                )
            ],
            trigger=trigger,
            resolved=kind == "breach.resolved",
        )

    def dump(self) -> dict[str, Any]:
        return {
            "entities": [
                {
                    "g": e.group,
                    "start": e.started_at,
                    "target": e.target_ms,
                    "used": e.used_ms,
                    "since": e.running_since,
                    "clock": e.clock,
                    "warned": e.warned,
                    "opened": e.opened,
                    "opened_at": e.opened_at,
                }
                for e in self.entities.values()
            ]
        }

    def status(self) -> list[GroupStatus]:
        return [
            GroupStatus(
                group=dict(e.group),
                window=format_duration(e.target_ms),
                target=1.0,
                sli=self.used(e, e.clock) / e.target_ms,
                good=self.used(e, e.clock),
                valid=e.target_ms,
                active_breach_id=breach_id(self.compiled.objective_id, e.group, RULE, e.started_at)
                if e.opened
                else None,
                opened_at=e.opened_at,
                clock=e.clock,
            )
            for e in self.entities.values()
        ]

    def open_breaches(self) -> int:
        return sum(1 for e in self.entities.values() if e.opened)

    def resolutions(self) -> list[Breach]:
        """``breach.resolved`` for every open breach, as of its group's clock (state
        unchanged): published when a reload withdraws the rule that opened them."""
        return [
            self._breach("breach.resolved", e, e.clock, None)
            for e in self.entities.values()
            if e.opened
        ]
