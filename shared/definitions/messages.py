"""pydantic's validation errors, rewritten for the people who write definitions.

pydantic says "Input should be less than 1" or shows a field's regex; a person needs
to know what the field is, what it takes, and what they wrote. :func:`message` turns
one ``ErrorDetails`` into such a sentence, from the error's type, its context
(bounds, pattern, expected values) and the field's name (:data:`FIELD_HELP`,
:data:`PATTERNS`). Pure: no I/O.

Values are echoed back (``got 99``) except in fields that may hold a secret: a value
that failed a secret-reference pattern may be the secret itself, and messages end up
in terminals, logs and API answers.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from pydantic_core import ErrorDetails

from shared.definitions.kinds.common import NAME_PATTERN

NAME_RULE = (
    "lowercase letters, digits and '-', starting and ending with a letter or digit, "
    "at most 63 characters"
)

#: A field's pattern → (what the field takes, in words; whether the value may be echoed).
PATTERNS: dict[str, tuple[str, bool]] = {
    NAME_PATTERN: (f"a name is {NAME_RULE}", True),
    r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$": (
        "a secret reference: env:NAME (an environment variable of the notifier; letters, "
        "digits and '_', not starting with a digit) or file:NAME (a file in the secrets "
        "directory); the value itself is not repeated here in case it is the secret",
        False,
    ),
    r"^(https?://.+|env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$": (
        "an http:// or https:// URL, or a secret reference env:NAME or file:NAME holding "
        "one; the value itself is not repeated here in case it is a credential",
        False,
    ),
    r"^[a-z_]{1,32}$": ("a template name is 1 to 32 lowercase letters or '_'", True),
}

#: Leaf field name (as written) → what it is and the range it takes, for bound errors.
FIELD_HELP: dict[str, str] = {
    "quantile": "quantile is a fraction between 0 and 1 (exclusive), e.g. 0.99 for p99",
    "warnings": (
        "a warning is a fraction of the target time between 0 and 1 (exclusive), "
        "e.g. 0.75 to warn when 75 % of it is used"
    ),
    "hysteresis": "hysteresis is a fraction from 0 up to (not including) 1, e.g. 0.1",
    "factor": (
        "factor is the burn rate that fires (how many times faster than sustainable the "
        "error budget is spent), greater than 0, e.g. 14.4"
    ),
    "minEvents": (
        "minEvents is how many valid events the judged window needs before anything "
        "fires, a whole number of at least 1"
    ),
    "creditPercent": "creditPercent is a percentage greater than 0 and at most 100, e.g. 10",
    "consecutiveMissedPeriods": (
        "consecutiveMissedPeriods is a number of reporting periods in a row, at least 1"
    ),
    "port": "port is a TCP port number from 1 to 65535",
    "escalateCycles": "escalateCycles is how many times escalation repeats, from 1 to 100",
    "expectedGroups": "expectedGroups lists at most 1,000 groups",
    "comment": "comment is at most 1,024 characters",
    "createdBy": "createdBy is at most 256 characters",
}

#: Required field → what to write there, for "missing" errors.
REQUIRED_HELP: dict[str, str] = {
    "apiVersion": "write apiVersion: slawatch/v1",
    "metadata": "every document needs metadata with a name",
    "name": f"a name is {NAME_RULE}",
    "spec": "the kind's fields go under spec",
    "service": "the service whose events are measured",
    "good": 'what makes an event good: {outcome: good} or {value: "<= 300"}',
    "target": "a fraction between 0 and 1, e.g. 0.999 for 99.9 %",
    "window": "a rolling duration such as 30d, or week, month or quarter",
    "quantile": "a fraction between 0 and 1, e.g. 0.99 for p99",
    "threshold": "the largest acceptable value of the quantile, e.g. 300",
    "start": "the event types that start the clock, e.g. [ticket.opened]",
    "stop": "the event types that stop the clock, e.g. [ticket.resolved]",
    "maxSilence": "the longest allowed time without a matching event, e.g. 26h",
    "receivers": "the names of the Receivers to notify",
    "type": "the kind of thing this is (see `slawatch schema`)",
    "url": "an http(s):// URL, or env:NAME / file:NAME holding one",
    "objectives": "an agreement promises at least one objective",
    "topics": "the Kafka topics to read",
    "mapping": "how a record's fields become an event (service, time, outcome, ...)",
    "role": "provider, customer, internal-team or supplier",
}

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "date_type": "a date written YYYY-MM-DD",
    "date_parsing": "a date written YYYY-MM-DD",
    "date_from_datetime_parsing": "a date written YYYY-MM-DD",
    "date_from_datetime_inexact": "a date written YYYY-MM-DD",
    "finite_number": "a finite number",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}
_UNIT_WORDS = {
    "milli": "ms", "millis": "ms", "msec": "ms", "msecs": "ms", "millisecond": "ms",
    "milliseconds": "ms", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m", "hr": "h", "hrs": "h",
    "hour": "h", "hours": "h", "day": "d", "days": "d", "week": "w", "weeks": "w",
    "M": "m", "H": "h", "D": "d", "S": "s", "W": "w",
}  # fmt: skip
_DURATION_WORDS = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_TARGET_FIELDS = ("target", "below")


def message(error: ErrorDetails, field: str, allowed: Iterable[str] = ()) -> str:
    """The sentence for one pydantic error at a field named ``field`` (the last step of
    its path, as written; ``""`` at the document root). ``allowed``: the field names
    of the mapping it sits in (for unknown fields)."""
    kind = error["type"]
    value = error.get("input")
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    original = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    label = field or "the document"
    if kind == "extra_forbidden":
        names = sorted(allowed)
        text = f"unknown field {field!r}{did_you_mean(field, names)}"
        return text + (f" (allowed: {', '.join(names)})" if names else "")
    if kind == "missing":
        help_text = REQUIRED_HELP.get(field)
        return f"missing required field {field!r}" + (f": {help_text}" if help_text else "")
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if isinstance(value, str):
            text = f"{value!r} is not allowed{did_you_mean(value, expected)}"
        else:
            text = f"{label} takes one of the listed words, not {_shown(value)}"
        return text + f" (expected: {', '.join(expected)})"
    if field in _TARGET_FIELDS and kind in (*_BOUNDS, "float_parsing", "float_type"):
        return _target_message(field, value, original)
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        help_text = FIELD_HELP.get(field, f"{label} must be {words} {ctx.get(key)}")
        return f"{help_text}; got {_shown(value)}"
    if kind in _TYPE_WORDS:
        help_text = FIELD_HELP.get(field)
        head = f"{label} must be {_TYPE_WORDS[kind]}"
        return f"{head}; got {_shown(value)}" + (f" ({help_text})" if help_text else "")
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        if kind == "string_too_short":
            return (
                f"{label} must not be empty"
                if least == 1
                else (f"{label} needs at least {least} characters")
            )
        help_text = REQUIRED_HELP.get(field)
        items = "one item" if least == 1 else f"{least} items"
        return f"{label} needs at least {items}" + (f": {help_text}" if help_text else "")
    if kind in ("too_long", "string_too_long"):
        help_text = FIELD_HELP.get(field)
        most = ctx.get("max_length")
        what = "characters" if kind == "string_too_long" else "item(s)"
        return help_text or f"{label} takes at most {most} {what}"
    if kind == "string_pattern_mismatch":
        return _pattern_message(label, str(ctx.get("pattern", "")), value)
    if kind == "value_error" and "invalid duration" in original and isinstance(value, str):
        return _duration_message(value, original)
    return original


def union_tag_message(discriminator: str, tag: object, expected: list[str]) -> str:
    """A ``kind`` / ``type`` that names no member of the union (or is missing)."""
    listed = ", ".join(expected)
    if tag is None or tag == "":
        return f"missing {discriminator!r}: one of {listed}"
    word = str(tag)
    return f"unknown {discriminator} {word!r}{did_you_mean(word, expected)} (expected: {listed})"


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def slug(text: str) -> str:
    """``"Bad Name"`` → ``"bad-name"``: the closest valid name, for a suggestion."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:63].strip("-")


def _shown(value: object) -> str:
    """A value as the person wrote it, short."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 80 else repr(value[:77] + "...")
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _pattern_message(label: str, pattern: str, value: object) -> str:
    rule, echo = PATTERNS.get(pattern, (f"{label} does not have the expected form", True))
    if not echo:
        return f"{label} must be {rule}"
    text = f"{rule}; got {_shown(value)}"
    if pattern == NAME_PATTERN and isinstance(value, str):
        suggestion = slug(value)
        if suggestion and suggestion != value:
            text += f"; did you mean {suggestion!r}?"
    return text


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
        bound = (
            "greater than 0"
            if value <= 0
            else "less than 1"
            if field == "target"
            else ("at most 1")
        )
        return f"{field} {value:g} is impossible: it must be {bound}; write {fraction}"
    return f"{field} must be {fraction}; got {_shown(value)}"


def _duration_message(value: str, original: str) -> str:
    match = _DURATION_WORDS.match(value)
    if match is not None and match.group(2) in _UNIT_WORDS:
        unit = _UNIT_WORDS[match.group(2)]
        return f"wrong unit in duration {value!r}: did you mean '{match.group(1)}{unit}'?"
    return original
