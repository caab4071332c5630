"""The scripted stream of the chaos suite: seeded events, the definitions they breach.

Pure: no I/O, no clock. Every run of a case sends the same events with the same
event times, so breach ids (derived from objective, group, rule and the event time a
breach opened) are equal between the fault-free reference and a faulted run.

Event time starts at a fixed instant far in the past (:data:`BASE_MS`): the
evaluator never moves a partition more than a day behind the wall clock by the wall
clock (services.evaluator.engine, ``LIVE_GAP_MS``), so results depend on the events
alone, not on when ticks happen::

    t = BASE_MS ──────── one event per STEP_MS, services round-robin ──────── + span
        minute 0 │ minute 1 │ ...                        │ last 2 minutes (healthy)
        per (service, customer) and minute: healthy (2 % bad) or incident (45 % bad)

Per service two ratio objectives grouped by customer:

* ``<service>-total``: window 1h, longer than the stream, so the final good/valid
  counts of a group are *every* event of that group: one lost event or one counted
  twice changes them. Threshold 0.9, severity ticket (both receivers).
* ``<service>-1m``: window 1m, threshold 0.9, severity page (ops receiver only):
  incidents open breaches, healthy minutes resolve them.

Every group gets events up to the very end, so the final idle ticks (to the
watermark, behind each group's last event) change nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

AGREEMENT = "chaos-shop"
SERVICES = ("checkout", "search", "payments")
CUSTOMERS = ("acme", "globex", "initech")
BASE_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z
STEP_MS = 150
MINUTE_MS = 60_000
HEALTHY_BAD = 0.02
INCIDENT_BAD = 0.45
INCIDENT_CHANCE = 0.25
HEALTHY_TAIL_MINUTES = 2
OPS_PATH = "/ops"
TEAM_PATH = "/team"


@dataclass(frozen=True)
class Script:
    """A stream and how it is cut into request bodies."""

    seed: int
    events: tuple[dict[str, Any], ...]
    batch_size: int

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        size = self.batch_size
        return [list(self.events[i : i + size]) for i in range(0, len(self.events), size)]

    def counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(service, customer) → (good, valid) of the whole stream: what the
        ``-total`` objectives must end with."""
        good: Counter[tuple[str, str]] = Counter()
        valid: Counter[tuple[str, str]] = Counter()
        for event in self.events:
            key = (event["service"], event["attributes"]["customer"])
            valid[key] += 1
            good[key] += event["outcome"] == "good"
        return {key: (good[key], valid[key]) for key in valid}


def build_script(seed: int, count: int, batch_size: int = 50) -> Script:
    """``count`` events; the same seed gives the same stream, byte for byte."""
    rng = random.Random(seed)
    minutes = -(-count * STEP_MS // MINUTE_MS)
    incidents = {
        (service, customer, minute): minute < minutes - HEALTHY_TAIL_MINUTES
        and rng.random() < INCIDENT_CHANCE
        for service in SERVICES
        for customer in CUSTOMERS
        for minute in range(minutes)
    }
    events = []
    for index in range(count):
        time_ms = BASE_MS + index * STEP_MS
        service = SERVICES[index % len(SERVICES)]
        customer = CUSTOMERS[(index // len(SERVICES)) % len(CUSTOMERS)]
        minute = (time_ms - BASE_MS) // MINUTE_MS
        bad = INCIDENT_BAD if incidents[(service, customer, minute)] else HEALTHY_BAD
        events.append(
            {
                "id": f"chaos-{seed}-{index:06d}",
                "service": service,
                "type": "request",
                "time": time_ms,
                "outcome": "bad" if rng.random() < bad else "good",
                "attributes": {"customer": customer},
                "source": "chaos",
            }
        )
    return Script(seed, tuple(events), batch_size)


def objective_names() -> list[str]:
    return [f"{service}-{suffix}" for service in SERVICES for suffix in ("total", "1m")]


def definitions(receiver_base: str, secret_ref: str) -> str:
    """The agreement and its two webhook receivers (the ops one signed)."""
    objectives = []
    for service in SERVICES:
        for suffix, window, severity, min_events, target in (
            ("total", "1h", "ticket", 50, 0.85),
            ("1m", "1m", "page", 10, 0.9),
        ):
            objectives.append(
                f"""    - name: {service}-{suffix}
      kind: ratio
      service: {service}
      select: {{type: request}}
      good: {{outcome: good}}
      target: {target}
      window: {window}
      groupBy: [customer]
      alerting: {{policy: threshold, minEvents: {min_events}, severity: {severity}}}"""
            )
    body = "\n".join(objectives)
    return f"""apiVersion: slawatch/v1
kind: Agreement
metadata: {{name: {AGREEMENT}}}
spec:
  type: SLA
  provider: shopco
  consumer: acme
  objectives:
{body}
  notify:
    - match: {{severity: page}}
      receivers: [ops-hook]
    - match: {{severity: ticket}}
      receivers: [ops-hook, team-hook]
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: ops-hook}}
spec: {{type: webhook, url: "{receiver_base}{OPS_PATH}", secret: "{secret_ref}"}}
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: team-hook}}
spec: {{type: webhook, url: "{receiver_base}{TEAM_PATH}"}}
"""
