"""Agreements: SLA, OLA or UC between parties, with objectives and a notification policy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.definitions.kinds.common import Metadata, Spec
from shared.definitions.kinds.objectives import Objective
from shared.definitions.kinds.policy import Route


class AgreementSpec(Spec):
    type: Literal["SLA", "OLA", "UC"]
    provider: str | None = None
    consumer: str | None = None
    objectives: list[Objective] = Field(min_length=1)
    notify: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_objectives(self) -> AgreementSpec:
        names = [o.name for o in self.objectives]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"objective names must be unique; repeated: {', '.join(duplicates)}")
        return self


class Agreement(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Agreement"]
    metadata: Metadata
    spec: AgreementSpec
