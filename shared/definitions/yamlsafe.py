"""The one YAML loader for definitions: safe tags only, bounded depth, bounded aliases.

Every place that reads definition YAML (files for ``slawatch validate`` / ``apply`` /
``up``, the OpenSLO importer, the configuration API's bodies) goes through
:func:`load_all` or :func:`load_one`. On top of ``yaml.SafeLoader`` (no Python tags):

* nesting deeper than :data:`MAX_DEPTH` is refused while composing, so 10,000 times ``[``
  is an error message, not a ``RecursionError``;
* anchors and aliases are allowed (``<<: *defaults`` is a real convenience), but the
  document *as it will be stored* (every alias expanded, the way JSON sees it) may
  weigh at most the text's own length plus :data:`ALIAS_ALLOWANCE`. The weight of a
  node is 1 for a collection and the length of a scalar, so a "billion laughs" text,
  or a 14 KB Receiver that would expand to 10 MB, is refused before any object is
  built. The expansion is counted over the node graph with memoization (linear in
  the text, however far it would expand), and a recursive alias is refused.

Errors are ``yaml.YAMLError`` (:class:`YamlRefused`), so callers that already report
unreadable YAML report these the same way, with the line and column.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: Nesting of collections; real definitions stay under 10.
MAX_DEPTH = 64
#: Weight that alias expansion may add beyond the text's own length.
ALIAS_ALLOWANCE = 64 * 1024


class YamlRefused(yaml.YAMLError):
    """The text is YAML but too deep or expands too far; ``str()`` says where."""


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` with a depth check while composing and an expansion budget."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0
        self._budget = len(stream) + ALIAS_ALLOWANCE
        self._weights: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise YamlRefused(f"nesting deeper than {MAX_DEPTH} levels{mark}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            self._weights = {}  # ids are only unique among live nodes: one document
            self._budget -= self._weight(node, set())
            if self._budget < 0:
                raise YamlRefused(
                    "aliases expand the document too far (more than "
                    f"{ALIAS_ALLOWANCE} beyond the text's own size){node.start_mark}"
                )
        return node

    def _weight(self, node: Node, path: set[int]) -> int:
        """Expanded weight of ``node``; shared nodes (aliases) are counted each time
        they appear, computed once each. Depth is bounded by :data:`MAX_DEPTH`."""
        key = id(node)
        known = self._weights.get(key)
        if known is not None:
            return known
        if key in path:
            raise YamlRefused(f"recursive alias{node.start_mark}")
        if isinstance(node, ScalarNode):
            weight = max(1, len(node.value))
        else:
            path.add(key)
            weight = 1
            if isinstance(node, SequenceNode):
                children = node.value
            elif isinstance(node, MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            for child in children:
                weight += self._weight(child, path)
                if weight > self._budget:
                    break  # refused by the caller; no need to count further
            path.discard(key)
        self._weights[key] = weight
        return weight


def load_all(text: str | bytes) -> list[Any]:
    """Every document of ``text`` (``None`` for an empty one); :class:`YamlRefused`
    or another ``yaml.YAMLError`` when it cannot be read."""
    loader = _BoundedLoader(text)
    try:
        documents: list[Any] = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()


def load_one(text: str | bytes) -> Any:
    """The single document of ``text``; more than one is a ``yaml.YAMLError``."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """True when lists and dicts nest deeper than ``limit`` (for JSON bodies, which
    orjson reads up to 1024 levels); iterative, so any depth is safe to ask about."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
