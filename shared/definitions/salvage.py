"""Every problem of a document in one run: prune what is invalid, validate the rest.

pydantic stops short in two ways: a model whose fields fail never runs its own
cross-field validators (nor do the models around it), and a document that fails
never reaches the checks that run on valid documents (references, burn-rate
windows, fields that do not apply). A person fixing a file would then see its
problems in stages, one run of ``validate`` after another.

:class:`Pruner` removes each failing part from a copy of the raw document and
validates again, until the rest validates (or nothing more can be removed)::

    round 1   spec.objectives[0].quantile: 99 fails    → remove quantile
    round 2   objectives[0] lacks quantile ("missing") → remove objectives[0]
    round 3   the agreement validates                  → its checks run on the rest

A part a document cannot lack (its ``spec``, the last of its objectives) is replaced
by a valid stand-in instead, so that the document keeps its name for the references
of the others, and the rest of it is still checked.

Paths of later rounds are mapped back to the document as written (a removed list
item shifts the indexes after it: :meth:`Pruner.original`). A later problem that
only exists because of a removal is dropped (:meth:`Pruner.caused`): one at a path
already reported or removed, a list made too short by removals, or a message that
names a removed field or a removed item's name. Pure: no I/O.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

Part = str | int
Parts = tuple[Part, ...]

_STEP = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def parse_path(path: str) -> Parts:
    """``spec.objectives[0].window`` → ``("spec", "objectives", 0, "window")``."""
    return tuple(
        int(index) if index else name for index, name in _STEP.findall(path) if index or name
    )


def show_path(parts: Parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


ANY_INDEX = "*"
"""In a stand-in's path: any item of the list."""


class Pruner:
    """A copy of a raw document that failing parts are removed from, with the way back
    from paths in the copy to paths in the document as written.

    ``stand_ins``: paths (as written) whose value is replaced by a valid one rather than
    removed, for parts a document cannot lack (``apiVersion``, ``metadata.name``, the
    ``spec`` of a kind, an objective's ``target`` through :data:`ANY_INDEX`), and lists
    whose last item is replaced rather than removed (an agreement's ``objectives``).
    Nothing is reported under a stand-in.
    """

    def __init__(self, raw: object, stand_ins: Mapping[Parts, object] | None = None) -> None:
        self.data: Any = copy.deepcopy(raw)
        self._stand_ins = dict(stand_ins or {})
        self._replaced: set[Parts] = set()
        self._kept: dict[Parts, list[int]] = {}  # list path → original index per position
        self._removed: list[tuple[Parts, str | None]] = []  # original path, word it had
        self._shortened: set[Parts] = set()
        self._dropped_names: set[str] = set()
        self.reported: set[Parts] = set()

    @property
    def pruned(self) -> bool:
        return bool(self._removed or self._replaced)

    def original(self, parts: Parts) -> Parts:
        """A path in the copy → the same place in the document as written."""
        out: list[Part] = []
        for part in parts:
            if isinstance(part, int):
                kept = self._kept.get(tuple(out))
                out.append(kept[part] if kept is not None and part < len(kept) else part)
            else:
                out.append(part)
        return tuple(out)

    def caused(self, parts: Parts, message: str, kind: str = "") -> bool:
        """Whether a problem at ``parts`` (as written) only exists because of removals."""
        if parts in self.reported:
            return True
        if any(parts[: len(r)] == r for r in self._replaced):
            return True
        if kind == "too_short" and parts in self._shortened:
            return True
        for removed, word in self._removed:
            if removed == parts:
                return True
            under = removed[: len(parts)] == parts
            if under and word and re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", message):
                return True
        return any(f"'{name}'" in message for name in self._dropped_names)

    def repath(self, path: str, message: str) -> str | None:
        """A path of a check run on the pruned document → the path as written, or
        ``None`` when the problem only exists because of removals."""
        if not self.pruned:
            return path
        parts = self.original(parse_path(path))
        return None if self.caused(parts, message) else show_path(parts)

    def prune(self, locs: list[tuple[int | str, ...]]) -> bool:
        """Remove (or stand in for) the part at each of pydantic's ``locs`` in the copy;
        for a missing field, the mapping that lacks it. All are found before any is
        removed, list items from the last one back, so that one removal does not move
        another's target. ``False``: nothing left to remove."""
        targets: list[tuple[Any, Part, Parts, Parts]] = []  # container, key, where, list
        progress = False
        for loc in locs:
            found = self._target(loc)
            if found is True:
                progress = True
            elif isinstance(found, tuple):
                targets.append(found)
        lists = [t for t in targets if isinstance(t[0], list)]
        lists.sort(key=lambda t: t[1], reverse=True)
        done: set[tuple[int, Part]] = set()
        for container, key, where, list_path in [
            *(t for t in targets if not isinstance(t[0], list)),
            *lists,
        ]:
            if (id(container), key) in done:
                continue
            done.add((id(container), key))
            progress = True
            removed = container[key]
            if isinstance(container, list):
                name = removed.get("name") if isinstance(removed, dict) else None
                if isinstance(name, str) and name:
                    self._dropped_names.add(name)
                if len(container) == 1 and list_path in self._stand_ins:
                    container[0] = copy.deepcopy(self._stand_ins[list_path])
                    self._replaced.add(where)
                    continue
                kept = self._kept.setdefault(list_path, list(range(len(container))))
                del kept[key]  # type: ignore[arg-type]
                del container[key]  # type: ignore[arg-type]
                self._shortened.add(list_path)
                self._removed.append((where, None))
            else:
                del container[key]
                self._removed.append((where, str(key)))
        return progress

    def _target(self, loc: tuple[int | str, ...]) -> tuple[Any, Part, Parts, Parts] | bool | None:
        """What to remove for one ``loc``: (container, key, path as written, path of the
        list as written); ``True`` when a stand-in was put in place; ``None``: nothing."""
        chain: list[tuple[Any, Part, Parts]] = []  # (container, key, original path)
        node: Any = self.data
        here: Parts = ()
        missing: Part | None = None
        for n, part in enumerate(loc):
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                here = (*here, part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                here = self.original((*self._copy_path(chain), part))
            else:
                if n == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str):
                    missing = part
                continue  # a union tag, a validator's step, or a rewritten short form
            chain.append((node, part, here))
            node = node[part]
        if missing is not None:
            wanted = (*here, missing)
            if wanted in self._stand_ins and isinstance(node, dict):
                node[missing] = copy.deepcopy(self._stand_ins[wanted])
                self._replaced.add(wanted)
                return True
        if not chain:
            return None
        container, key, where = chain[-1]
        stand_in_at = where if where in self._stand_ins else _any_index(where)
        if stand_in_at in self._stand_ins:
            stand_in = self._stand_ins[stand_in_at]
            if container[key] == stand_in:
                return None
            container[key] = copy.deepcopy(stand_in)
            self._replaced.add(where)
            return True
        return container, key, where, self.original(self._copy_path(chain[:-1]))

    @staticmethod
    def _copy_path(chain: list[tuple[Any, Part, Parts]]) -> Parts:
        return tuple(key for _, key, _ in chain)


def _any_index(parts: Parts) -> Parts:
    """A path with every list index as ``ANY_INDEX``: how a stand-in names a field of
    every item of a list (``spec.objectives[*].target``)."""
    return tuple(ANY_INDEX if isinstance(p, int) else p for p in parts)
