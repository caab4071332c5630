"""Services: the things events are about, with an owner and labels.

Declaring services is optional. Once any Service exists, every objective's
``service`` must name one (see :class:`~shared.definitions.kinds.common.RefTo`)::

    apiVersion: slawatch/v1
    kind: Service
    metadata: {name: checkout}
    spec:
      owner: payments-team
      description: Cart, payment and order confirmation
      labels: {tier: "1"}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.definitions.kinds.common import Metadata, PartyRef, Spec


class ServiceSpec(Spec):
    """``owner``: the Party (usually an internal team) answerable for the service."""

    owner: PartyRef | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class Service(Spec):
    """A monitored service; its name is the ``service`` of its events."""

    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
