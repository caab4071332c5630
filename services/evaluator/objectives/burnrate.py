"""Burn-rate alerting for a ratio objective: multiwindow, multi-burn-rate (SRE workbook).

The *burn rate* of a window is its error ratio over the error budget::

    burn(w) = (1 - good_w / valid_w) / (1 - target)        (0 while w is empty)

A rule ``(severity, factor, long, short)`` fires when ``burn(long) ≥ factor`` and
``burn(short) ≥ factor`` and ``long`` holds at least ``minEvents`` valid events. The
defaults (page 14.4x 1h/5m, page 6x 6h/30m, ticket 1x 3d/6h) spend 2 %, 5 % and 10 % of
a 30-day budget before they fire. Timeline of a 99.9 % objective whose steady traffic
turns all bad at ``T``::

    T            T+4.3s        T+51.8s                 T+129.6s
    ├─ bad ──────┼─────────────┼───────────────────────┼──────────▶ event time
                 5m ≥ 14.4x    1h ≥ 14.4x: page opens  (6h ≥ 6x too)

(detection time = (1 - SLO) / error ratio x long window x factor, ± one bucket of the
long window).

Per group: the breach takes the highest severity among firing rules; a change of
severity publishes ``breach.updated``; when no rule fires it resolves. With
``hysteresis`` h, a rule of an open breach keeps firing until its burn rates fall
below ``factor x (1 - h)``.

The error budget is measured over the objective's own window (rolling: a ring of 30
coarse buckets; calendar: counts since the period start). ``budget.exhausted`` is
published once per window when the remaining budget reaches 0 (with ``minEvents``
valid events): once per calendar period, or once per window length for a rolling
window.

Memory per (objective, group) with the defaults and a 30d window: five rings (5m,
30m, 1h, 6h, 3d) of :data:`BUCKETS` = 30 buckets plus the 30-bucket budget ring, 8
bytes per bucket (1,440 bytes of counts), plus the objects around them: about 3.7 KiB
with one short group attribute (:func:`group_nbytes`; the unit test and the benchmark
measure it). Thirty buckets make a window cover between 29/30 and all of its length,
so detection can come up to one bucket (1/30 of the long window) early.
Evaluation instants are every counted event and every bucket boundary at which a
window loses events, so results do not depend on when idle ticks run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.evaluator.objectives.base import EventLike, GroupStatus, capped_group
from services.evaluator.period import PeriodCounter
from services.evaluator.window import SlidingWindow
from shared.schemas import Breach, BreachKind, Severity, WindowSli, breach_id, group_key
from shared.timeutil import format_duration

if TYPE_CHECKING:
    from services.evaluator.objectives.ratio import CompiledRatio

RULE = "burn-rate"
BUDGET_RULE = "budget"
BUCKETS = 30
BUDGET_BUCKETS = 30
_RANK: dict[str, int] = {"ticket": 1, "page": 2}


def burn(good: int, valid: int, target: float) -> float:
    """The burn rate of counts against ``target`` (0 for an empty window)."""
    return (valid - good) / valid / (1.0 - target) if valid else 0.0


@dataclass
class Open:
    id: str
    opened_at: int
    severity: Severity


@dataclass
class BurnGroup:
    """One group's windows, budget and breach."""

    group: dict[str, str]
    windows: dict[int, SlidingWindow]
    budget: SlidingWindow | PeriodCounter
    clock: int | None = None
    open: Open | None = None
    last_resolved_at: int | None = None
    exhausted_at: int | None = None


def group_nbytes(state: BurnGroup) -> int:
    """Approximate memory of one group (object, dict, windows, budget)."""
    total = sys.getsizeof(state) + sys.getsizeof(state.group) + sys.getsizeof(state.windows)
    total += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in state.group.items())
    total += sum(w.nbytes() for w in state.windows.values())
    return total + state.budget.nbytes()


class BurnRateShard:
    """A burn-rate ratio objective's groups within one partition."""

    def __init__(self, compiled: CompiledRatio, groups: dict[str, BurnGroup]) -> None:
        self.compiled = compiled
        self.groups = groups
        #: Per-minute counts since the last checkpoint: (group key, minute) → [good, valid].
        self.rollups: dict[tuple[str, int], list[int]] = {}

    # -- construction -------------------------------------------------------------

    def _new_group(self, group: dict[str, str]) -> BurnGroup:
        c = self.compiled
        windows = {ms: SlidingWindow(ms, max_buckets=BUCKETS) for ms in c.burn_windows_ms}
        return BurnGroup(group=group, windows=windows, budget=self._new_budget())

    def _new_budget(self) -> SlidingWindow | PeriodCounter:
        d = self.compiled.definition
        period = d.calendar_window
        if period is not None:
            return PeriodCounter(period, d.timezone)
        return SlidingWindow(d.window_ms, max_buckets=BUDGET_BUCKETS)

    # -- events and time ----------------------------------------------------------

    def on_event(self, event: EventLike) -> list[Breach]:
        good = self.compiled.classify(event)
        if good is None:
            return []
        group, key = self.compiled.group_and_key(event)
        state = self.groups.get(key)
        if state is None:
            group, key, folded = capped_group(self.groups, group, key, self.compiled.max_groups)
            self.compiled.overflow_events += folded
            state = self.groups.get(key)
        if state is None:
            state = self.groups[key] = self._new_group(group)
        out: list[Breach] = []
        self._advance(state, event.time, out, event)
        counted = False
        for window in state.windows.values():
            counted = window.add(event.time, good) or counted
        counted = state.budget.add(event.time, good) or counted
        if counted:
            slot = (key, event.time - event.time % 60_000)
            counts = self.rollups.get(slot)
            if counts is None:
                counts = self.rollups[slot] = [0, 0]
            counts[0] += 1 if good else 0
            counts[1] += 1
            assert state.clock is not None
            self._evaluate(state, state.clock, out, event)
        return out

    def advance(self, to_ms: int) -> list[Breach]:
        out: list[Breach] = []
        for state in self.groups.values():
            if state.clock is not None and state.clock < to_ms:
                self._advance(state, to_ms, out, None)
        return out

    def _advance(
        self, state: BurnGroup, to_ms: int, out: list[Breach], trigger: EventLike | None
    ) -> None:
        if state.clock is not None and to_ms <= state.clock:
            return
        if state.clock is not None:
            while True:
                instant: int | None = None
                for window in (*state.windows.values(), state.budget):
                    expiry = window.next_expiry_ms()
                    if (
                        expiry is not None
                        and expiry <= to_ms
                        and (instant is None or expiry < instant)
                    ):
                        instant = expiry
                if instant is None:
                    break
                for window in state.windows.values():
                    window.advance(instant)
                state.budget.advance(instant)
                state.clock = instant
                self._evaluate(state, instant, out, None)  # time passing, not the event
        for window in state.windows.values():
            window.advance(to_ms)
        state.budget.advance(to_ms)
        state.clock = to_ms

    # -- decisions ----------------------------------------------------------------

    def severity_now(self, state: BurnGroup) -> Severity | None:
        """The highest severity among the rules firing for ``state``."""
        c = self.compiled
        target = c.rule.target
        slack = 1.0 - c.rule.hysteresis if state.open is not None else 1.0
        best: Severity | None = None
        for severity, factor, long_ms, short_ms in c.burn_rules:
            long_w, short_w = state.windows[long_ms], state.windows[short_ms]
            if long_w.valid < c.rule.min_events:
                continue
            needed = factor * slack
            if (
                burn(long_w.good, long_w.valid, target) >= needed
                and burn(short_w.good, short_w.valid, target) >= needed
                and (best is None or _RANK[severity] > _RANK[best])
            ):
                best = severity
        return best

    def budget_remaining(self, state: BurnGroup) -> float | None:
        b = state.budget
        if not b.valid:
            return None
        return 1.0 - burn(b.good, b.valid, self.compiled.rule.target)

    def _evaluate(
        self, state: BurnGroup, at: int, out: list[Breach], trigger: EventLike | None
    ) -> None:
        severity = self.severity_now(state)
        c = self.compiled
        if state.open is None:
            fresh = state.last_resolved_at is None or at > state.last_resolved_at
            if severity is not None and fresh:
                state.open = Open(breach_id(c.objective_id, state.group, RULE, at), at, severity)
                out.append(self.breach("breach.opened", state, state.open, at, trigger))
        elif severity is None:
            out.append(self.breach("breach.resolved", state, state.open, at, trigger))
            state.open = None
            state.last_resolved_at = at
        elif severity != state.open.severity:
            state.open.severity = severity
            out.append(self.breach("breach.updated", state, state.open, at, trigger))
        self._check_budget(state, at, out, trigger)

    def _check_budget(
        self, state: BurnGroup, at: int, out: list[Breach], trigger: EventLike | None
    ) -> None:
        remaining = self.budget_remaining(state)
        if remaining is None or remaining > 0 or state.budget.valid < self.compiled.rule.min_events:
            return
        budget = state.budget
        if isinstance(budget, PeriodCounter):
            assert budget.start is not None
            if state.exhausted_at is not None and state.exhausted_at >= budget.start:
                return
        elif (
            state.exhausted_at is not None
            and at < state.exhausted_at + self.compiled.definition.window_ms
        ):
            return
        state.exhausted_at = at
        marker = Open(
            breach_id(self.compiled.objective_id, state.group, BUDGET_RULE, at), at, "ticket"
        )
        out.append(self.breach("budget.exhausted", state, marker, at, trigger, rule=BUDGET_RULE))

    # -- output -------------------------------------------------------------------

    def windows_sli(self, state: BurnGroup) -> list[WindowSli]:
        target = self.compiled.rule.target
        out = [
            WindowSli(
                window=format_duration(ms), sli=w.sli, target=target, good=w.good, valid=w.valid
            )
            for ms, w in sorted(state.windows.items())
        ]
        b = state.budget
        out.append(
            WindowSli(
                window=self.compiled.window_label,
                sli=b.sli,
                target=target,
                good=b.good,
                valid=b.valid,
            )
        )
        return out

    def burn_rates(self, state: BurnGroup) -> dict[str, float]:
        target = self.compiled.rule.target
        return {
            format_duration(ms): burn(w.good, w.valid, target)
            for ms, w in sorted(state.windows.items())
        }

    def breach(
        self,
        kind: BreachKind,
        state: BurnGroup,
        opened: Open,
        at: int,
        trigger: EventLike | None,
        *,
        rule: str = RULE,
    ) -> Breach:
        c = self.compiled
        return Breach(
            id=opened.id,
            kind=kind,
            at=at,
            agreement=c.agreement,
            objective=c.definition.name,
            objective_id=c.objective_id,
            service=c.definition.service,
            group=dict(state.group),
            rule=rule,
            severity=opened.severity,
            windows=self.windows_sli(state),
            burn_rates=self.burn_rates(state),
            error_budget_remaining=self.budget_remaining(state),
            opened_at=opened.opened_at,
            resolved_at=at if kind == "breach.resolved" else None,
            detected_at=c.clock(),
            trigger_event_id=trigger.id if trigger else None,
            trigger_received_at=trigger.received_at if trigger else None,
            labels=c.labels,
        )

    # -- snapshot and status ------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        groups = []
        for g in self.groups.values():
            groups.append(
                {
                    "g": g.group,
                    "clock": g.clock,
                    "open": None
                    if g.open is None
                    else {"id": g.open.id, "at": g.open.opened_at, "sev": g.open.severity},
                    "resolved": g.last_resolved_at,
                    "exhausted": g.exhausted_at,
                    "wins": {str(ms): w.to_dict() for ms, w in g.windows.items()},
                    "budget": g.budget.to_dict(),
                }
            )
        return {"policy": RULE, "groups": groups}

    def load(self, data: dict[str, Any]) -> BurnRateShard:
        from services.evaluator.objectives.ratio import severity_of

        if data.get("policy") != RULE:
            raise ValueError("alerting policy changed")
        d = self.compiled.definition
        period = d.calendar_window
        wanted = {str(ms): ms for ms in self.compiled.burn_windows_ms}
        for raw in data["groups"]:
            stored = raw["wins"]
            if stored.keys() != wanted.keys():
                raise ValueError("burn-rate windows changed")
            windows = {
                ms: SlidingWindow.from_dict(stored[text], ms, max_buckets=BUCKETS)
                for text, ms in wanted.items()
            }
            budget: SlidingWindow | PeriodCounter
            if period is not None:
                budget = PeriodCounter.from_dict(raw["budget"], period, d.timezone)
            else:
                budget = SlidingWindow.from_dict(
                    raw["budget"], d.window_ms, max_buckets=BUDGET_BUCKETS
                )
            state = BurnGroup({str(k): str(v) for k, v in raw["g"].items()}, windows, budget)
            opened = raw["open"]
            state.open = (
                None if opened is None else Open(opened["id"], opened["at"], severity_of(opened))
            )
            state.clock = raw["clock"]
            state.last_resolved_at = raw["resolved"]
            state.exhausted_at = raw["exhausted"]
            self.groups[group_key(state.group)] = state
        return self

    def status(self) -> list[GroupStatus]:
        out = []
        for g in self.groups.values():
            b = g.budget
            out.append(
                GroupStatus(
                    group=dict(g.group),
                    window=self.compiled.window_label,
                    target=self.compiled.rule.target,
                    sli=b.sli,
                    good=b.good,
                    valid=b.valid,
                    active_breach_id=g.open.id if g.open else None,
                    opened_at=g.open.opened_at if g.open else None,
                    clock=g.clock,
                    windows=self.windows_sli(g),
                    burn_rates=self.burn_rates(g),
                    budget_remaining=self.budget_remaining(g),
                    severity=g.open.severity if g.open else None,
                )
            )
        return out

    def open_breaches(self) -> int:
        return sum(1 for g in self.groups.values() if g.open is not None)

    def resolutions(self) -> list[Breach]:
        """``breach.resolved`` for every open breach, as of its group's clock (state
        unchanged): published when a reload withdraws the rule that opened them."""
        return [
            self.breach("breach.resolved", g, g.open, max(g.clock or 0, g.open.opened_at), None)
            for g in self.groups.values()
            if g.open is not None
        ]
