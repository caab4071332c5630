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

import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shared.definitions import yamlsafe
from shared.definitions.model import KINDS, Document
from shared.definitions.refs import references
from shared.timeutil import parse_duration_ms


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


@dataclass(frozen=True)
class Located:
    """A valid document and where it came from."""

    document: Document
    file: str
    index: int


# -- one document ---------------------------------------------------------------------


def parse_document(raw: Any, file: str = "<input>", index: int = 0) -> Document:
    """Validate one decoded document; raises :class:`DefinitionsInvalid`."""
    document = validate_model(raw, file, index)
    problems = [DefinitionError(file, index, p, m) for p, m in document_checks(document)]
    if problems:
        raise DefinitionsInvalid(problems)
    return document


def validate_model(raw: Any, file: str = "<input>", index: int = 0) -> Document:
    """Only the kind's model (no :func:`document_checks`); raises :class:`DefinitionsInvalid`."""
    if not isinstance(raw, dict):
        raise DefinitionsInvalid([DefinitionError(file, index, "", "a document must be a mapping")])
    kind = raw.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(KINDS))
        hint = _did_you_mean(kind, KINDS) if isinstance(kind, str) else ""
        raise DefinitionsInvalid(
            [DefinitionError(file, index, "kind", f"unknown kind {kind!r}{hint} (known: {known})")]
        )
    try:
        document: Document = model.model_validate(raw)
    except ValidationError as exc:
        errors = [_error(model, file, index, e) for e in exc.errors()]
        raise DefinitionsInvalid(errors) from None
    return document


def document_checks(document: BaseModel) -> list[tuple[str, str]]:
    """Checks across fields of one document that its model leaves open.

    An objective's window must be at least as long as the longest window any of its
    burn-rate rules looks at: a 1h budget cannot be judged over 3d. Tolerant of the
    objective kinds' evolving shapes: anything it does not recognise is skipped.
    """
    own = getattr(document, "checks", None)
    out: list[tuple[str, str]] = list(own()) if callable(own) else []
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

_UNIT_WORDS = {
    "milli": "ms", "millis": "ms", "msec": "ms", "msecs": "ms", "millisecond": "ms",
    "milliseconds": "ms", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m", "hr": "h", "hrs": "h",
    "hour": "h", "hours": "h", "day": "d", "days": "d", "week": "w", "weeks": "w",
    "M": "m", "H": "h", "D": "d", "S": "s", "W": "w",
}  # fmt: skip
_DURATION_WORDS = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_TARGET_FIELDS = ("target", "below")


def _error(model: type[BaseModel], file: str, index: int, error: ErrorDetails) -> DefinitionError:
    path, parent = _locate(model, tuple(error["loc"]))
    kind = error["type"]
    value = error.get("input")
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    last = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        allowed = _fields_of(parent)
        message = f"unknown field {field!r}{_did_you_mean(field, allowed)}"
        if allowed:
            message += f" (allowed: {', '.join(sorted(allowed))})"
    elif kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        tag = str(ctx.get("tag", ""))
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        path = f"{path}.{discriminator}" if path else discriminator
        message = f"unknown {discriminator} {tag!r}{_did_you_mean(tag, expected)}"
        message += f" (expected: {', '.join(expected)})"
    elif kind == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        message = f"{value!r} is not allowed{_did_you_mean(value, expected)}"
        message += f" (expected: {', '.join(expected)})"
    elif last in _TARGET_FIELDS and kind in (
        "less_than", "less_than_equal", "greater_than", "greater_than_equal", "float_parsing",
        "float_type",
    ):  # fmt: skip
        message = _target_message(last, value, message)
    elif kind == "value_error" and "invalid duration" in message and isinstance(value, str):
        message = _duration_message(value, message)
    return DefinitionError(file, index, path, message)


def _target_message(field: str, value: object, original: str) -> str:
    fraction = "a fraction between 0 and 1 (0.999 means 99.9 %)"
    if isinstance(value, str) and "%" in value:
        number = value.replace("%", "").strip()
        try:
            as_fraction = float(number) / 100
        except ValueError:
            return f"{field} {value!r} is not a number; write {fraction}"
        return f"{field} {value!r} is a percentage; write {fraction}: {as_fraction:g}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 1 and field == "target":
            return (
                "target 1 (100 %) is impossible: it must be less than 1, since every "
                "failure would breach (no error budget); write e.g. 0.9999"
            )
        if 1 < value <= 100:
            return (
                f"{field} {value:g} is impossible: it must be {fraction}, greater than 0 and "
                f"less than 1; if you meant {value:g} %, write {value / 100:g}"
            )
        return f"{field} {value:g} is impossible: {original.lower()}; write {fraction}"
    return f"{original}; write {fraction}"


def _duration_message(value: str, original: str) -> str:
    match = _DURATION_WORDS.match(value)
    if match is not None and match.group(2) in _UNIT_WORDS:
        unit = _UNIT_WORDS[match.group(2)]
        return f"wrong unit in duration {value!r}: did you mean '{match.group(1)}{unit}'?"
    return original


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


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
        if isinstance(part, str) and (part.startswith("function-") or part == "lax-or-strict"):
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
    first: dict[tuple[str, str], Located] = {}
    for item in located:
        doc = item.document
        key = (doc.kind, doc.metadata.name)
        if key in first:
            seen = first[key]
            errors.append(
                DefinitionError(
                    item.file,
                    item.index,
                    "metadata.name",
                    f"duplicate {doc.kind} {doc.metadata.name!r} "
                    f"(first defined in {seen.file}[{seen.index}])",
                )
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
            errors.append(
                DefinitionError(
                    item.file,
                    item.index,
                    ref.path,
                    f"no {ref.kind} named {ref.name!r}{_did_you_mean(ref.name, known)}",
                )
            )
        cross = getattr(item.document, "cross_checks", None)
        if callable(cross):
            for path, message in cross(find):
                errors.append(DefinitionError(item.file, item.index, path, message))
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
    """Every document of one YAML text, and the errors of those that are invalid."""
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
        try:
            document = validate_model(raw, file, index)
        except DefinitionsInvalid as exc:
            errors.extend(exc.errors)
            continue
        # still checked with the set: one run reports its dangling references too
        located.append(Located(document, file, index))
        errors.extend(DefinitionError(file, index, p, m) for p, m in document_checks(document))
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
