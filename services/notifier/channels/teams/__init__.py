"""Microsoft Teams channel (Adaptive Card)."""

from services.notifier.channels.teams.channel import TeamsChannel

__all__ = ["TeamsChannel"]
