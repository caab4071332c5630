"""Reading definition documents from YAML files, with errors that point at
file, document index and field, in words a person understands.

Two stages:

1. :func:`parse_document` validates one document against its kind's model
   (unknown fields with a "did you mean", wrong units, impossible targets, a window
   shorter than an alert's long window, ...);
2. :func:`check_set` checks a set of documents together: duplicate names, references
   to documents that do not exist (see :mod:`shared.definitions.refs`) and checks a
   kind declares with ``cross_checks(find)``.

:func:`load_paths` does both over files and folders and reports every error at once.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.definitions import messages, yamlsafe
from shared.definitions.applies import field_problems
from shared.definitions.kinds.common import API_VERSION
from shared.definitions.kinds.objectives import Objective
from shared.definitions.kinds.receivers import ReceiverSpec
from shared.definitions.model import KINDS, Document
from shared.definitions.refs import references
from shared.definitions.salvage import ANY_INDEX, Pruner, parse_path, show_path
from shared.timeutil import parse_duration_ms


@dataclass(frozen=True)
class DefinitionError:
    """One problem in one document: ``file``, the document (``index`` in the file, and
    its ``kind`` and ``name`` when they are known), the field ``path`` (as written,
    ``""`` for the document as a whole) and a ``message`` for people."""

    file: str
    index: int
    path: str
    message: str
    kind: str | None = None
    name: str | None = None

    @property
    def document(self) -> str:
        """``defs.yaml[0] Agreement/shop``: where, in words."""
        where = f"{self.file}[{self.index}]"
        if self.kind is None:
            return where
        return f"{where} {self.kind}/{self.name}" if self.name else f"{where} {self.kind}"

    def __str__(self) -> str:
        where = self.document
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionsInvalid(ValueError):
    def __init__(self, errors: list[DefinitionError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


#: Maps a path of a check run on a pruned document back to the document as written
#: (``None``: the problem only exists because of what was pruned).
Repath = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Located:
    """A document and where it came from. ``repath``: set when invalid parts were
    pruned from it (:mod:`shared.definitions.salvage`) so that its references are
    still checked; such a document is never stored."""

    document: Document
    file: str
    index: int
    repath: Repath | None = None


# -- one document ---------------------------------------------------------------------

#: The name a document with an invalid name goes on being checked under.
_NAME_STAND_IN = "invalid-name"
_STAND_INS: dict[tuple[str | int, ...], object] = {
    ("apiVersion",): API_VERSION,
    ("metadata",): {"name": _NAME_STAND_IN},
    ("metadata", "name"): _NAME_STAND_IN,
}
_OBJECTIVE_STAND_IN = {"name": _NAME_STAND_IN, "kind": "freshness", "service": _NAME_STAND_IN,
                       "maxSilence": "1d"}  # fmt: skip
#: A valid ``spec`` per kind, standing in for one that cannot be validated.
_SPEC_STAND_INS: dict[str, object] = {
    "Agreement": {"type": "SLA", "objectives": [_OBJECTIVE_STAND_IN]},
    "Receiver": {"type": "webhook", "url": "https://stand-in.invalid/"},
    "Calendar": {},
    "Silence": {"start": 0, "end": 1},
    "MaintenanceWindow": {"start": 0, "end": 1},
    "Service": {},
    "Party": {"role": "provider"},
    "Source": {"topics": ["stand-in"], "mapping": {"service": "$.service"}},
}
_MAX_ROUNDS = 32


def parse_document(raw: Any, file: str = "<input>", index: int = 0) -> Document:
    """Validate one decoded document with every check of one document; raises
    :class:`DefinitionsInvalid` with every problem found."""
    document, _, errors = examine(raw, file, index)
    if errors or document is None:
        raise DefinitionsInvalid(errors)
    return document


def validate_model(raw: Any, file: str = "<input>", index: int = 0) -> Document:
    """Only the kind's model (no :func:`document_checks`: stored documents load even if
    they predate a check); raises :class:`DefinitionsInvalid`."""
    document, _, errors = examine(raw, file, index, checks=False)
    if errors or document is None:
        raise DefinitionsInvalid(errors)
    return document


def examine(
    raw: Any, file: str = "<input>", index: int = 0, *, checks: bool = True
) -> tuple[Document | None, Repath | None, list[DefinitionError]]:
    """Every problem of one document in one run.

    Returns the document (when invalid: what is left after pruning the invalid parts,
    so that set checks can still run on it; ``None`` when nothing is left), the
    :data:`Repath` of a pruned document, and the errors (with ``checks``: also those of
    :func:`document_checks`)."""
    if not isinstance(raw, dict):
        return None, None, [DefinitionError(file, index, "", "a document must be a mapping")]
    kind = raw.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind_tag = kind if isinstance(kind, str) else None
    name_tag = name if isinstance(name, str) else None
    if model is None:
        known = ", ".join(sorted(KINDS))
        if kind is None:
            text = f"missing 'kind': one of {known}"
        else:
            hint = _did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
            text = f"unknown kind {kind!r}{hint} (known: {known})"
        return None, None, [DefinitionError(file, index, "kind", text, None, name_tag)]
    stand_ins = {
        **_STAND_INS,
        ("spec", "objectives"): _OBJECTIVE_STAND_IN,
        # an impossible target stands in, so its objective's other problems still show
        ("spec", "objectives", ANY_INDEX, "target"): 0.99,
    }
    if kind in _SPEC_STAND_INS:
        stand_ins[("spec",)] = _SPEC_STAND_INS[kind]
    pruner = Pruner(raw, stand_ins)
    errors: list[DefinitionError] = []
    document: Document | None = None
    for _ in range(_MAX_ROUNDS):
        try:
            document = model.model_validate(pruner.data)
            break
        except ValidationError as exc:
            found = exc.errors()
        for e in found:
            error = _error(model, file, index, e)
            parts = pruner.original(parse_path(error.path))
            if not pruner.caused(parts, error.message, e["type"]):
                pruner.reported.add(parts)
                errors.append(replace(error, path=show_path(parts), kind=kind_tag, name=name_tag))
        if not pruner.prune([tuple(e["loc"]) for e in found]):
            break
    repath = pruner.repath if pruner.pruned else None
    if checks and document is not None:
        for path, message in document_checks(document):
            where = path if repath is None else repath(path, message)
            if where is not None:
                errors.append(DefinitionError(file, index, where, message, kind_tag, name_tag))
    return document, repath, errors


def document_checks(document: BaseModel) -> list[tuple[str, str]]:
    """Checks across fields of one document that its model leaves open: fields that
    do not apply (:func:`shared.definitions.applies.field_problems`), the kind's own
    ``checks()``, and burn-rate windows.

    An objective's window must be at least as long as the longest window any of its
    burn-rate rules looks at: a 1h budget cannot be judged over 3d. Tolerant of the
    objective kinds' evolving shapes: anything it does not recognise is skipped.
    """
    own = getattr(document, "checks", None)
    out: list[tuple[str, str]] = field_problems(document)
    out.extend(own() if callable(own) else [])
    spec = getattr(document, "spec", None)
    for i, objective in enumerate(getattr(spec, "objectives", None) or ()):
        window_ms = _window_ms(objective)
        alerting = getattr(objective, "alerting", None)
        rules = getattr(alerting, "rules", ()) if alerting is not None else ()
        if window_ms is None or not isinstance(rules, tuple | list):
            continue
        longest: tuple[int, int, str] | None = None  # (ms, rule index, text)
        for r, rule in enumerate(rules):
            try:
                long_ms = parse_duration_ms(rule.long)
            except (AttributeError, TypeError, ValueError):
                continue
            if longest is None or long_ms > longest[0]:
                longest = (long_ms, r, rule.long)
        if longest is not None and longest[0] > window_ms:
            custom = bool(getattr(alerting, "burn_rates", None))
            where = (
                f"alerting.burnRates[{longest[1]}].long"
                if custom
                else "the default burn-rate rules"
            )
            out.append(
                (
                    f"spec.objectives[{i}].window",
                    f"window {objective.window} is shorter than the alert's long window "
                    f"{longest[2]} ({where}); lengthen the window or use shorter "
                    "burn-rate windows",
                )
            )
    return out


def _window_ms(objective: object) -> int | None:
    value = getattr(objective, "window_ms", None)
    if isinstance(value, int):
        return value
    window = getattr(objective, "window", None)
    try:
        return parse_duration_ms(window) if isinstance(window, str) else None
    except ValueError:
        return None


# -- pydantic errors → messages -------------------------------------------------------


def _error(model: type[BaseModel], file: str, index: int, error: ErrorDetails) -> DefinitionError:
    path, parent = _locate(model, tuple(error["loc"]))
    kind = error["type"]
    last = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        elsewhere = _taken_by_siblings(parent, field)
        if elsewhere is not None:
            return DefinitionError(file, index, path, elsewhere)
        return DefinitionError(
            file, index, path, messages.message(error, field, _fields_of(parent))
        )
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx", {})
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        tag = ctx.get("tag") if kind == "union_tag_invalid" else None
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        if not expected:
            expected = _union_tags(discriminator)
        path = f"{path}.{discriminator}" if path else discriminator
        return DefinitionError(
            file, index, path, messages.union_tag_message(discriminator, tag, expected)
        )
    return DefinitionError(file, index, path, messages.message(error, last))


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    return messages.did_you_mean(word, candidates)


def _unions() -> list[tuple[str, list[type[BaseModel]]]]:
    """(discriminator, members) of the discriminated unions in definitions."""
    out: list[tuple[str, list[type[BaseModel]]]] = []
    for union, discriminator in ((Objective, "kind"), (ReceiverSpec, "type")):
        members = [m for m in get_args(_strip(union)) if isinstance(m, type)]
        out.append((discriminator, members))
    return out


def _tag_of(member: type[BaseModel], discriminator: str) -> str:
    info = member.model_fields.get(discriminator)
    args = get_args(_strip(info.annotation)) if info is not None else ()
    return str(args[0]) if args else member.__name__


def _union_tags(discriminator: str) -> list[str]:
    for disc, members in _unions():
        if disc == discriminator:
            return [_tag_of(m, disc) for m in members]
    return []


def _taken_by_siblings(parent: type[BaseModel] | None, field: str) -> str | None:
    """For a field unknown to one member of a union (``window`` on a deadline objective)
    that other members take: which, so the person sees why it does not apply here."""
    for discriminator, members in _unions():
        if parent not in members:
            continue
        takers = [_tag_of(m, discriminator) for m in members if field in _fields_of(m)]
        if not takers:
            return None
        own = _tag_of(parent, discriminator)
        allowed = sorted(_fields_of(parent))
        return (
            f"{field!r} does not apply to {discriminator} {own!r} (only to {discriminator} "
            f"{', '.join(takers)}); allowed here: {', '.join(allowed)}"
        )
    return None


def _fields_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _strip(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> list[Any] | None:
    if get_origin(tp) in (typing.Union, types.UnionType):
        return [_strip(a) for a in get_args(tp) if a is not type(None)]
    return None


def _tags(tp: Any) -> set[str]:
    """Values of single-valued ``Literal`` fields: the tags pydantic puts in a union's loc."""
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return set()
    tags: set[str] = set()
    for info in tp.model_fields.values():
        ann = _strip(info.annotation)
        if get_origin(ann) is Literal:
            tags.update(str(a) for a in get_args(ann))
    return tags


def _locate(
    model: type[BaseModel], loc: tuple[int | str, ...]
) -> tuple[str, type[BaseModel] | None]:
    """pydantic's ``loc`` → a field path users wrote (aliases, no union tags), and the
    model at the end of the path's parent (for "did you mean")."""
    tp: Any = model
    out = ""
    parent: type[BaseModel] | None = model
    for n, part in enumerate(loc):
        tp = _strip(tp)
        members = _union_members(tp)
        if members is not None:
            chosen = next(
                (m for m in members if getattr(m, "__name__", None) == part or part in _tags(m)),
                None,
            )
            if chosen is not None:
                tp = chosen
                continue
            tp = members[0] if len(members) == 1 else None
            tp = _strip(tp)
        if isinstance(part, str) and (
            part.startswith("function-") or part in ("lax-or-strict", "[key]")
        ):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
            args = get_args(tp) if get_origin(tp) in (list, tuple) else ()
            tp = args[0] if args else None
            continue
        out += f".{part}" if out else part
        if n == len(loc) - 1:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent = tp
            field = next(
                (i for name, i in tp.model_fields.items() if part in (name, i.alias)), None
            )
            tp = field.annotation if field is not None else None
            if field is not None and field.metadata:
                tp = Annotated[tp, *field.metadata] if tp is not None else None
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            tp = None
    if loc and isinstance(tp, type) and issubclass(tp, BaseModel):
        parent = tp if isinstance(loc[-1], str) and loc[-1] not in tp.model_fields else parent
    return out, parent if isinstance(parent, type) else None


# -- sets of documents ----------------------------------------------------------------


def check_set(located: Sequence[Located], stored: Iterable[Document] = ()) -> list[DefinitionError]:
    """Duplicates, dangling references and cross-document checks of ``located``,
    resolved against ``located`` plus ``stored`` (documents already applied; a located
    document replaces the stored one of the same kind and name)."""
    errors: list[DefinitionError] = []

    def add(item: Located, path: str, message: str) -> None:
        where = path if item.repath is None else item.repath(path, message)
        if where is None:
            return
        doc = item.document
        name = None if doc.metadata.name == _NAME_STAND_IN else doc.metadata.name
        errors.append(DefinitionError(item.file, item.index, where, message, doc.kind, name))

    first: dict[tuple[str, str], Located] = {}
    for item in located:
        doc = item.document
        key = (doc.kind, doc.metadata.name)
        if doc.metadata.name == _NAME_STAND_IN:
            continue
        if key in first:
            seen = first[key]
            add(
                item,
                "metadata.name",
                f"duplicate {doc.kind} {doc.metadata.name!r} "
                f"(first defined in {seen.file}[{seen.index}])",
            )
        else:
            first[key] = item
    universe: dict[tuple[str, str], Document] = {(d.kind, d.metadata.name): d for d in stored}
    universe.update((key, item.document) for key, item in first.items())
    names: dict[str, set[str]] = {}
    for kind, name in universe:
        names.setdefault(kind, set()).add(name)

    def find(kind: str, name: str) -> object | None:
        return universe.get((kind, name))

    for item in located:
        for ref in references(item.document):
            known = names.get(ref.kind, set())
            if ref.name in known or (ref.soft and not known):
                continue
            add(item, ref.path, f"no {ref.kind} named {ref.name!r}{_did_you_mean(ref.name, known)}")
        cross = getattr(item.document, "cross_checks", None)
        if callable(cross):
            for path, message in cross(find):
                add(item, path, message)
    return errors


def check_references(documents: list[Document]) -> list[DefinitionError]:
    """:func:`check_set` for documents without a known origin (named ``Kind/name``)."""
    return check_set([Located(d, f"{d.kind}/{d.metadata.name}", 0) for d in documents])


def referrers(documents: Iterable[Document], kind: str, name: str) -> list[str]:
    """``Kind/name`` of every document that refers to ``kind/name`` (hard references)."""
    return sorted(
        {
            f"{d.kind}/{d.metadata.name}"
            for d in documents
            for ref in references(d)
            if ref.kind == kind and ref.name == name
        }
    )


# -- files -------------------------------------------------------------------------


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")))
        else:
            files.append(path)
    return files


def parse_text(text: str, file: str) -> tuple[list[Located], list[DefinitionError]]:
    """Every document of one YAML text, and every problem of each on its own.

    ``located`` also holds what is left of invalid documents (with a ``repath``), so
    that :func:`check_set` reports their dangling references in the same run; only
    a text without errors is meant to be stored."""
    located: list[Located] = []
    errors: list[DefinitionError] = []
    try:
        raws = yamlsafe.load_all(text)
    except yaml.YAMLError as exc:
        return [], [DefinitionError(file, 0, "", f"cannot read YAML: {exc}")]
    index = -1
    for raw in raws:
        if raw is None:
            continue
        index += 1
        document, repath, found = examine(raw, file, index)
        errors.extend(found)
        if document is not None:
            located.append(Located(document, file, index, repath))
    return located, errors


def load_located(paths: Iterable[Path], *, check: bool = True) -> list[Located]:
    """Every document under ``paths`` with its origin; every error at once.

    ``check``: also run :func:`check_set` (without stored documents)."""
    located: list[Located] = []
    errors: list[DefinitionError] = []
    for file in yaml_files(paths):
        try:
            text = file.read_text()
        except OSError as exc:
            errors.append(DefinitionError(str(file), 0, "", f"cannot read file: {exc}"))
            continue
        found, bad = parse_text(text, str(file))
        located.extend(found)
        errors.extend(bad)
    if check:
        errors.extend(check_set(located))
    if errors:
        order = {file: n for n, file in enumerate(dict.fromkeys(e.file for e in errors))}
        raise DefinitionsInvalid(sorted(errors, key=lambda e: (order[e.file], e.index)))
    return located


def load_paths(paths: Iterable[Path]) -> list[Document]:
    """Every document of every YAML file under ``paths``; all errors at once."""
    return [item.document for item in load_located(paths)]
