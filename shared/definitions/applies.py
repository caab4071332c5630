"""Fields that do not apply, gathered over a whole document.

A model whose fields depend on each other (``for`` only means something under
``policy: threshold``, ``groupWait`` only on a route that groups, a deadline's
``select`` must let its own clock events through) declares
``field_checks() -> [(field path relative to the model, message)]``.
:func:`field_problems` walks a validated document, calls every such method and
prefixes the paths. The checks run when a document is written (``validate``,
``apply``, the API), not when a stored one is loaded: a document stored before a
check existed still loads.

Which fields a kind takes at all is the model's business (unknown fields are
refused there, with the union members that do take them, see
:func:`shared.definitions.load.validate_model`).
"""

from __future__ import annotations

from pydantic import BaseModel


def field_problems(model: BaseModel, path: str = "") -> list[tuple[str, str]]:
    """Every ``field_checks`` problem in ``model`` and the models inside it."""
    out: list[tuple[str, str]] = []
    own = getattr(model, "field_checks", None)
    if callable(own):
        out.extend((_join(path, where), message) for where, message in own())
    for name, info in type(model).model_fields.items():
        out.extend(_walk(getattr(model, name), _join(path, info.alias or name)))
    return out


def _walk(value: object, path: str) -> list[tuple[str, str]]:
    if isinstance(value, BaseModel):
        return field_problems(value, path)
    out: list[tuple[str, str]] = []
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            out.extend(_walk(item, f"{path}[{i}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            out.extend(_walk(item, f"{path}.{key}"))
    return out


def _join(path: str, field: str) -> str:
    if not path:
        return field
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"
