"""Slack incoming webhook channel (Block Kit)."""

from services.notifier.channels.slack.channel import SlackChannel

__all__ = ["SlackChannel"]
