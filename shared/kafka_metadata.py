"""No Kafka client of slawatch ever asks a broker to create a topic.

aiokafka sends every metadata request with ``allow_auto_topic_creation=True`` (its
``MetadataRequest`` default): a producer sending to a topic, a consumer subscribed to
one, or an admin ``describe_topics`` call recreates a missing topic, with the
broker's default partition count (4 on the embedded broker, whatever the
configuration says; measured: a metadata request for an unknown topic with the flag
set creates it, without the flag the answer is UNKNOWN_TOPIC_OR_PARTITION). So after
a broker restart lost the topics, the first request after it would silently create
them wrong.

:func:`forbid_topic_auto_creation` makes the flag default to False for the request
class aiokafka's client and admin modules build (a process-wide switch: aiokafka
offers no per-client option). Topics are created only by
``shared.topics.ensure_topics``, at start and by ``shared.topic_guard``.
"""

from __future__ import annotations

from aiokafka import client as _client
from aiokafka.admin import client as _admin
from aiokafka.protocol.metadata import MetadataRequest


class NoAutoCreateMetadataRequest(MetadataRequest):  # type: ignore[misc]
    """``MetadataRequest`` whose ``allow_auto_topic_creation`` defaults to False."""

    def __init__(
        self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False
    ) -> None:
        super().__init__(topics, allow_auto_topic_creation)


def forbid_topic_auto_creation() -> None:
    """Idempotent; called by every client factory in ``shared.kafka``."""
    _client.MetadataRequest = NoAutoCreateMetadataRequest
    _admin.MetadataRequest = NoAutoCreateMetadataRequest
