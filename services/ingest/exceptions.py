"""Errors of the ingest service.

SlawatchError                 (shared.errors)
└── IngestError
    ├── BodyTooLargeError     an HTTP body passed the configured limit while being read
    ├── InvalidEncodingError  a Content-Encoding: gzip body that does not decode
    └── PublishError          the broker did not acknowledge records after retries
"""

from __future__ import annotations

from shared.errors import SlawatchError


class IngestError(SlawatchError):
    """Base of the ingest service's own errors."""


class BodyTooLargeError(IngestError):
    """The request body is larger than ``max_body_bytes``; reading stopped at the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class InvalidEncodingError(IngestError):
    """The body does not decode with its declared content coding."""


class PublishError(IngestError):
    """Records were not acknowledged by the broker; offsets must not be committed."""

    retriable = True
