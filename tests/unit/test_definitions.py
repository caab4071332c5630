"""Definition documents: the example set loads, mistakes point at file, document, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.definitions.load import DefinitionsInvalid, load_paths
from shared.definitions.model import Agreement, Receiver, ValueCondition

EXAMPLES = Path(__file__).parents[2] / "examples"

AGREEMENT = """
apiVersion: slawatch/v1
kind: Agreement
metadata: {{name: shop}}
spec:
  type: SLA
  objectives:
    - name: availability
      kind: ratio
      service: checkout
      good: {{outcome: good}}
      target: {target}
      window: {window}
  notify: [{{receivers: [{receiver}]}}]
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: hook}}
spec: {{type: webhook, url: "http://127.0.0.1:9000/"}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "defs.yaml"
    path.write_text(text)
    return path


def test_examples_load() -> None:
    documents = load_paths([EXAMPLES])
    kinds = {type(d) for d in documents}
    assert {Agreement, Receiver} <= kinds


def test_valid_agreement(tmp_path: Path) -> None:
    docs = load_paths(
        [write(tmp_path, AGREEMENT.format(target=0.99, window="30d", receiver="hook"))]
    )
    agreement = docs[0]
    assert isinstance(agreement, Agreement)
    assert agreement.spec.objectives[0].window_ms == 30 * 86_400_000


@pytest.mark.parametrize(
    ("target", "window", "receiver", "path", "words"),
    [
        (1.5, "30d", "hook", "spec.objectives[0].target", "less than 1"),
        (1, "30d", "hook", "spec.objectives[0].target", "less than 1"),
        (0.99, "30 days", "hook", "spec.objectives[0].window", "wrong unit"),
        (0.99, "30d", "nobody", "spec.notify[0].receivers[0]", "no Receiver named 'nobody'"),
    ],
)
def test_errors_point_at_the_field(
    tmp_path: Path, target: object, window: str, receiver: str, path: str, words: str
) -> None:
    file = write(tmp_path, AGREEMENT.format(target=target, window=window, receiver=receiver))
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([file])
    error = info.value.errors[0]
    assert error.path == path
    assert words in error.message


def test_unknown_field_and_kind(tmp_path: Path) -> None:
    text = (
        AGREEMENT.format(target=0.99, window="1h", receiver="hook").replace(
            "type: SLA", "type: SLA\n  colour: red"
        )
        + "---\napiVersion: slawatch/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {}\n"
    )
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([write(tmp_path, text)])
    rendered = [str(e) for e in info.value.errors]
    assert any("[0] Agreement/shop spec.colour" in r for r in rendered)
    assert any("[2] kind: unknown kind 'Gadget'" in r for r in rendered)


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [("<= 300", 300, True), ("< 300", 300, False), (">= 0.5", 0.4, False), ("!= 0", 1, True)],
)
def test_value_condition(text: str, value: float, holds: bool) -> None:
    assert ValueCondition.parse(text).holds(value) is holds


def test_value_condition_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="invalid condition"):
        ValueCondition.parse("fast")
