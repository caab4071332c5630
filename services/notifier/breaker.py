"""Per-receiver circuit breaker (pure; the clock is passed in).

A receiver that keeps failing with retriable errors (connection, timeout, 5xx, 429)
is not hammered by every due row: after ``threshold`` consecutive failures the
circuit opens for ``open_ms``; due rows for that receiver are deferred to the end of
the open period without spending one of their attempts. Then one trial delivery is
let through (half-open): success closes the circuit, failure opens it again for
twice as long (capped at ``max_open_ms``). Non-retriable failures (a 4xx for one
payload) say nothing about the receiver's health and do not count.

    closed ──threshold failures──▶ open ──open_ms──▶ half-open ──success──▶ closed
                                    ▲                    │
                                    └────── failure ─────┘  (open_ms doubled)

State is per process: each replica learns a receiver's health on its own (at most
``threshold`` extra attempts per replica), which needs no coordination. Attempts
already in flight when the circuit opens still end (and are not counted); there are
never more of them than the workers' per-receiver bound (:mod:`.slots`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Circuit:
    failures: int = 0
    open_until: int | None = None
    open_ms: int = 0
    trial_until: int | None = None


@dataclass
class CircuitBreakers:
    """One circuit per receiver name."""

    threshold: int = 5
    open_ms: int = 10_000
    max_open_ms: int = 300_000
    trial_timeout_ms: int = 60_000
    _circuits: dict[str, _Circuit] = field(default_factory=dict)

    def allow(self, receiver: str, now_ms: int) -> int | None:
        """``None`` if a delivery to ``receiver`` may go now, else when to try again."""
        circuit = self._circuits.get(receiver)
        if circuit is None or circuit.open_until is None:
            return None
        if now_ms < circuit.open_until:
            return circuit.open_until
        if circuit.trial_until is not None and now_ms < circuit.trial_until:
            return circuit.trial_until  # one trial at a time while half-open
        circuit.trial_until = now_ms + self.trial_timeout_ms
        return None

    def record(self, receiver: str, ok: bool, retriable_failure: bool, now_ms: int) -> str | None:
        """Account one attempt; returns ``"opened"``/``"closed"`` on a state change."""
        circuit = self._circuits.setdefault(receiver, _Circuit())
        if ok:
            was_open = circuit.open_until is not None
            self._circuits[receiver] = _Circuit()
            return "closed" if was_open else None
        if not retriable_failure:
            return None
        if circuit.open_until is not None and now_ms < circuit.open_until:
            return None  # an attempt that was in flight when the circuit opened
        circuit.failures += 1
        half_open = circuit.open_until is not None
        if half_open or circuit.failures >= self.threshold:
            circuit.open_ms = (
                min(self.max_open_ms, circuit.open_ms * 2) if half_open else self.open_ms
            )
            circuit.open_until = now_ms + circuit.open_ms
            circuit.trial_until = None
            return "opened"
        return None

    def state(self, receiver: str, now_ms: int) -> str:
        circuit = self._circuits.get(receiver)
        if circuit is None or circuit.open_until is None:
            return "closed"
        return "open" if now_ms < circuit.open_until else "half-open"
