"""Grouping timing, as Alertmanager's dispatcher does it (pure; the clock is passed in).

Breaches that a route takes are put in groups by the values of the route's
``groupBy`` keys (routing keys: agreement, service, severity, group attributes,
labels...; ``...`` means every key, i.e. one group per breach). Per group and receiver:

* **group_wait**: a new group is first flushed ``group_wait`` after its first breach
  arrived, so breaches that open together go out together.
* **group_interval**: after a flush at ``f`` the next flush is at ``f + group_interval``
  (flushes tick at that pace while the group exists; arrivals never move them).
* At a flush, a notification is sent when the group's content differs from the last
  one sent (a breach added, one resolved: compared as a set of ``(breach id,
  firing|resolved)``), or when ``repeat_interval`` has passed since the last send
  (``last_sent + repeat_interval <= flush time``). So a repeat happens on the first
  flush tick at or after ``repeat_interval``: effectively rounded up to a multiple of
  ``group_interval``, exactly as in Alertmanager.
* A send carries the whole group: every member, firing or resolved (one message per
  group, receiver and flush). A group that never sent and has no firing member sends
  nothing: its members resolved before its first flush, and a resolution goes only
  where the firing alert went (Alertmanager's dedup stage). A resolved member leaves
  the group once it was sent, as Alertmanager drops resolved alerts after notifying
  them; a group left empty is deleted, and a new breach later starts a new group
  (with ``group_wait`` again).

Timeline (wait 30 s, interval 5 m, repeat 4 h)::

    0s   A opens        → group created, flush due 30s
    10s  B opens
    30s  flush          → send {A, B}
    2m   C opens
    5m30 flush          → send {A, B, C}
    10m30 flush         → nothing changed, no send … until the tick ≥ 4h05m30 → repeat
    4h06m A resolves
    4h10m30 flush       → send {A resolved, B, C}; A leaves the group
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.notifier.routing import breach_value
from shared.schemas import Breach
from shared.timeutil import parse_duration_ms

ALL_KEYS = "..."


@dataclass(frozen=True)
class GroupTiming:
    wait_ms: int
    interval_ms: int
    repeat_ms: int

    @classmethod
    def parse(cls, wait: str, interval: str, repeat: str) -> GroupTiming:
        return cls(parse_duration_ms(wait), parse_duration_ms(interval), parse_duration_ms(repeat))


def group_key(breach: Breach, group_by: Sequence[str]) -> str:
    """The group a breach belongs to under ``group_by`` (``...``: its own group)."""
    if ALL_KEYS in group_by:
        return f"breach={breach.id}"
    return ",".join(f"{k}={breach_value(breach, k) or ''}" for k in sorted(group_by))


State = Literal["firing", "resolved"]


@dataclass
class Group:
    """One group's members and its flush bookkeeping."""

    created_at: int
    members: dict[str, State] = field(default_factory=dict)
    last_flush_at: int | None = None
    last_sent_at: int | None = None
    sent: frozenset[tuple[str, State]] | None = None

    def next_flush_at(self, timing: GroupTiming) -> int:
        if self.last_flush_at is None:
            return self.created_at + timing.wait_ms
        return self.last_flush_at + timing.interval_ms

    def content(self) -> frozenset[tuple[str, State]]:
        return frozenset(self.members.items())

    def flush(self, now_ms: int, timing: GroupTiming) -> Mapping[str, State] | None:
        """Flush at ``now_ms`` (a due time); returns the members to send, or ``None``."""
        self.last_flush_at = now_ms
        current = self.content()
        repeat_due = self.last_sent_at is not None and (
            self.last_sent_at + timing.repeat_ms <= now_ms
        )
        if current == self.sent and not repeat_due:
            return None
        if not current:
            return None
        if self.sent is None and all(s == "resolved" for s in self.members.values()):
            self.members = {}
            return None
        sent = dict(self.members)
        # Resolved members were notified: they leave (what is sent next excludes them).
        self.members = {b: s for b, s in self.members.items() if s != "resolved"}
        self.sent = self.content()
        self.last_sent_at = now_ms
        return sent

    def finished(self) -> bool:
        """Flushed and no member left (every one resolved and sent): the group can go."""
        return self.last_flush_at is not None and not self.members


Change = tuple[int, str, State]
"""``(time ms, breach id, firing|resolved)``."""


def simulate(
    changes: Iterable[Change], timing: GroupTiming, until_ms: int
) -> list[tuple[int, dict[str, State]]]:
    """Every send of one group for a sequence of changes (sorted by time), up to
    ``until_ms``: the reference the table tests check and the worker follows."""
    sends: list[tuple[int, dict[str, State]]] = []
    group: Group | None = None
    pending = sorted(changes)
    index = 0
    while True:
        next_change = pending[index][0] if index < len(pending) else None
        next_flush = group.next_flush_at(timing) if group is not None else None
        candidates = [t for t in (next_change, next_flush) if t is not None and t <= until_ms]
        if not candidates:
            return sends
        now = min(candidates)
        # A change at the same instant as a flush is seen by that flush.
        while index < len(pending) and pending[index][0] == now:
            _, breach, state = pending[index]
            if group is None:
                group = Group(created_at=now)
            group.members[breach] = state
            index += 1
        if group is not None and group.next_flush_at(timing) == now:
            sent = group.flush(now, timing)
            if sent is not None:
                sends.append((now, dict(sent)))
            if group.finished():
                group = None
