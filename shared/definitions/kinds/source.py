"""Sources: an existing Kafka topic in a foreign JSON shape, attached by a field mapping.

```yaml
apiVersion: slawatch/v1
kind: Source
metadata: {name: shop-orders}
spec: {topics: [shop.orders],
       mapping: {service: $.app, time: $.ts, outcome: status < 500, value: $.latency_ms}}
```

Every mapping field that names a record field is a *JSON path*: ``$`` then
``.name``, ``['any name']`` or ``[index]`` steps (``$.http.status``,
``$['user-agent']``, ``$.tags[0]``). Where a field may also be a constant (``service``,
``type``, ``entity``, ``source``), text starting with ``$`` is a path and anything
else is the constant itself.

Short and long forms:

* ``time: $.ts`` (format ``auto``) or ``{path: $.ts, format: epoch_s | epoch_ms |
  rfc3339 | auto}``; ``auto`` reads text as RFC 3339 and a number below 10^11 as
  epoch seconds, otherwise epoch milliseconds. Without ``time``: the record's Kafka
  timestamp.
* ``outcome: status < 500`` (good when the condition holds, else bad) or
  ``{when: "..."}``, or ``{path: $.result, good: [ok, success]}`` (good when the
  field equals one of the values, else bad). Conditions: ``<path> <op> <literal>``
  with ``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``; the literal is a number, a
  quoted string, ``true``, ``false`` or ``null``; the path may omit ``$.``.
* ``value: $.latency_ms`` or ``{path: $.duration, unit: s, to: ms}``; units: time
  ``ns us ms s m h`` (``to`` defaults to ``ms``) and size ``B KB MB GB KiB MiB GiB``
  (``to`` defaults to ``B``).
* ``id``: a path, or ``coordinates`` (the default): a UUID derived from topic,
  partition and offset, stable when the record is read again.
* ``attributes``: a list of paths (each named after its last step) or a map
  ``name: path``.
* ``type`` defaults to ``request``; ``source`` to ``kafka:<topic>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shared.definitions.kinds.common import Metadata, Spec

PathStep = str | int
Comparison = Literal["<", "<=", ">", ">=", "==", "!="]
COMPARISONS: tuple[Comparison, ...] = ("<", "<=", ">", ">=", "==", "!=")

_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)
      | \[\s*(?P<index>\d+)\s*\]
      | \[\s*'(?P<single>(?:[^'\\]|\\.)*)'\s*\]
      | \[\s*"(?P<double>(?:[^"\\]|\\.)*)"\s*\]""",
    re.VERBOSE,
)
_CONDITION = re.compile(r"^\s*(?P<path>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<literal>.+?)\s*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")

TIME_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}
SIZE_UNITS_B = {
    "B": 1.0,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "KiB": 1024.0,
    "MiB": 1024.0**2,
    "GiB": 1024.0**3,
}


def parse_path(text: str, *, allow_bare: bool = False) -> tuple[PathStep, ...]:
    """``$.a['b c'][0]`` → ``("a", "b c", 0)``; with ``allow_bare`` also ``a.b``."""
    source = text.strip()
    if allow_bare and not source.startswith("$"):
        source = "$." + source
    if not source.startswith("$"):
        raise ValueError(f"invalid JSON path {text!r}: start with '$', e.g. '$.status'")
    steps: list[PathStep] = []
    position = 1
    while position < len(source):
        match = _STEP.match(source, position)
        if match is None:
            raise ValueError(f"invalid JSON path {text!r} at character {position + 1}")
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            quoted = match.group("single") if match.group("single") is not None else ""
            quoted = match.group("double") if match.group("double") is not None else quoted
            steps.append(re.sub(r"\\(.)", r"\1", quoted))
        position = match.end()
    if not steps:
        raise ValueError(f"JSON path {text!r} names no field")
    return tuple(steps)


def is_path(text: str) -> bool:
    return text.strip().startswith("$")


@dataclass(frozen=True)
class Condition:
    """``status < 500``: a field compared with a literal."""

    text: str
    path: tuple[PathStep, ...]
    op: Comparison
    literal: float | str | bool | None

    @classmethod
    def parse(cls, text: str) -> Condition:
        match = _CONDITION.match(text)
        if match is None or match.group("op") not in COMPARISONS:
            raise ValueError(
                f"invalid condition {text!r}: write '<path> <op> <literal>', e.g. 'status < 500'"
            )
        path = parse_path(match.group("path"), allow_bare=True)
        raw = match.group("literal")
        literal: float | str | bool | None
        if _NUMBER.match(raw):
            literal = float(raw)
        elif raw in ("true", "false"):
            literal = raw == "true"
        elif raw == "null":
            literal = None
        elif len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            literal = raw[1:-1]
        else:
            raise ValueError(
                f"invalid literal {raw!r} in condition {text!r}: "
                "use a number, a quoted string, true, false or null"
            )
        op: Comparison = match.group("op")  # type: ignore[assignment]
        if op not in ("==", "!=") and (literal is None or isinstance(literal, bool)):
            raise ValueError(f"condition {text!r}: {op} needs a number or a string")
        return cls(text, path, op, literal)


def _path(text: str) -> str:
    parse_path(text)
    return text


def _path_or_constant(text: str | None) -> str | None:
    if text is None:  # ``source: null``, as if left out (``service`` and ``type`` take no null)
        return None
    if is_path(text):
        parse_path(text)
    elif not text.strip():
        raise ValueError("must not be empty")
    return text


class TimeMapping(Spec):
    path: str
    format: Literal["auto", "epoch_s", "epoch_ms", "rfc3339"] = "auto"

    _path_ok = field_validator("path")(_path)


class OutcomeMapping(Spec):
    """Either ``when`` (a condition) or ``path`` + ``good`` (values meaning good)."""

    when: str | None = None
    path: str | None = None
    good: list[str | float | bool] = Field(default_factory=list)

    @field_validator("when")
    @classmethod
    def _condition(cls, text: str | None) -> str | None:
        if text is not None:
            Condition.parse(text)
        return text

    @field_validator("path")
    @classmethod
    def _path_ok(cls, text: str | None) -> str | None:
        return None if text is None else _path(text)

    @model_validator(mode="after")
    def _one_form(self) -> OutcomeMapping:
        if (self.when is None) == (self.path is None):
            raise ValueError("give either 'when' (a condition) or 'path' with 'good' values")
        if self.path is not None and not self.good:
            raise ValueError("'good' lists the field values that mean a good outcome")
        return self

    def field_checks(self) -> list[tuple[str, str]]:
        """``good`` lists values of ``path``; a ``when`` condition ignores it."""
        if self.when is not None and self.good:
            return [
                (
                    "good",
                    "'good' does not apply with 'when': it lists the values of 'path' that "
                    "mean a good outcome, while 'when' decides by its condition; remove "
                    "'good', or use path with good instead of when",
                )
            ]
        return []

    def condition(self) -> Condition | None:
        return Condition.parse(self.when) if self.when is not None else None


class ValueMapping(Spec):
    path: str
    unit: str | None = None
    to: str | None = None

    _path_ok = field_validator("path")(_path)

    @model_validator(mode="after")
    def _units(self) -> ValueMapping:
        if self.unit is None and self.to is None:
            return self
        units = [u for u in (self.unit, self.to) if u is not None]
        if all(u in TIME_UNITS_MS for u in units) or all(u in SIZE_UNITS_B for u in units):
            if self.unit is None:
                raise ValueError("'to' needs the field's 'unit'")
            return self
        known = ", ".join([*TIME_UNITS_MS, *SIZE_UNITS_B])
        raise ValueError(f"units {units} unknown or of different kinds (known: {known})")

    def factor(self) -> float:
        """Multiply the field's number by this to get the canonical value."""
        if self.unit is None:
            return 1.0
        table = TIME_UNITS_MS if self.unit in TIME_UNITS_MS else SIZE_UNITS_B
        target = self.to or ("ms" if table is TIME_UNITS_MS else "B")
        return table[self.unit] / table[target]


class SourceMapping(Spec):
    id: str = "coordinates"
    service: str
    type: str = "request"
    time: TimeMapping | None = None
    outcome: OutcomeMapping | None = None
    value: ValueMapping | None = None
    entity: str | None = None
    attributes: list[str] | dict[str, str] = Field(default_factory=list)
    source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("time"), str):
            data["time"] = {"path": data["time"]}
        if isinstance(data.get("value"), str):
            data["value"] = {"path": data["value"]}
        if isinstance(data.get("outcome"), str):
            data["outcome"] = {"when": data["outcome"]}
        return data

    @field_validator("id")
    @classmethod
    def _id(cls, text: str) -> str:
        return text if text == "coordinates" else _path(text)

    _constants_ok = field_validator("service", "type", "source")(_path_or_constant)

    @field_validator("entity")
    @classmethod
    def _entity(cls, text: str | None) -> str | None:
        return None if text is None else _path_or_constant(text)

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        paths = value if isinstance(value, list) else list(value.values())
        for text in paths:
            steps = parse_path(text)
            if isinstance(value, list) and not isinstance(steps[-1], str):
                raise ValueError(f"{text!r} ends in an index: use a map to name the attribute")
        return value

    def attribute_paths(self) -> dict[str, tuple[PathStep, ...]]:
        """Attribute name → path."""
        if isinstance(self.attributes, dict):
            return {name: parse_path(p) for name, p in self.attributes.items()}
        named: dict[str, tuple[PathStep, ...]] = {}
        for text in self.attributes:
            steps = parse_path(text)
            named[str(steps[-1])] = steps
        return named


class SourceSpec(Spec):
    topics: list[str] = Field(min_length=1)
    format: Literal["json"] = "json"
    mapping: SourceMapping

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", topic):
                raise ValueError(f"invalid Kafka topic name {topic!r}")
        return topics


class Source(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Source"]
    metadata: Metadata
    spec: SourceSpec
