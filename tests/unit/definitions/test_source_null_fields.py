"""A Source mapping's optional fields written as ``null`` read as left out (found by
schemathesis against the configuration API: ``source: null`` was a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.definitions.load import DefinitionsInvalid, parse_document
from shared.definitions.model import Source


def source(**mapping: Any) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Source",
        "metadata": {"name": "shop-orders"},
        "spec": {"topics": ["shop.orders"], "mapping": {"service": "$.app", **mapping}},
    }


@pytest.mark.parametrize("field", ["source", "entity"])
def test_null_is_left_out(field: str) -> None:
    document = parse_document(source(**{field: None}))
    assert isinstance(document, Source)
    assert getattr(document.spec.mapping, field) is None
    assert document == parse_document(source())


@pytest.mark.parametrize("field", ["service", "type"])
def test_null_where_a_value_is_needed_is_an_error(field: str) -> None:
    with pytest.raises(DefinitionsInvalid) as caught:
        parse_document(source(**{field: None}))
    assert [e.path for e in caught.value.errors] == [f"spec.mapping.{field}"]
