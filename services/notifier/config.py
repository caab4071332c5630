"""The notifier's own settings, on top of the shared ones (same ``SLAWATCH_`` prefix).

SLAWATCH_NOTIFIER_PUBLIC_URL   base of the links in messages (status API, ack link);
                               default http://<host>:<notifier_port>
SLAWATCH_ACK_LINK_TTL_MS       how long an ack link works (default 7 days)
SLAWATCH_CIRCUIT_THRESHOLD     consecutive retriable failures that open a circuit (5)
SLAWATCH_CIRCUIT_OPEN_MS       first open period (10 s; doubles while it keeps failing)
SLAWATCH_ACK_LINK_KEY_FILE     the ack-link signing key, 0600 (default <data_dir>/ack-link.key;
                               services.notifier.ackkey)
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.notifier.acklink import DEFAULT_TTL_MS
from shared.settings import Settings


class NotifierSettings(Settings):
    notifier_public_url: str | None = None
    ack_link_ttl_ms: int = Field(default=DEFAULT_TTL_MS, ge=60_000)
    circuit_threshold: int = Field(default=5, ge=1)
    circuit_open_ms: int = Field(default=10_000, ge=10)
    lease_margin_ms: int = Field(default=10_000, ge=100)
    ack_link_key_file: Path | None = None

    @classmethod
    def extend(cls, settings: Settings) -> NotifierSettings:
        """The shared settings as given, plus the notifier's own (read here)."""
        if isinstance(settings, NotifierSettings):
            return settings
        return cls(**settings.model_dump())

    @property
    def ack_key_path(self) -> Path:
        return self.ack_link_key_file or self.data_dir / "ack-link.key"

    @property
    def public_url(self) -> str:
        return self.notifier_public_url or f"http://{self.host}:{self.notifier_port}"
