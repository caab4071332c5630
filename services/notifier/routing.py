"""Routing: which routes (and so receivers) take a breach event (pure).

Routes are tried in order like Alertmanager's: the first route whose ``match`` holds
takes the event and the search stops, unless that route says ``continue: true``.
Routes marked ``default: true`` are skipped in that search and take the event only
when no other route did. A route matches when every ``match`` entry equals the
breach's value for that key:

    severity, service, objective, kind, agreement   fields of the breach
    agreement_type, provider, consumer              fields of the breach's agreement
    party                                           the provider or the consumer
    anything else                                   a group attribute of that name,
                                                    else a label of that name

A key the breach does not have never matches. An empty ``match`` matches everything.
The receivers are the matched routes' receivers, first-seen order, each once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def matchers_hold(match: Mapping[str, str], breach: Breach) -> bool:
    """Whether every matcher holds for ``breach`` (``party``: provider or consumer)."""
    for key, want in match.items():
        if key == "party":
            if want not in (breach.agreement.provider, breach.agreement.consumer):
                return False
        elif breach_value(breach, key) != want:
            return False
    return True


def matches(route: Route, breach: Breach) -> bool:
    """Whether every matcher of ``route`` holds for ``breach``."""
    return matchers_hold(route.match, breach)


def matching_routes(breach: Breach, routes: Sequence[Route]) -> list[Route]:
    """The routes that take ``breach``, in policy order."""
    taken: list[Route] = []
    for candidate in routes:
        if candidate.default or not matches(candidate, breach):
            continue
        taken.append(candidate)
        if not candidate.continue_:
            break
    if not taken:
        taken = [r for r in routes if r.default and matches(r, breach)]
    return taken


def receivers_of(routes: Sequence[Route]) -> list[str]:
    names: dict[str, None] = {}
    for taken in routes:
        names.update(dict.fromkeys(taken.receivers))
    return list(names)


def route(breach: Breach, routes: Sequence[Route]) -> list[str]:
    """Receiver names for ``breach``."""
    return receivers_of(matching_routes(breach, routes))
