"""Reading definition documents from YAML files, with errors that point at
file, document index and field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from shared.definitions.model import KINDS, Document


@dataclass(frozen=True)
class DefinitionError:
    """One problem in one document."""

    file: str
    index: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}[{self.index}]"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionsInvalid(ValueError):
    def __init__(self, errors: list[DefinitionError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_document(raw: Any, file: str = "<input>", index: int = 0) -> Document:
    """Validate one decoded document; raises :class:`DefinitionsInvalid`."""
    if not isinstance(raw, dict):
        raise DefinitionsInvalid([DefinitionError(file, index, "", "a document must be a mapping")])
    kind = raw.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(KINDS))
        raise DefinitionsInvalid(
            [DefinitionError(file, index, "kind", f"unknown kind {kind!r} (known: {known})")]
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [
            DefinitionError(file, index, _field_path(tuple(e["loc"])), e["msg"])
            for e in exc.errors()
        ]
        raise DefinitionsInvalid(errors) from None


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def load_paths(paths: Iterable[Path]) -> list[Document]:
    """Every document of every YAML file under ``paths``; all errors at once."""
    documents: list[Document] = []
    errors: list[DefinitionError] = []
    for file in yaml_files(paths):
        try:
            raws = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        except (OSError, yaml.YAMLError) as exc:
            errors.append(DefinitionError(str(file), 0, "", f"cannot read YAML: {exc}"))
            continue
        for index, raw in enumerate(raws):
            try:
                documents.append(parse_document(raw, str(file), index))
            except DefinitionsInvalid as exc:
                errors.extend(exc.errors)
    errors.extend(check_references(documents))
    if errors:
        raise DefinitionsInvalid(errors)
    return documents


def check_references(documents: list[Document]) -> list[DefinitionError]:
    """Routes must name receivers that exist; names must be unique per kind."""
    from shared.definitions.model import Agreement, Receiver

    errors: list[DefinitionError] = []
    receivers = {d.metadata.name for d in documents if isinstance(d, Receiver)}
    seen: set[tuple[str, str]] = set()
    for doc in documents:
        key = (doc.kind, doc.metadata.name)
        if key in seen:
            errors.append(
                DefinitionError(
                    doc.kind, 0, "metadata.name", f"duplicate {doc.kind} {doc.metadata.name!r}"
                )
            )
        seen.add(key)
        if isinstance(doc, Agreement):
            for r, route in enumerate(doc.spec.notify):
                for name in route.receivers:
                    if name not in receivers:
                        errors.append(
                            DefinitionError(
                                f"Agreement/{doc.metadata.name}",
                                0,
                                f"spec.notify[{r}].receivers",
                                f"no Receiver named {name!r}",
                            )
                        )
    return errors
