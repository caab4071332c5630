"""Errors of period reports.

NotifierError (services.notifier.exceptions)
└── ReportError
    ├── UnknownAgreement   no stored Agreement of that name (HTTP 404)
    └── BadPeriod          the period text names no period (HTTP 400)
"""

from __future__ import annotations

from services.notifier.exceptions import NotifierError


class ReportError(NotifierError):
    """A report cannot be made; the message says why."""


class UnknownAgreement(ReportError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no agreement named {name!r}")
        self.name = name


class BadPeriod(ReportError, ValueError):
    """The text names no period; the message says what to write."""
