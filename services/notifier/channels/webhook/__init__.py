"""Generic webhook channel: POST the breach event as JSON."""

from services.notifier.channels.webhook.channel import WebhookChannel

__all__ = ["WebhookChannel"]
