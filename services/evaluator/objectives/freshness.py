"""The ``freshness`` objective: a breach while no matching event arrived for ``maxSilence``.

Per group, ``last`` is the newest matching event time. The timer is due at
``last + maxSilence``; it fires when event time (an event, or the watermark on a tick)
passes it strictly, stamped at the due instant, so the breach id does not depend on
when the tick ran. The next matching event resolves it, stamped with its time::

    last ──── maxSilence ────▶ due: breach.opened(at=due) ······ event e: resolved(at=e)

No data from the start: when the objective becomes active (the engine calls
:meth:`FreshnessShard.expect` on assignment without state for it, and when a reload
adds or restarts it), its ungrouped group, or each group listed in
``expectedGroups``, starts with ``last`` = the activation time, marked ``waiting``
(no event yet). So a service that never reports breaches ``maxSilence`` after
activation, with the deterministic id of that instant; the activation time is in the
snapshot, so a restart keeps it. A waiting group's first event takes over its clock,
even one older than the activation (a backlog)::

    activated ── maxSilence ──▶ due: breach.opened(at=due) ···· first event e: resolved

Other groups of a grouped objective are known from their first event on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.evaluator.objectives.base import EventLike, GroupStatus, capped_group
from services.evaluator.objectives.common import Selected
from shared.definitions.model import Agreement, FreshnessObjective
from shared.schemas import Breach, WindowSli, breach_id, group_key
from shared.timeutil import Clock

RULE = "freshness"


@dataclass
class FreshGroup:
    """One group's newest matching event time (``last``), or its activation time
    while ``waiting`` for its first event, and its open breach."""

    group: dict[str, str]
    last: int
    open_id: str | None = None
    opened_at: int | None = None
    waiting: bool = False


class CompiledFreshness(Selected):
    """A freshness objective ready to evaluate events."""

    def __init__(
        self, agreement: Agreement, objective: FreshnessObjective, clock: Clock, **kw: Any
    ) -> None:
        super().__init__(agreement, objective, clock, **kw)
        self.silence_ms = objective.max_silence_ms
        self.window_label = objective.max_silence
        #: The groups whose silence counts from activation (ungrouped: the one group).
        self.expected_groups: list[dict[str, str]] = (
            [{name: g[name] for name in objective.group_by} for g in objective.expected_groups]
            if self.grouped
            else [{}]
        )

    def new_shard(self) -> FreshnessShard:
        return FreshnessShard(self, {})

    def load_shard(self, data: dict[str, Any]) -> FreshnessShard:
        groups = {}
        for raw in data["groups"]:
            g = FreshGroup({str(k): str(v) for k, v in raw["g"].items()}, int(raw["last"]))
            g.open_id, g.opened_at = raw["open"], raw["at"]
            g.waiting = bool(raw.get("wait", False))  # absent in snapshots from before
            groups[group_key(g.group)] = g
        return FreshnessShard(self, groups)


class FreshnessShard:
    """A freshness objective's groups within one partition."""

    def __init__(self, compiled: CompiledFreshness, groups: dict[str, FreshGroup]) -> None:
        self.compiled = compiled
        self.groups = groups

    def _windows(self, g: FreshGroup, at: int) -> list[WindowSli]:
        silent = float(at - g.last)
        return [
            WindowSli(
                window=self.compiled.window_label,
                sli=silent,
                target=float(self.compiled.silence_ms),
            )
        ]

    def _fire(
        self, g: FreshGroup, to_ms: int, out: list[Breach], trigger: EventLike | None
    ) -> None:
        due = g.last + self.compiled.silence_ms
        if g.open_id is None and due < to_ms:
            c = self.compiled
            g.open_id, g.opened_at = breach_id(c.objective_id, g.group, RULE, due), due
            out.append(
                c.make_breach(
                    "breach.opened",
                    id=g.open_id,
                    group=g.group,
                    rule=RULE,
                    severity=c.severity,
                    at=due,
                    opened_at=due,
                    windows=self._windows(g, due),
                    trigger=trigger,
                )
            )

    def on_event(self, event: EventLike) -> list[Breach]:
        c = self.compiled
        group = c.group_of(event)
        key = group_key(group)
        g = self.groups.get(key)
        if g is None:
            group, key, folded = capped_group(self.groups, group, key, c.max_groups)
            c.overflow_events += folded
            g = self.groups.get(key)
        out: list[Breach] = []
        if g is None:
            self.groups[key] = FreshGroup(group, event.time)
            return out
        self._fire(g, event.time, out, None)  # due before the event: time passing
        if g.waiting:
            # The first event: the group's clock is its events' from now on.
            g.waiting = False
            if g.open_id is not None and g.opened_at is not None:
                at = max(event.time, g.opened_at)
                out.append(self._resolved(g, g.open_id, g.opened_at, at, event))
                g.open_id = g.opened_at = None
            g.last = event.time
            return out
        if event.time <= g.last:
            return out
        if g.open_id is not None and g.opened_at is not None:
            out.append(self._resolved(g, g.open_id, g.opened_at, event.time, event))
            g.open_id = g.opened_at = None
        g.last = event.time
        return out

    def expect(self, at_ms: int) -> None:
        """The objective is active from ``at_ms``: every expected group not held yet
        waits for its first event from then on (groups already held keep theirs)."""
        for group in self.compiled.expected_groups:
            key = group_key(group)
            if key not in self.groups:
                self.groups[key] = FreshGroup(dict(group), at_ms, waiting=True)

    def advance(self, to_ms: int) -> list[Breach]:
        out: list[Breach] = []
        for g in self.groups.values():
            self._fire(g, to_ms, out, None)
        return out

    def dump(self) -> dict[str, Any]:
        return {
            "groups": [
                {"g": g.group, "last": g.last, "open": g.open_id, "at": g.opened_at}
                | ({"wait": True} if g.waiting else {})
                for g in self.groups.values()
            ]
        }

    def status(self) -> list[GroupStatus]:
        return [
            GroupStatus(
                group=dict(g.group),
                window=self.compiled.window_label,
                target=float(self.compiled.silence_ms),
                sli=None,
                good=0,
                valid=0,
                active_breach_id=g.open_id,
                opened_at=g.opened_at,
                clock=g.last,
            )
            for g in self.groups.values()
        ]

    def open_breaches(self) -> int:
        return sum(1 for g in self.groups.values() if g.open_id is not None)

    def resolutions(self) -> list[Breach]:
        """``breach.resolved`` for every open breach, as of its group's clock (state
        unchanged): published when a reload withdraws the rule that opened them."""
        return [
            self._resolved(g, g.open_id, g.opened_at, max(g.last, g.opened_at), None)
            for g in self.groups.values()
            if g.open_id is not None and g.opened_at is not None
        ]

    def _resolved(
        self, g: FreshGroup, open_id: str, opened_at: int, at: int, trigger: EventLike | None
    ) -> Breach:
        c = self.compiled
        return c.make_breach(
            "breach.resolved",
            id=open_id,
            group=g.group,
            rule=RULE,
            severity=c.severity,
            at=at,
            opened_at=opened_at,
            windows=self._windows(g, at),
            trigger=trigger,
            resolved=True,
        )
