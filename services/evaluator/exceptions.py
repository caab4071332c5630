"""Errors of the evaluator.

SlawatchError                      (shared.errors)
└── EvaluatorError
    └── StateFormatError           a checkpoint snapshot that cannot be read
"""

from __future__ import annotations

from shared.errors import SlawatchError


class EvaluatorError(SlawatchError):
    """Base of the evaluator's own errors."""


class StateFormatError(EvaluatorError):
    """A state snapshot has an unknown version or a malformed body."""
