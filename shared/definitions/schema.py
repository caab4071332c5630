"""JSON Schema (draft 2020-12) of every kind in the registry, for editors and the API.

Generated from the kind models, so a kind registered in
:data:`shared.definitions.model.KINDS` is published without further work.
"""

from __future__ import annotations

from typing import Any

from shared.definitions.model import KINDS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://slawatch.dev/schemas/v1"


def kind_schema(kind: str) -> dict[str, Any]:
    """The schema of one kind; ``KeyError`` for an unknown kind."""
    schema = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DIALECT, "$id": f"{SCHEMA_ID}/{kind}.json", **schema}


def all_schema() -> dict[str, Any]:
    """One schema accepting a document of any kind (chosen by its ``kind``)."""
    defs: dict[str, Any] = {}
    branches: list[dict[str, Any]] = []
    for kind in sorted(KINDS):
        schema = KINDS[kind].model_json_schema(
            by_alias=True, mode="validation", ref_template="#/$defs/{model}"
        )
        defs.update(schema.pop("$defs", {}))
        defs[kind] = schema
        branches.append(
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{kind}"},
            }
        )
    return {
        "$schema": DIALECT,
        "$id": f"{SCHEMA_ID}/all.json",
        "title": "slawatch definition document",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"const": "slawatch/v1"},
            "kind": {"enum": sorted(KINDS)},
        },
        "allOf": branches,
        "$defs": defs,
    }
