"""The ``freshness`` objective: a breach while no matching event arrived for ``maxSilence``.

Per group, ``last`` is the newest matching event time. The timer is due at
``last + maxSilence``; it fires when event time (an event, or the watermark on a tick)
passes it strictly, stamped at the due instant, so the breach id does not depend on
when the tick ran. The next matching event resolves it, stamped with its time::

    last ──── maxSilence ────▶ due: breach.opened(at=due) ······ event e: resolved(at=e)

A group is known from its first event on; one that never sent an event has no timer.
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
    group: dict[str, str]
    last: int
    open_id: str | None = None
    opened_at: int | None = None


class CompiledFreshness(Selected):
    """A freshness objective ready to evaluate events."""

    def __init__(
        self, agreement: Agreement, objective: FreshnessObjective, clock: Clock, **kw: Any
    ) -> None:
        super().__init__(agreement, objective, clock, **kw)
        self.silence_ms = objective.max_silence_ms
        self.window_label = objective.max_silence

    def new_shard(self) -> FreshnessShard:
        return FreshnessShard(self, {})

    def load_shard(self, data: dict[str, Any]) -> FreshnessShard:
        groups = {}
        for raw in data["groups"]:
            g = FreshGroup({str(k): str(v) for k, v in raw["g"].items()}, int(raw["last"]))
            g.open_id, g.opened_at = raw["open"], raw["at"]
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
        if event.time <= g.last:
            return out
        if g.open_id is not None and g.opened_at is not None:
            out.append(self._resolved(g, g.open_id, g.opened_at, event.time, event))
            g.open_id = g.opened_at = None
        g.last = event.time
        return out

    def advance(self, to_ms: int) -> list[Breach]:
        out: list[Breach] = []
        for g in self.groups.values():
            self._fire(g, to_ms, out, None)
        return out

    def dump(self) -> dict[str, Any]:
        return {
            "groups": [
                {"g": g.group, "last": g.last, "open": g.open_id, "at": g.opened_at}
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
