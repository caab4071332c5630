"""What a run produced, and a faulted run compared item by item with the reference.

Pure: the observations come in as plain data (see tests.chaos.observe).

* **Events**: the final good/valid counts of every group of every objective. The
  ``-total`` objectives hold every event of the stream (tests.chaos.script), so per
  group ``reference valid - got valid`` is a lost event and ``got - reference`` one
  counted twice; the ``-1m`` objectives are compared exactly too (a mismatch there
  is listed, not counted as events).
* **Breaches**: the set of (id, kind, at) on the breaches topic; one missing is a lost
  breach event, one more is an unexpected one. Repeats of the same triple (a replay
  after an evaluator crash) are normal and only counted.
* **Deliveries**: per receiver, the set of idempotency keys; one missing is a lost
  delivery. A key received more than once is a duplicate delivery, allowed only when
  its earlier copy was *in flight at a fault*: received before a fault window ended
  and not answered before the window began (less :data:`RECORD_SLACK_S`, the time the
  notifier may take to record an answer it got). Every copy of a key must carry the
  same body.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.chaos.inbox import Received

#: After the receiver answered, the notifier records the outcome in one transaction;
#: a fault within this many seconds of the answer may leave it unrecorded, so the
#: notifier sends it again after the lease (same key). Generous for 2 shared cores.
RECORD_SLACK_S = 2.0


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, and the window (monotonic seconds) it lasted."""

    what: str
    start: float
    end: float


@dataclass
class Outcome:
    """Everything a run is judged by."""

    counts: dict[str, tuple[int, int]]
    breaches: set[tuple[str, str, int]]
    breach_records: int
    requests: list[Received]
    faults: list[Fault] = field(default_factory=list)
    #: (receiver, idempotency key) → when the notifier made the outbox row (epoch s).
    created: dict[tuple[str, str], float] = field(default_factory=dict)


def delivery_waits_ms(
    outcome: Outcome, receiver: str, since: float = 0.0, until: float = float("inf")
) -> list[float]:
    """Per delivery to ``receiver`` whose outbox row was made in [since, until] (epoch
    s): row made → first request arrived, in ms."""
    first: dict[str, float] = {}
    for request in outcome.requests:
        if request.receiver == receiver:
            first.setdefault(request.key, request.arrived_wall)
    waits = []
    for key, arrived in first.items():
        created = outcome.created.get((receiver, key))
        if created is not None and since <= created <= until:
            waits.append((arrived - created) * 1000)
    return sorted(waits)


@dataclass
class CaseReport:
    """One case's figures; ``ok`` when nothing was lost, doubled or left unexplained."""

    case: str
    broker: str
    seed: int
    events: int
    faults: list[str]
    lost_events: int = 0
    double_counted_events: int = 0
    mismatched_groups: list[str] = field(default_factory=list)
    lost_breaches: int = 0
    unexpected_breaches: int = 0
    replayed_breach_records: int = 0
    lost_deliveries: int = 0
    unexpected_deliveries: int = 0
    duplicate_deliveries: int = 0
    duplicates_in_flight: int = 0
    unexplained_duplicates: int = 0
    duplicate_body_mismatches: int = 0
    bad_signatures: int = 0
    client_retries: int = 0
    #: Cases with a hanging receiver: waits of the healthy one's deliveries (ms).
    healthy_wait_ms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not (
            self.lost_events
            or self.double_counted_events
            or self.mismatched_groups
            or self.lost_breaches
            or self.unexpected_breaches
            or self.lost_deliveries
            or self.unexpected_deliveries
            or self.unexplained_duplicates
            or self.duplicate_body_mismatches
            or self.bad_signatures
        )

    def line(self) -> str:
        waits = ""
        if self.healthy_wait_ms:
            w = self.healthy_wait_ms
            waits = (
                f"; healthy receiver waited max {w['max']:.0f} ms during the hang "
                f"(reference max {w['reference_max']:.0f} ms)"
            )
        return (
            f"chaos {self.case} [{self.broker}]: lost {self.lost_events}, "
            f"double-counted {self.double_counted_events}, lost breaches {self.lost_breaches}, "
            f"duplicate deliveries {self.duplicate_deliveries} "
            f"({self.duplicates_in_flight} in flight at a fault, "
            f"{self.unexplained_duplicates} unexplained); "
            f"{len(self.faults)} faults, {self.client_retries} client retries, "
            f"{self.seconds:.0f} s{waits}"
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def compare(
    case: str, broker: str, seed: int, events: int, reference: Outcome, got: Outcome
) -> CaseReport:
    report = CaseReport(case, broker, seed, events, [f.what for f in got.faults])
    for key in sorted(set(reference.counts) | set(got.counts)):
        want_good, want_valid = reference.counts.get(key, (0, 0))
        good, valid = got.counts.get(key, (0, 0))
        if (good, valid) != (want_good, want_valid):
            report.mismatched_groups.append(
                f"{key}: good/valid {good}/{valid}, reference {want_good}/{want_valid}"
            )
        if "-total|" in key:
            report.lost_events += max(0, want_valid - valid)
            report.double_counted_events += max(0, valid - want_valid)
    report.lost_breaches = len(reference.breaches - got.breaches)
    report.unexpected_breaches = len(got.breaches - reference.breaches)
    report.replayed_breach_records = got.breach_records - len(got.breaches)

    want = _keys(reference.requests)
    have = _keys(got.requests)
    for receiver in sorted(set(want) | set(have)):
        report.lost_deliveries += len(want.get(receiver, set()) - have.get(receiver, set()))
        report.unexpected_deliveries += len(have.get(receiver, set()) - want.get(receiver, set()))
    report.bad_signatures = sum(r.signature_ok is False for r in got.requests)

    copies: dict[tuple[str, str], list[Received]] = defaultdict(list)
    for request in got.requests:
        copies[(request.receiver, request.key)].append(request)
    for same in copies.values():
        for earlier, later in itertools.pairwise(same):
            report.duplicate_deliveries += 1
            if later.digest != earlier.digest:
                report.duplicate_body_mismatches += 1
            if any(_in_flight(earlier, fault) for fault in got.faults):
                report.duplicates_in_flight += 1
            else:
                report.unexplained_duplicates += 1
    return report


def _keys(requests: list[Received]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for request in requests:
        found[request.receiver].add(request.key)
    return found


def _in_flight(request: Received, fault: Fault) -> bool:
    answered_late = request.answered is None or request.answered >= fault.start - RECORD_SLACK_S
    return request.arrived <= fault.end and answered_late
