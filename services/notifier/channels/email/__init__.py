"""Email channel: SMTP with STARTTLS or implicit TLS, plain-text and HTML parts."""

from services.notifier.channels.email.channel import EmailChannel

__all__ = ["EmailChannel"]
