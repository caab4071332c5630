"""Rebuilding a ratio objective's windows from its per-minute rollups (hot reload).

When a definition change keeps what a ratio objective counts (selection, good rule,
grouping: the same :func:`~services.evaluator.objectives.rollup_fingerprint`) but
changes its window or its alerting policy, the live windows no longer fit the new
shape. The rollups in PostgreSQL hold the same events per minute, so each group's new
windows are filled from them instead of starting empty.

The output is the shard's snapshot format (``RatioShard.dump`` /
``BurnRateShard.dump``, windows as ``SlidingWindow.to_dict``), loaded with the new
objective's ``load_shard``: the snapshot format is the interface, so this module never
touches a window's internals.

A minute's counts go into the bucket that holds the minute's start::

    event time      12:00          12:01          12:02          12:03
    events          ·  ·     ·     ·      ·       ·   ·  ·
    rollup rows     3 @ 12:00      2 @ 12:01      3 @ 12:02
    10 s buckets    [3][ ][ ][ ]…  [2][ ][ ]…     [3][ ][ ]…     one minute early at most
    2 min buckets   [ 5 = 3 + 2                 ] [ 3 …                         exact

With buckets a whole number of minutes wide the rebuilt window is exact. With
narrower buckets (short windows) or widths that are not whole minutes, an event can
land up to one minute early: inside the window only its bucket is off, and at the
window's trailing edge a minute straddling the edge is counted whole or not at all
(whichever its start says). Calendar budgets start at local midnight, a minute
boundary: exact.

Per group: the clock is the old group's clock (its newest event time, or the time it
was ticked to), so the rebuilt windows end where the old ones did and nothing moves
back in time. An open breach, the last resolution and the budget exhaustion mark are
carried when the alerting policy kind is unchanged (same rule name, so the next
event or expiry resolves or keeps that breach under its own id); when the kind
changes the old rule no longer exists and nothing is carried. A pending ``for``
period is not carried: it starts again at the next evaluation. The next event or
window expiry of the group evaluates the rebuilt counts (opening a breach with a
deterministic id, if they say so).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.evaluator.objectives import rollup_fingerprint_of
from services.evaluator.objectives.base import CompiledObjective
from services.evaluator.objectives.burnrate import BUCKETS, BUDGET_BUCKETS, BurnRateShard
from services.evaluator.objectives.burnrate import RULE as BURN_RULE
from services.evaluator.objectives.quantile import CompiledQuantile
from services.evaluator.objectives.ratio import CompiledRatio, RatioShard
from services.evaluator.window import MAX_BUCKETS, bucket_width_ms
from shared.periods import Period, period_bounds
from shared.schemas import group_key

#: One rollup row of a group: (minute start in epoch ms, good, valid).
Minute = tuple[int, int, int]


@dataclass(frozen=True)
class GroupHistory:
    """What one group of the old shard leaves for its rebuild."""

    group: dict[str, str]
    clock: int
    minutes: Sequence[Minute] = ()
    #: The old snapshot's ``open``/``resolved``/``exhausted``, when carried.
    open: dict[str, Any] | None = None
    resolved: int | None = None
    exhausted: int | None = None


def rebuildable(old: CompiledObjective, new: CompiledObjective) -> bool:
    """Whether ``new`` can be rebuilt from the rollups ``old`` wrote.

    Both plain ratio objectives (a quantile window needs its sketch, which good/valid
    counts cannot give) whose rollups measure the same thing.
    """
    if not (_plain_ratio(old) and _plain_ratio(new)):
        return False
    fingerprint = rollup_fingerprint_of(new)
    return bool(fingerprint) and fingerprint == rollup_fingerprint_of(old)


def same_policy(old: CompiledObjective, new: CompiledObjective) -> bool:
    """Whether both decide with the same rule (threshold, or burn-rate)."""
    return (
        isinstance(old, CompiledRatio)
        and isinstance(new, CompiledRatio)
        and bool(old.burn_rules) == bool(new.burn_rules)
    )


def _plain_ratio(objective: CompiledObjective) -> bool:
    return isinstance(objective, CompiledRatio) and not isinstance(objective, CompiledQuantile)


def _windows(objective: CompiledRatio) -> list[tuple[int, int]]:
    """(length, max buckets) of every rolling window a group of ``objective`` keeps."""
    if not objective.burn_rules:
        return [(objective.window_ms, MAX_BUCKETS)]
    out = [(ms, BUCKETS) for ms in objective.burn_windows_ms]
    if objective.definition.calendar_window is None:
        out.append((objective.window_ms, BUDGET_BUCKETS))
    return out


def _shape(window_ms: int, max_buckets: int) -> tuple[int, int]:
    """(bucket width, bucket count) of a window, as :mod:`..window` sizes it."""
    width = bucket_width_ms(window_ms, max_buckets)
    return width, -(-window_ms // width)


def history_span_ms(objective: CompiledRatio) -> int:
    """How far before a group's clock a rollup row can still count in its windows."""
    spans = [
        width * (size + 1)  # the ring's tail bucket too
        for width, size in (_shape(ms, most) for ms, most in _windows(objective))
    ]
    if objective.burn_rules and objective.definition.calendar_window is not None:
        spans.append(objective.window_ms)  # the longest calendar period
    return max(spans)


def window_data(
    minutes: Iterable[Minute], window_ms: int, max_buckets: int, clock: int
) -> dict[str, Any]:
    """A sliding window at ``clock`` holding the minutes whose start lies in it
    (``SlidingWindow.to_dict`` format)."""
    width, size = _shape(window_ms, max_buckets)
    head = clock // width
    buckets: dict[int, list[int]] = {}
    for minute, good, valid in minutes:
        index = minute // width
        if valid > 0 and head - size <= index <= head:  # head - size: the window's tail
            counts = buckets.setdefault(index, [0, 0])
            counts[0] += good
            counts[1] += valid
    return {
        "w": width,
        "n": size,
        "head": head,
        "b": [[index, good, valid] for index, (good, valid) in sorted(buckets.items())],
    }


def period_data(
    minutes: Iterable[Minute], period: Period, timezone: str, clock: int
) -> dict[str, int]:
    """A calendar period counter at ``clock`` (``PeriodCounter.to_dict`` format)."""
    start, end = period_bounds(clock, period, timezone)
    good = valid = 0
    for minute, g, v in minutes:
        if start <= minute <= clock:
            good += g
            valid += v
    return {"start": start, "end": end, "good": good, "valid": valid}


def shard_data(objective: CompiledRatio, groups: Iterable[GroupHistory]) -> dict[str, Any]:
    """The snapshot of ``objective``'s shard whose groups hold the rebuilt windows."""
    out: list[dict[str, Any]] = []
    if not objective.burn_rules:
        for h in groups:
            out.append(
                {
                    "g": dict(h.group),
                    "clock": h.clock,
                    "pending": None,
                    "open": h.open,
                    "resolved": h.resolved,
                    "win": window_data(h.minutes, objective.window_ms, MAX_BUCKETS, h.clock),
                }
            )
        return {"groups": out}
    definition = objective.definition
    period = definition.calendar_window
    for h in groups:
        budget: dict[str, Any] = (
            period_data(h.minutes, period, definition.timezone, h.clock)
            if period is not None
            else window_data(h.minutes, objective.window_ms, BUDGET_BUCKETS, h.clock)
        )
        out.append(
            {
                "g": dict(h.group),
                "clock": h.clock,
                "open": h.open,
                "resolved": h.resolved,
                "exhausted": h.exhausted,
                "wins": {
                    str(ms): window_data(h.minutes, ms, BUCKETS, h.clock)
                    for ms in objective.burn_windows_ms
                },
                "budget": budget,
            }
        )
    return {"policy": BURN_RULE, "groups": out}


def rebuild_shard(
    objective: CompiledRatio, groups: Iterable[GroupHistory]
) -> RatioShard | BurnRateShard:
    """``objective``'s shard with every group of ``groups`` rebuilt from its minutes;
    ``ValueError`` if the snapshot does not load."""
    return objective.load_shard(shard_data(objective, groups))


def histories(
    old_snapshot: dict[str, Any], minutes_by_key: dict[str, list[Minute]], *, carry: bool
) -> list[GroupHistory]:
    """The groups of an old shard's snapshot with their minutes (by group key);
    ``carry``: keep their open breach, last resolution and exhaustion mark."""
    out: list[GroupHistory] = []
    for raw in old_snapshot["groups"]:
        clock = raw.get("clock")
        if clock is None:
            continue
        group = {str(k): str(v) for k, v in raw["g"].items()}
        out.append(
            GroupHistory(
                group=group,
                clock=int(clock),
                minutes=minutes_by_key.get(group_key(group), ()),
                open=raw.get("open") if carry else None,
                resolved=raw.get("resolved") if carry else None,
                exhausted=raw.get("exhausted") if carry else None,
            )
        )
    return out
