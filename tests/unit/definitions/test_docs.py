"""docs/definitions.md names every field of the kinds this package owns."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from shared.definitions.kinds.agreement import (
    AgreementSpec,
    MaintenancePolicy,
    PenaltyTier,
    Period,
    Termination,
)
from shared.definitions.kinds.common import Metadata
from shared.definitions.kinds.party import PartySpec
from shared.definitions.kinds.service import ServiceSpec

DOC = (Path(__file__).parents[3] / "docs" / "definitions.md").read_text()


@pytest.mark.parametrize(
    "model",
    [Metadata, AgreementSpec, Period, PenaltyTier, Termination, MaintenancePolicy, PartySpec,
     ServiceSpec],
)  # fmt: skip
def test_every_field_is_documented(model: type[BaseModel]) -> None:
    for name, info in model.model_fields.items():
        assert f"{info.alias or name}" in DOC, f"{model.__name__}.{info.alias or name}"
