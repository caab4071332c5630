"""References between documents, found generically over the kind registry.

A field refers to another document when its annotation carries
:class:`~shared.definitions.kinds.common.RefTo` (``PartyRef``, ``ReceiverRef``, ...).
Fields that predate the annotation are recognised by name (:data:`CONVENTIONS`), so
kinds owned elsewhere get reference checks without change; an annotation always wins.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from shared.definitions.kinds.common import RefTo

#: Field name → what it refers to, for fields without a ``RefTo`` annotation.
CONVENTIONS: dict[str, RefTo] = {
    "receivers": RefTo("Receiver"),
    "receiver": RefTo("Receiver"),
    "calendar": RefTo("Calendar"),
    "service": RefTo("Service", soft=True),
    "provider": RefTo("Party", soft=True),
    "consumer": RefTo("Party", soft=True),
    "underpins": RefTo("Agreement"),
}


@dataclass(frozen=True)
class Reference:
    """``path`` (a field path such as ``spec.notify[0].receivers[1]``) names ``kind/name``."""

    path: str
    kind: str
    name: str
    soft: bool


def _ref_in(annotation: Any) -> RefTo | None:
    """The RefTo anywhere in an annotation (``list[ReceiverRef]``, ``PartyRef | None``)."""
    if get_origin(annotation) is Annotated:
        for extra in get_args(annotation)[1:]:
            if isinstance(extra, RefTo):
                return extra
        return _ref_in(get_args(annotation)[0])
    for arg in get_args(annotation):
        found = _ref_in(arg)
        if found is not None:
            return found
    return None


def _field_ref(name: str, info: FieldInfo) -> tuple[RefTo, bool] | None:
    """What the field refers to, and whether by convention only (not annotated)."""
    for extra in info.metadata:
        if isinstance(extra, RefTo):
            return extra, False
    annotated = _ref_in(info.annotation)
    if annotated is not None:
        return annotated, False
    by_name = CONVENTIONS.get(name)
    return (by_name, True) if by_name is not None else None


#: A name a document can have; a conventional field whose value is not one (a JSON
#: path such as ``$.app`` in a Source mapping) is no reference.
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _is_text_field(info: FieldInfo) -> bool:
    """Only string-valued fields can be references (a ``service`` sub-model is not)."""

    def texts(annotation: Any) -> bool:
        if annotation is str:
            return True
        if get_origin(annotation) is Annotated:
            return texts(get_args(annotation)[0])
        origin = get_origin(annotation)
        if origin in (list, tuple, typing.Union, types.UnionType):
            return any(texts(a) for a in get_args(annotation) if a is not type(None))
        return False

    return texts(info.annotation)


def references(model: BaseModel, path: str = "") -> Iterator[Reference]:
    """Every reference in ``model`` (a document or part of one), depth first."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        alias = info.alias or name
        here = f"{path}.{alias}" if path else alias
        found = _field_ref(name, info) if path.startswith("spec") else None
        if found is not None and _is_text_field(info):
            ref, conventional = found
            items = [(here, value)] if isinstance(value, str) else []
            if isinstance(value, list | tuple):
                items = [(f"{here}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
            for where, item in items:
                if not conventional or _NAME.match(item):
                    yield Reference(where, ref.kind, item, ref.soft)
            continue
        yield from _walk(value, here)


def _walk(value: object, path: str) -> Iterator[Reference]:
    if isinstance(value, BaseModel):
        yield from references(value, path)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
