"""Reference discovery is generic (annotations first, field-name conventions second)
and every registered kind publishes a JSON Schema."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import Field

from shared.definitions.kinds.common import (
    CalendarRef,
    Metadata,
    PartyRef,
    ReceiverRef,
    RefTo,
    Spec,
)
from shared.definitions.model import KINDS
from shared.definitions.refs import Reference, references
from shared.definitions.schema import all_schema, kind_schema


class _Step(Spec):
    receivers: list[str]  # no annotation: the 'receivers' convention applies
    owner: PartyRef | None = None


class _GadgetSpec(Spec):
    calendar: CalendarRef
    notify: list[ReceiverRef] = Field(default_factory=list)
    steps: list[_Step] = Field(default_factory=list)
    source: Annotated[str, RefTo("Source")] | None = None
    service: dict[str, str] = Field(default_factory=dict)  # not text: not a reference


class _Gadget(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Gadget"]
    metadata: Metadata
    spec: _GadgetSpec


def test_references_of_any_model() -> None:
    gadget = _Gadget.model_validate(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Gadget",
            "metadata": {"name": "g"},
            "spec": {
                "calendar": "office",
                "notify": ["a", "b"],
                "steps": [{"receivers": ["c"], "owner": "acme"}],
                "source": "orders",
                "service": {"x": "y"},
            },
        }
    )
    assert list(references(gadget)) == [
        Reference("spec.calendar", "Calendar", "office", soft=False),
        Reference("spec.notify[0]", "Receiver", "a", soft=False),
        Reference("spec.notify[1]", "Receiver", "b", soft=False),
        Reference("spec.steps[0].receivers[0]", "Receiver", "c", soft=False),
        Reference("spec.steps[0].owner", "Party", "acme", soft=True),
        Reference("spec.source", "Source", "orders", soft=False),
    ]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_schema(kind: str) -> None:
    schema = kind_schema(kind)
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["properties"]["kind"]["const"] == kind
    assert set(schema["required"]) >= {"apiVersion", "kind", "metadata"}


def test_schema_of_any_document_branches_on_kind() -> None:
    schema = all_schema()
    assert schema["properties"]["kind"]["enum"] == sorted(KINDS)
    branches = {b["if"]["properties"]["kind"]["const"]: b["then"] for b in schema["allOf"]}
    assert set(branches) == set(KINDS)
    for kind, target in branches.items():
        assert target == {"$ref": f"#/$defs/{kind}"}
        assert kind in schema["$defs"]
    spec = schema["$defs"]["AgreementSpec"]
    assert spec["additionalProperties"] is False
    assert "penalties" in spec["properties"]
