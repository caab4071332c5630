"""Parties: who promises (provider), who is promised (customer), internal teams and
suppliers. Agreements name them as ``provider`` and ``consumer``; their ``contacts``
are receivers that period reports and notifications can go to::

    apiVersion: slawatch/v1
    kind: Party
    metadata: {name: acme}
    spec:
      role: customer
      displayName: ACME Corporation
      contacts: [acme-service-desk]
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.definitions.kinds.common import Metadata, ReceiverRef, Spec

Role = Literal["provider", "customer", "internal-team", "supplier"]


class PartySpec(Spec):
    role: Role
    display_name: str | None = None
    description: str | None = None
    contacts: list[ReceiverRef] = Field(default_factory=list)


class Party(Spec):
    """A provider, customer, internal team or supplier."""

    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Party"]
    metadata: Metadata
    spec: PartySpec
