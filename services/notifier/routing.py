"""Routing: which receivers get a breach event (pure).

A route matches when every ``match`` entry equals the breach's value for that key.
Keys:

    severity, service, objective, kind, agreement   fields of the breach
    agreement_type, provider, consumer              fields of the breach's agreement
    anything else                                   a group attribute of that name,
                                                    else a label of that name

A key the breach does not have never matches. An empty ``match`` matches everything.
Every matching route contributes its receivers (no "first match wins"); the result
keeps first-seen order and names each receiver once.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.definitions.model import Route
from shared.schemas import Breach


def breach_value(breach: Breach, key: str) -> str | None:
    """The breach's value for a route matcher key, or ``None`` when it has none."""
    match key:
        case "severity":
            return breach.severity
        case "service":
            return breach.service
        case "objective":
            return breach.objective
        case "kind":
            return breach.kind
        case "agreement":
            return breach.agreement.name
        case "agreement_type":
            return breach.agreement.type
        case "provider":
            return breach.agreement.provider
        case "consumer":
            return breach.agreement.consumer
    if key in breach.group:
        return breach.group[key]
    return breach.labels.get(key)


def matches(route: Route, breach: Breach) -> bool:
    """Whether every matcher of ``route`` holds for ``breach``."""
    return all(breach_value(breach, key) == want for key, want in route.match.items())


def route(breach: Breach, routes: Sequence[Route]) -> list[str]:
    """Receiver names for ``breach``: every matching route's, deduplicated, in order."""
    receivers: dict[str, None] = {}
    for candidate in routes:
        if matches(candidate, breach):
            receivers.update(dict.fromkeys(candidate.receivers))
    return list(receivers)
