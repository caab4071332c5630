"""Delivery slots of one worker: how many rows it holds at once, and how many of them
may belong to one receiver (pure: no I/O, no clock).

A worker delivers every row it claims at once, each in its own task, and claims again
as soon as a slot frees. A receiver that hangs (accepts the connection and never
answers, or answers after the timeout) keeps its rows until their attempts time out;
the per-receiver bound keeps it from taking every slot, so the other receivers' rows
still find free ones. A receiver at its bound is left out of claims
(:func:`services.notifier.outbox.claim`'s ``skip_receivers``), and within one claim
:func:`choose` takes no more of a receiver's rows than it has room for::

    slots 10, per receiver 4
    held    hang ████  ok ██  free ░░░░
            └ full: its rows are not claimed until one of its attempts ends

The bound is per worker (each replica, each worker): no coordination, and it is what
isolation needs, since the slots it protects are the worker's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

Candidate = tuple[int, str]
"""A due row offered to a claim: ``(delivery id, receiver)``, in due order."""


def choose(
    candidates: Sequence[Candidate], held: Mapping[str, int], free: int, per_receiver: int
) -> list[int]:
    """The candidates to claim, in their order: at most ``free`` in all and at most
    ``per_receiver`` per receiver counting the rows already ``held``."""
    taken: Counter[str] = Counter()
    chosen: list[int] = []
    for delivery_id, receiver in candidates:
        if len(chosen) >= free:
            break
        if held.get(receiver, 0) + taken[receiver] >= per_receiver:
            continue
        taken[receiver] += 1
        chosen.append(delivery_id)
    return chosen


def claim_again(free: int, full_before: Collection[str], full_after: Collection[str]) -> bool:
    """Whether to claim once more right away: slots are still free and the last claim
    filled some receiver's bound, so it may have passed over due rows of others behind
    that receiver's (the next claim leaves it out). Each repeat fills one more receiver,
    so repeats end."""
    return free > 0 and not set(full_after) <= set(full_before)


def wake_in_ms(now_ms: int, poll_interval_ms: int, soonest_retry_ms: int | None) -> int:
    """How long an idle worker waits before claiming again (a doorbell or a freed slot
    wakes it earlier): the poll interval, or less when a retry of its own is due."""
    if soonest_retry_ms is None:
        return poll_interval_ms
    return max(0, min(poll_interval_ms, soonest_retry_ms - now_ms))


@dataclass
class Slots:
    """The rows one worker holds, by receiver."""

    capacity: int
    per_receiver: int
    _held: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not 1 <= self.per_receiver < self.capacity:
            raise ValueError(
                f"per-receiver bound {self.per_receiver} must be ≥ 1 and below the"
                f" {self.capacity} slots, so that no receiver can hold every slot"
            )

    def free(self) -> int:
        return self.capacity - self._held.total()

    def full(self) -> frozenset[str]:
        """Receivers at their bound: leave them out of the next claim."""
        return frozenset(r for r, n in self._held.items() if n >= self.per_receiver)

    def held(self, receiver: str) -> int:
        return self._held[receiver]

    def choose(self, candidates: Sequence[Candidate]) -> list[int]:
        return choose(candidates, self._held, self.free(), self.per_receiver)

    def take(self, receiver: str) -> None:
        self._held[receiver] += 1

    def release(self, receiver: str) -> None:
        self._held[receiver] -= 1
        if self._held[receiver] <= 0:
            del self._held[receiver]
