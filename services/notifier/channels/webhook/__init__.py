"""Generic webhook channel: POST the breach event as JSON, signed when configured."""

from services.notifier.channels.webhook.channel import WebhookChannel

__all__ = ["WebhookChannel"]
