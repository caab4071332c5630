"""Prometheus Alertmanager channel: push breaches as alerts."""

from services.notifier.channels.alertmanager.channel import AlertmanagerChannel

__all__ = ["AlertmanagerChannel"]
