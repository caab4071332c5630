"""Errors of the notifier package.

SlawatchError (shared.errors)
└── NotifierError
    └── DeliveryError   a channel could not deliver; says retriable or not, and why
                        (defined in :mod:`services.notifier.channels.base`)
"""

from __future__ import annotations

from shared.errors import SlawatchError


class NotifierError(SlawatchError):
    """Base of every error the notifier raises on purpose."""
