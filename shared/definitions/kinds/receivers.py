"""Receivers: delivery targets, one spec per channel type."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.definitions.kinds.common import Metadata, Spec


class WebhookReceiverSpec(Spec):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


ReceiverSpec = WebhookReceiverSpec


class Receiver(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Receiver"]
    metadata: Metadata
    spec: ReceiverSpec
