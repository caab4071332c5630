"""An agreement with every objective kind, penalties, termination and maintenance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.definitions.kinds.agreement import Agreement

MIN = 60_000
HOUR = 3_600_000
NOV = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
DEC = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
OCT = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp() * 1000)


def make_agreement(**spec: Any) -> Agreement:
    values: dict[str, Any] = {
        "type": "SLA",
        "provider": "shopco",
        "consumer": "acme",
        "period": {"every": "month", "timezone": "UTC"},
        "objectives": [
            {
                "name": "availability",
                "kind": "ratio",
                "service": "checkout",
                "select": {"type": "request"},
                "good": {"outcome": "good"},
                "target": 0.99,
                "window": "30d",
                "groupBy": ["customer"],
            },
            {
                "name": "latency",
                "kind": "quantile",
                "service": "checkout",
                "quantile": 0.9,
                "threshold": 300,
                "window": "1h",
            },
            {
                "name": "heartbeat",
                "kind": "freshness",
                "service": "checkout",
                "maxSilence": "5m",
            },
            {
                "name": "tickets",
                "kind": "deadline",
                "service": "support",
                "start": ["ticket.opened"],
                "stop": ["ticket.resolved"],
                "target": "1h",
            },
        ],
        "penalties": [
            {"below": 0.99, "creditPercent": 10, "objective": "availability"},
            {"below": 0.95, "creditPercent": 25, "objective": "availability"},
            {"below": 0.8, "creditPercent": 5, "objective": "latency"},
        ],
        "termination": {"consecutiveMissedPeriods": 2},
        "maintenance": {"exclude": True},
    }
    values.update(spec)
    return Agreement.model_validate(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Agreement",
            "metadata": {"name": "acme"},
            "spec": values,
        }
    )
