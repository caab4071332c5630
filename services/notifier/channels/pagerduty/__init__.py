"""PagerDuty Events API v2 channel."""

from services.notifier.channels.pagerduty.channel import PagerDutyChannel

__all__ = ["PagerDutyChannel"]
