"""What the console's pages show, from stored rows (pure: ``now`` is passed in).

The Now table is sorted by severity (page, ticket, warning, info), then by age, the
longest open first, then by id (a stable order for equal times). Filters are exact
matches: agreement, party (the provider or the consumer), severity, and acked
(``yes`` / ``no``; anything else: both).
SLI and target read as every message reads them (:mod:`services.notifier.values`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.notifier.message import ESCALATION_PREFIX
from services.notifier.routing import matchers_hold
from services.notifier.values import budget_text, measure_of, window_texts
from shared.definitions.model import Agreement, Objective
from shared.schemas import Breach

SEVERITY_ORDER = ("page", "ticket", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}


def utc_text(ms: int) -> str:
    """``2026-12-04 21:05:00 UTC``: what a page without script shows."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def ago_text(ms: int) -> str:
    """A span for people, coarse: ``42 s``, ``5 m``, ``3 h 20 m``, ``2 d 4 h``."""
    seconds = max(0, ms // 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if minutes < 60:
        return f"{minutes} m"
    if hours < 24:
        rest = minutes % 60
        return f"{hours} h {rest} m" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


@dataclass(frozen=True)
class AckView:
    by: str
    comment: str | None
    at: int
    via: str
    actor: str | None


@dataclass(frozen=True)
class BreachView:
    """One breach as the console lists it."""

    id: str
    severity: str
    status: str
    agreement: str
    agreement_type: str | None
    provider: str | None
    consumer: str | None
    objective: str
    service: str
    group: dict[str, str]
    opened_at: int
    resolved_at: int | None
    measures: list[str]
    burn_rates: dict[str, float]
    budget: str | None
    ack: AckView | None
    #: the last event, as routing and silences match it (None: no longer validates)
    event: Breach | None = field(default=None, compare=False, repr=False)

    @property
    def parties(self) -> str:
        return " → ".join(p for p in (self.provider, self.consumer) if p)

    @property
    def group_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.group.items())) or "—"


def breach_view(
    row: Any,
    ack: AckView | None,
    agreements: Mapping[str, Agreement] | None = None,
) -> BreachView:
    """``row`` is a ``BreachRecord`` (or anything with its attributes). Its last event
    gives the agreement's type and parties and the SLI; a last event that no longer
    validates still lists the breach, without them."""
    try:
        event: Breach | None = Breach.model_validate(row.last_event)
    except ValidationError:
        event = None
    measures: list[str] = []
    agreement_type = provider = consumer = None
    burn: dict[str, float] = {}
    budget = None
    objective_name = str(row.objective_id).rpartition("/")[2]
    if event is not None:
        objective: Objective | None = None
        agreement = (agreements or {}).get(event.agreement.name)
        if agreement is not None:
            objective = next(
                (o for o in agreement.spec.objectives if o.name == event.objective), None
            )
        measures = [w.text for w in window_texts(event, measure_of(event, objective))]
        agreement_type = event.agreement.type
        provider, consumer = event.agreement.provider, event.agreement.consumer
        burn = dict(event.burn_rates)
        budget = budget_text(event.error_budget_remaining)
        objective_name = event.objective
    return BreachView(
        id=row.id,
        severity=row.severity,
        status=row.status,
        agreement=row.agreement,
        agreement_type=agreement_type,
        provider=provider,
        consumer=consumer,
        objective=objective_name,
        service=row.service,
        group={str(k): str(v) for k, v in dict(row.group).items()},
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        measures=measures,
        burn_rates=burn,
        budget=budget,
        ack=ack,
        event=event,
    )


@dataclass(frozen=True)
class Filters:
    """The Now page's filters (query parameters); ``None``: not filtered."""

    agreement: str | None = None
    severity: str | None = None
    acked: bool | None = None
    party: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        acked = {"yes": True, "no": False}.get(params.get("acked", ""))
        severity = params.get("severity") or None
        return cls(
            agreement=params.get("agreement") or None,
            severity=severity if severity in _RANK else None,
            acked=acked,
            party=params.get("party") or None,
        )

    def admits(self, view: BreachView) -> bool:
        if self.agreement is not None and view.agreement != self.agreement:
            return False
        if self.severity is not None and view.severity != self.severity:
            return False
        if self.party is not None and self.party not in (view.provider, view.consumer):
            return False
        return self.acked is None or (view.ack is not None) == self.acked

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for the live table's refresh)."""
        out: dict[str, str] = {}
        if self.agreement is not None:
            out["agreement"] = self.agreement
        if self.severity is not None:
            out["severity"] = self.severity
        if self.acked is not None:
            out["acked"] = "yes" if self.acked else "no"
        if self.party is not None:
            out["party"] = self.party
        return out


def sort_key(view: BreachView) -> tuple[int, int, str]:
    return (_RANK.get(view.severity, len(_RANK)), view.opened_at, view.id)


def now_rows(views: Iterable[BreachView], filters: Filters) -> list[BreachView]:
    """The open breaches the filters admit, in the Now order."""
    return sorted((v for v in views if v.status == "open" and filters.admits(v)), key=sort_key)


def unacked_pages(views: Iterable[BreachView]) -> int:
    """What the tab title counts: open ``page`` breaches nobody acknowledged."""
    return sum(1 for v in views if v.status == "open" and v.severity == "page" and v.ack is None)


@dataclass(frozen=True)
class AttemptLine:
    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: int
    error: str | None
    at: int

    @property
    def text(self) -> str:
        code = f" HTTP {self.status_code}" if self.status_code is not None else ""
        error = f": {self.error}" if self.error else ""
        return f"attempt {self.attempt}: {self.outcome}{code} in {self.latency_ms} ms{error}"


@dataclass(frozen=True)
class DeliveryLine:
    """One outbox row of the breach (a lifecycle event or an escalation step to one
    receiver) with its attempts; times in ms."""

    receiver: str
    kind: str
    status: str
    last_error: str | None
    queued_at: int
    due_at: int
    attempts: list[AttemptLine]


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a breach's timeline; ``lines``: the attempts of a delivery."""

    at: int
    what: str
    detail: str
    lines: tuple[str, ...] = ()


def _delivery_entry(d: DeliveryLine) -> TimelineEntry:
    step = d.kind.startswith(ESCALATION_PREFIX)
    what = f"escalation step {d.kind.removeprefix(ESCALATION_PREFIX)}" if step else d.kind
    status = d.status + (f" ({d.last_error})" if d.last_error else "")
    detail = f"to {d.receiver}: {status}"
    if step and not d.attempts:
        detail += f", due {utc_text(d.due_at)}"
    return TimelineEntry(
        d.queued_at,
        f"delivery of {what}",
        detail,
        tuple(a.text for a in d.attempts),
    )


def timeline(
    events: Iterable[Any], deliveries: Iterable[DeliveryLine], ack: AckView | None
) -> list[TimelineEntry]:
    """Lifecycle events (opened, updates, warnings, resolution), deliveries per receiver
    with every attempt, escalation steps and the ack, by time (stable: events first)."""
    out: list[TimelineEntry] = []
    for e in events:
        out.append(TimelineEntry(e.at, e.kind, _event_detail(e.payload)))
    out.extend(_delivery_entry(d) for d in deliveries)
    if ack is not None:
        by = ack.by + (f" (key {ack.actor})" if ack.actor and ack.actor != ack.by else "")
        comment = ack.comment or "no comment"
        out.append(TimelineEntry(ack.at, "acknowledged", f"by {by} via {ack.via}: {comment}"))
    out.sort(key=lambda t: t.at)
    return out


def _event_detail(payload: Mapping[str, Any]) -> str:
    try:
        event = Breach.model_validate(payload)
    except ValidationError:
        return ""
    return "; ".join(w.text for w in window_texts(event, measure_of(event)))


class BadMatchers(ValueError):
    """A matcher line is not ``key=value`` (the message names it)."""


def parse_matchers(text: str) -> dict[str, str]:
    """``key=value`` per line (blank lines skipped) → matchers, as silences take them."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise BadMatchers(f"line {number}: write key=value, got {line!r}")
        if key in out and out[key] != value:
            raise BadMatchers(f"line {number}: {key} is given twice")
        out[key] = value
    return out


def matchers_text(match: Mapping[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in match.items())


def breach_matchers(view: BreachView) -> dict[str, str]:
    """What silences exactly this breach's series: its agreement, objective and group."""
    return {"agreement": view.agreement, "objective": view.objective, **dict(view.group)}


def muted_now(match: Mapping[str, str], views: Iterable[BreachView]) -> list[BreachView]:
    """The open breaches a silence with ``match`` would mute (the preview), in the Now
    order; an empty ``match`` mutes everything."""
    return sorted(
        (
            v
            for v in views
            if v.status == "open" and v.event is not None and matchers_hold(match, v.event)
        ),
        key=sort_key,
    )
