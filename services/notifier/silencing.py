"""Silences and maintenance windows: does one mute this notification now? (pure)

A window mutes a breach when ``start <= now < end`` and every matcher holds (the
routing keys, see :mod:`services.notifier.routing`). Sources: ``Silence`` and
``MaintenanceWindow`` definitions (YAML, applied like any definition) and silences
created through ``POST /v1/silences``. A muted notification is not sent; its outbox
row ends ``suppressed`` with the window named in the attempt record, so it is never
lost from the history.

A resolution is never muted for a receiver that was told of the opening (``told``),
as in Alertmanager: a silence that started in between would otherwise leave that
receiver with an alert open for ever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.notifier.routing import matchers_hold
from shared.schemas import Breach


@dataclass(frozen=True)
class MuteWindow:
    """One silence or maintenance window, whatever its source."""

    source: str  # e.g. "Silence/db-upgrade", "MaintenanceWindow/sunday", "api/<uuid>"
    match: Mapping[str, str] = field(default_factory=dict)
    start: int = 0
    end: int = 0

    def active(self, now_ms: int) -> bool:
        return self.start <= now_ms < self.end


def muted_by(
    breach: Breach, windows: Iterable[MuteWindow], now_ms: int, *, told: bool = False
) -> MuteWindow | None:
    """The first active window muting ``breach``, if any; ``told``: the receiver was
    delivered a firing notification of this breach before."""
    if told and breach.kind == "breach.resolved":
        return None
    for window in windows:
        if window.active(now_ms) and matchers_hold(window.match, breach):
            return window
    return None
