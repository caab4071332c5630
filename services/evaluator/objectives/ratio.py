"""The ``ratio`` objective: good events / valid events ≥ target over a sliding window.

Compiled from an Agreement's :class:`~shared.definitions.model.RatioObjective`:

* **selection**: ``service`` equal, ``select.types`` (empty = any type), every
  ``select.attributes`` matcher equal;
* **validity and goodness**: with ``good.outcome`` an event is valid when it has an
  ``outcome`` and good when that equals the wanted one; with ``good.value`` (a
  :class:`~shared.definitions.model.ValueCondition`) it is valid when it has a
  ``value`` and good when the condition holds. A selected event without the field the
  classification needs is not valid and is not counted;
* **group**: the values of the ``groupBy`` attributes; a missing attribute becomes
  the empty string (:data:`MISSING`), so ``customer=`` is the group of events
  without a customer.

Threshold alerting, per group (rule name :data:`RULE`)::

                 breaching (valid ≥ minEvents and SLI < target)
      ┌──────┐ ─────────────────────────────────────────────▶ ┌─────────┐
      │ ok   │ ◀──────── not breaching any more ───────────── │ pending │
      └──────┘                                                └────┬────┘
          ▲              breaching held for ``for`` (0s: at once)  │
          │ SLI ≥ min(1, target + hysteresis)                      ▼
          │ or the window holds no valid event              ┌──────────┐
          └──────────────────────────────────────────────── │   open   │
                                                            └──────────┘

Deciding: a breach stays open while the valid count is below ``minEvents``. Too few
events are too little evidence to raise a breach, and equally too little to call it
recovered; it resolves on a good enough SLI or when the window has emptied.

Evaluation instants are deterministic in event time: every counted event, every
bucket boundary at which the window loses events, and the end of a pending ``for``
period. Between two instants the condition cannot change, so "held continuously for
``for``" is exact, and a replay of the same events (with any idle ticks in between)
gives the same transitions at the same times, hence the same breach ids. A transition
is stamped with the group's clock (its newest event time); an out-of-order event
therefore never moves a transition back in time. A group never reopens at the
instant it resolved, so ``opened_at`` (and the breach id) is unique per group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

from services.evaluator.objectives.base import (
    MAX_GROUPS,
    CountWindow,
    EventLike,
    GroupStatus,
    capped_group,
)
from services.evaluator.objectives.burnrate import BurnRateShard
from services.evaluator.window import SlidingWindow
from shared.definitions.model import (
    Agreement,
    QuantileObjective,
    RatioObjective,
    ValueCondition,
)
from shared.schemas import (
    AgreementRef,
    Breach,
    BreachKind,
    Severity,
    WindowSli,
    breach_id,
    group_key,
)
from shared.timeutil import Clock, parse_duration_ms

RULE = "threshold"
MISSING = ""
MINUTE_MS = 60_000
#: The shared "nothing happened" result of the hot path; callers only read it.
_NONE: list[Breach] = []


@dataclass(frozen=True)
class ThresholdRule:
    """The threshold alerting decision over one window's counts."""

    target: float
    min_events: int
    for_ms: int
    hysteresis: float

    def breaching(self, good: int, valid: int) -> bool:
        return valid >= self.min_events and good / valid < self.target

    def recovered(self, good: int, valid: int) -> bool:
        return valid == 0 or good / valid >= min(1.0, self.target + self.hysteresis)


@dataclass
class OpenBreach:
    """The breach a group is in."""

    id: str
    opened_at: int
    severity: Severity


@dataclass
class RatioGroup:
    """One group's window and alerting state."""

    group: dict[str, str]
    window: CountWindow
    clock: int | None = None
    pending_since: int | None = None
    open: OpenBreach | None = None
    last_resolved_at: int | None = None
    #: Counts of the minute being filled, not yet in the shard's pending rollups (kept
    #: on the group so that the common event adds to two ints, not to a dict).
    roll_minute: int = 0
    roll_good: int = 0
    roll_valid: int = 0

    def dump(self) -> dict[str, Any]:
        return {
            "g": self.group,
            "clock": self.clock,
            "pending": self.pending_since,
            "open": None
            if self.open is None
            else {"id": self.open.id, "at": self.open.opened_at, "sev": self.open.severity},
            "resolved": self.last_resolved_at,
            "win": self.window.to_dict(),
        }

    @classmethod
    def load(
        cls, data: dict[str, Any], load_window: Callable[[dict[str, Any]], CountWindow]
    ) -> RatioGroup:
        opened = data["open"]
        return cls(
            group={str(k): str(v) for k, v in data["g"].items()},
            window=load_window(data["win"]),
            clock=data["clock"],
            pending_since=data["pending"],
            open=None
            if opened is None
            else OpenBreach(id=opened["id"], opened_at=opened["at"], severity=severity_of(opened)),
            last_resolved_at=data["resolved"],
        )


def severity_of(opened: dict[str, Any]) -> Severity:
    for severity in get_args(Severity):
        if opened["sev"] == severity:
            return severity  # type: ignore[no-any-return]
    raise ValueError(f"unknown severity {opened['sev']!r}")


class CompiledRatio:
    """A ratio objective ready to evaluate events; immutable and shared by all shards."""

    def __init__(
        self,
        agreement: Agreement,
        objective: RatioObjective | QuantileObjective,
        clock: Clock,
        *,
        max_groups: int = MAX_GROUPS,
    ) -> None:
        self.definition = objective
        self.max_groups = max_groups
        #: Events folded into the overflow group since the engine last took the count.
        self.overflow_events = 0
        self.fingerprint = ""
        self.measure_fingerprint = ""
        self.agreement = AgreementRef(
            name=agreement.metadata.name,
            type=agreement.spec.type,
            provider=agreement.spec.provider,
            consumer=agreement.spec.consumer,
        )
        self.labels = dict(agreement.metadata.labels)
        self._objective_id = f"{agreement.metadata.name}/{objective.name}"
        self._service = objective.service
        self._types = frozenset(objective.select.types)
        self._matchers = tuple(objective.select.attributes.items())
        self.selection = (self._types, bool(self._matchers))
        self._outcome: str | None = None
        self._condition: ValueCondition | None = None
        if isinstance(objective, RatioObjective):
            self._outcome = objective.good.outcome
            self._condition = objective.good.condition()
            target = objective.target
        else:
            # A quantile objective's window counts values within the threshold as
            # good: the quantile is above the threshold iff good / valid < quantile.
            target = objective.quantile
        #: The outcome that is good when events are classified by outcome (else
        #: ``None``), for :meth:`RatioShard.on_event` to classify without a call.
        self._by_outcome = self._outcome if self._condition is None else None
        self._group_by = tuple(objective.group_by)
        self.window_ms = objective.window_ms
        self.rule = ThresholdRule(
            target=target,
            min_events=objective.alerting.min_events,
            for_ms=parse_duration_ms(objective.alerting.for_),
            hysteresis=objective.alerting.hysteresis,
        )
        # The rule's numbers as plain attributes, for the hot path.
        self._min_events = self.rule.min_events
        self._target = self.rule.target
        self.severity = objective.alerting.severity
        self.clock = clock
        self.burn_rules: tuple[tuple[Severity, float, int, int], ...] = tuple(
            (r.severity, r.factor, parse_duration_ms(r.long), parse_duration_ms(r.short))
            for r in objective.alerting.rules
        )
        self.burn_windows_ms: tuple[int, ...] = tuple(
            sorted({ms for _, _, long, short in self.burn_rules for ms in (long, short)})
        )

    @property
    def objective_id(self) -> str:
        return self._objective_id

    @property
    def service(self) -> str:
        return self.definition.service

    @property
    def window_label(self) -> str:
        return self.definition.window

    @property
    def grouped(self) -> bool:
        return bool(self._group_by)

    def matches(self, event: EventLike) -> bool:
        if event.service != self._service:
            return False
        if self._types and event.type not in self._types:
            return False
        if not self._matchers:
            return True
        attributes = event.attributes
        return all(attributes.get(name) == wanted for name, wanted in self._matchers)

    def group_of(self, event: EventLike) -> dict[str, str]:
        return {name: event.attributes.get(name, MISSING) for name in self._group_by}

    def group_and_key(self, event: EventLike) -> tuple[dict[str, str], str]:
        """The event's group and its :func:`group_key` (fast for ungrouped objectives)."""
        if not self._group_by:
            return {}, ""
        group = self.group_of(event)
        return group, group_key(group)

    def new_window(self) -> CountWindow:
        return SlidingWindow(self.window_ms)

    def load_window(self, data: dict[str, Any]) -> CountWindow:
        return SlidingWindow.from_dict(data, self.window_ms)

    def classify(self, event: EventLike) -> Any:
        """Good (``True``), bad (``False``) or not valid (``None``)."""
        if self._condition is not None:
            return None if event.value is None else self._condition.holds(event.value)
        return None if event.outcome is None else event.outcome == self._outcome

    def new_shard(self) -> RatioShard | BurnRateShard:
        return BurnRateShard(self, {}) if self.burn_rules else RatioShard(self, {})

    def load_shard(self, data: dict[str, Any]) -> RatioShard | BurnRateShard:
        if self.burn_rules:
            return BurnRateShard(self, {}).load(data)
        if "policy" in data:
            raise ValueError("alerting policy changed")
        groups = [RatioGroup.load(g, self.load_window) for g in data["groups"]]
        return RatioShard(self, {group_key(g.group): g for g in groups})

    def breach(
        self,
        kind: BreachKind,
        state: RatioGroup,
        opened: OpenBreach,
        at: int,
        trigger: EventLike | None,
    ) -> Breach:
        """The lifecycle event ``kind`` of ``opened``, stamped at event time ``at``."""
        window = state.window
        sli = window.sli
        burn: dict[str, float] = {}
        remaining: float | None = None
        if sli is not None:
            rate = (1.0 - sli) / (1.0 - self.rule.target)
            burn[self.window_label] = rate
            remaining = 1.0 - rate
        return Breach(
            id=opened.id,
            kind=kind,
            at=at,
            agreement=self.agreement,
            objective=self.definition.name,
            objective_id=self._objective_id,
            service=self.definition.service,
            group=dict(state.group),
            rule=RULE,
            severity=opened.severity,
            windows=[
                WindowSli(
                    window=self.window_label,
                    sli=sli,
                    target=self.rule.target,
                    good=window.good,
                    valid=window.valid,
                )
            ],
            burn_rates=burn,
            error_budget_remaining=remaining,
            opened_at=opened.opened_at,
            resolved_at=at if kind == "breach.resolved" else None,
            detected_at=self.clock(),
            trigger_event_id=trigger.id if trigger else None,
            trigger_received_at=trigger.received_at if trigger else None,
            labels=self.labels,
        )


class RatioShard:
    """A ratio objective's groups within one partition."""

    def __init__(self, compiled: CompiledRatio, groups: dict[str, RatioGroup]) -> None:
        self.compiled = compiled
        self.groups = groups
        self._rollups: dict[tuple[str, int], list[int]] = {}

    @property
    def rollups(self) -> dict[tuple[str, int], list[int]]:
        """Per-minute counts since the last checkpoint: (group key, minute) → [good, valid].

        Each group's minute in progress is moved in first, so the result is complete;
        the engine clears it once written.
        """
        pending = self._rollups
        for key, state in self.groups.items():
            if state.roll_valid:
                _move_minute(pending, key, state)
        return pending

    def on_event(self, event: EventLike) -> list[Breach]:
        # The hot path (once per selected event and objective): attributes are read
        # into locals once, and the common case, an event in the present bucket of a
        # group that is neither pending nor breaching, costs one call (the window's add).
        compiled = self.compiled
        wanted = compiled._by_outcome
        if wanted is not None:
            outcome = event.outcome
            if outcome is None:
                return _NONE
            good: Any = outcome == wanted
        else:
            good = compiled.classify(event)
            if good is None:
                return _NONE
        groups = self.groups
        state = None if compiled._group_by else groups.get("")
        if state is None:
            group, key = compiled.group_and_key(event)
            state = groups.get(key)
            if state is None:
                group, key, folded = capped_group(groups, group, key, compiled.max_groups)
                compiled.overflow_events += folded
                state = groups.get(key)
            if state is None:
                state = RatioGroup(group=group, window=compiled.new_window())
                groups[key] = state
        else:
            key = ""  # an ungrouped objective's one group
        out = _NONE
        time = event.time
        clock = state.clock
        window = state.window
        if clock is None or time > clock:
            head = window.head
            if (
                clock is not None
                and head is not None
                and window.valid
                and time // window.bucket_ms <= head
                and (state.open is not None or state.pending_since is None)
            ):
                # No evaluation instant in (clock, time]: no bucket leaves the window
                # (so advancing it is a no-op) and no ``for`` timer is running.
                state.clock = time
            else:
                out = []
                self._advance(state, time, out, event)
        before = window.good
        if not window.add(time, good):
            return out
        minute = time - time % MINUTE_MS
        if minute != state.roll_minute:
            if state.roll_valid:
                _move_minute(self._rollups, key, state)
            state.roll_minute = minute
        state.roll_good += window.good - before
        state.roll_valid += 1
        if (
            state.open is None
            and state.pending_since is None
            and not (
                window.valid >= compiled._min_events
                and window.good / window.valid < compiled._target
            )
        ):
            return out  # what _evaluate would conclude (not breaching), without the call
        if out is _NONE:
            out = []
        assert state.clock is not None
        self._evaluate(state, state.clock, out, event)
        return out

    def advance(self, to_ms: int) -> list[Breach]:
        out: list[Breach] = []
        advance = self._advance
        for state in self.groups.values():
            clock = state.clock
            if clock is not None and clock < to_ms:
                advance(state, to_ms, out, None)
        return out

    def _advance(
        self, state: RatioGroup, to_ms: int, out: list[Breach], trigger: EventLike | None
    ) -> None:
        """Step through every evaluation instant in ``(clock, to_ms]``, then set the clock."""
        clock = state.clock
        window = state.window
        if clock is not None:
            if to_ms <= clock:
                return
            for_ms = self.compiled.rule.for_ms
            while True:
                instant = window.next_expiry_ms()
                if instant is not None and instant > to_ms:
                    instant = None
                pending_since = state.pending_since
                if state.open is None and pending_since is not None:
                    deadline = pending_since + for_ms
                    if clock < deadline <= to_ms and (instant is None or deadline < instant):
                        instant = deadline
                if instant is None:
                    break
                window.advance(instant)
                state.clock = clock = instant
                self._evaluate(state, instant, out, None)  # time passing, not the event
        window.advance(to_ms)
        state.clock = to_ms

    def _evaluate(
        self, state: RatioGroup, at: int, out: list[Breach], trigger: EventLike | None
    ) -> None:
        rule = self.compiled.rule
        good, valid = state.window.good, state.window.valid
        if state.open is None:
            if not rule.breaching(good, valid):
                state.pending_since = None
                return
            if state.pending_since is None:
                state.pending_since = at
            held = at - state.pending_since >= rule.for_ms
            fresh = state.last_resolved_at is None or at > state.last_resolved_at
            if held and fresh:
                opened = OpenBreach(
                    id=breach_id(self.compiled.objective_id, state.group, RULE, at),
                    opened_at=at,
                    severity=self.compiled.severity,
                )
                state.open = opened
                state.pending_since = None
                out.append(self.compiled.breach("breach.opened", state, opened, at, trigger))
        elif rule.recovered(good, valid):
            out.append(self.compiled.breach("breach.resolved", state, state.open, at, trigger))
            state.open = None
            state.last_resolved_at = at

    def dump(self) -> dict[str, Any]:
        return {"groups": [g.dump() for g in self.groups.values()]}

    def status(self) -> list[GroupStatus]:
        return [
            GroupStatus(
                group=dict(g.group),
                window=self.compiled.window_label,
                target=self.compiled.rule.target,
                sli=g.window.sli,
                good=g.window.good,
                valid=g.window.valid,
                active_breach_id=g.open.id if g.open else None,
                opened_at=g.open.opened_at if g.open else None,
                clock=g.clock,
                severity=g.open.severity if g.open else None,
            )
            for g in self.groups.values()
        ]

    def open_breaches(self) -> int:
        return sum(1 for g in self.groups.values() if g.open is not None)

    def resolutions(self) -> list[Breach]:
        """``breach.resolved`` for every open breach, as of its group's clock (state
        unchanged): published when a reload withdraws the rule that opened them."""
        return [
            self.compiled.breach(
                "breach.resolved", g, g.open, max(g.clock or 0, g.open.opened_at), None
            )
            for g in self.groups.values()
            if g.open is not None
        ]


def _move_minute(pending: dict[tuple[str, int], list[int]], key: str, state: RatioGroup) -> None:
    """Add a group's minute in progress to the pending rollups and zero it."""
    slot = (key, state.roll_minute)
    counts = pending.get(slot)
    if counts is None:
        pending[slot] = [state.roll_good, state.roll_valid]
    else:
        counts[0] += state.roll_good
        counts[1] += state.roll_valid
    state.roll_good = state.roll_valid = 0
