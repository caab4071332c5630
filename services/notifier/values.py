"""The SLI and target of a breach in the objective's own unit, as people read them (pure).

Every channel states a breach's windows through :func:`window_texts`, so a message
never shows a latency or a silence as a percentage:

    ratio      SLI 99.50 % (995 of 1000 good) vs target 99.95 % over 30d
    quantile   p99 512 ms, threshold 300 ms over 5m
    freshness  no event for 4 m 10 s (allowed 2 m)[, events again since]
    deadline   entity T-1: 3 h 20 m of 4 h used (83 %), business time of calendar office

What a window's numbers mean depends on the objective kind (the evaluator writes:
ratio good/valid and the target fraction; quantile the value and the threshold;
freshness the silence and the allowed silence in ms; deadline the fraction of the
target used, ``good`` = used ms, ``valid`` = target ms). The breach names its rule,
not its kind, so :func:`measure_of` takes the kind from the objective's definition
when the notifier still has it, else from the rule (``threshold`` is ratio or
quantile: a ratio target is always strictly between 0 and 1).

Quantile values are shown as durations in ms: event values of time are milliseconds
(ingest converts time units to ms), and definitions have no unit field yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from shared.definitions.model import DeadlineObjective, Objective, QuantileObjective
from shared.schemas import Breach, WindowSli
from shared.timeutil import parse_duration_ms

Kind = Literal["ratio", "quantile", "deadline", "freshness"]

ENTITY = "entity"
"""The group attribute a deadline breach names its entity by (the evaluator's)."""

_RULE_KINDS: dict[str, Kind] = {
    "burn-rate": "ratio",
    "budget": "ratio",
    "deadline": "deadline",
    "freshness": "freshness",
}
_TIME_UNITS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class Measure:
    """What a breach's windows measure: the objective kind and what it needs to be read."""

    kind: Kind
    quantile: float | None = None
    unit: str = "ms"
    calendar: str | None = None


def measure_of(breach: Breach, objective: Objective | None = None) -> Measure:
    """The measure of ``breach``; ``objective`` is its definition, if known (one of
    another kind than the breach's rule, e.g. redefined since, is not used)."""
    kind = _RULE_KINDS.get(breach.rule)
    if kind is None:
        ratio_like = all(0.0 < w.target < 1.0 for w in breach.windows)
        kind = "ratio" if ratio_like else "quantile"
        if objective is not None and objective.kind in ("ratio", "quantile"):
            kind = objective.kind
    if objective is None or objective.kind != kind:
        return Measure(kind)
    if isinstance(objective, QuantileObjective):
        return Measure(kind, quantile=objective.quantile)
    if isinstance(objective, DeadlineObjective):
        return Measure(kind, calendar=objective.calendar)
    return Measure(kind)


def _decimals_of(value: float, most: int) -> int:
    """The fewest decimals (≤ ``most``) that write ``value`` exactly."""
    for places in range(most + 1):
        if math.isclose(round(value, places), value, rel_tol=0.0, abs_tol=1e-9):
            return places
    return most


def percent(fraction: float, places: int = 1) -> str:
    """``0.9995`` → ``"99.95 %"`` with ``places`` decimals."""
    return f"{fraction * 100:.{places}f} %"


def ratio_texts(sli: float | None, target: float) -> tuple[str, str]:
    """SLI and target as percentages with the target's own digits (at least one), and
    more for the SLI while rounding would make it read as the target or as 100 %."""
    places = max(1, _decimals_of(target * 100, 4))
    target_text = percent(target, places)
    if sli is None:
        return "n/a", target_text
    sli_places = places
    while sli_places < 6:
        text = percent(sli, sli_places)
        misleading = (text == target_text and sli != target) or (
            sli < 1.0 and text == percent(1.0, sli_places)
        )
        if not misleading:
            break
        sli_places += 1
    return percent(sli, sli_places), target_text


def _significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, never in exponent notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    places = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{round(value, places):.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration_text(ms: float) -> str:
    """A duration for people: ``512 ms``, ``1.52 s``, ``42 s``, ``4 m 10 s``, ``2 m``,
    ``3 h 20 m``, ``2 d 4 h`` (two units at most, to the second)."""
    if ms < 0:
        return "-" + duration_text(-ms)
    if ms < 999.5:  # what would round to 1000 ms reads as 1 s
        return f"{_significant(ms)} ms"
    if ms < 59_950:
        return f"{_significant(ms / 1000)} s"
    seconds = round(ms / 1000)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append(f"{count} {unit}")
        if len(parts) == 2:
            break
    while parts and parts[-1].startswith("0 "):
        parts.pop()
    return " ".join(parts)


def value_text(value: float, unit: str) -> str:
    """A quantile value in its unit: a time unit as a duration, anything else as is."""
    scale = _TIME_UNITS.get(unit)
    if scale is not None:
        return duration_text(value * scale)
    return f"{_significant(value)} {unit}".rstrip()


def quantile_label(quantile: float | None) -> str:
    """``0.99`` → ``p99``; unknown → ``quantile``."""
    if quantile is None:
        return "quantile"
    return f"p{_significant(quantile * 100, 4)}"


@dataclass(frozen=True)
class WindowText:
    """One window of a breach in words: ``text`` is the whole sentence."""

    window: str
    sli_text: str
    target_text: str
    text: str


def _ratio(w: WindowSli) -> WindowText:
    sli_text, target_text = ratio_texts(w.sli, w.target)
    counts = "" if w.good is None or w.valid is None else f" ({w.good} of {w.valid} good)"
    text = f"SLI {sli_text}{counts} vs target {target_text} over {w.window}"
    return WindowText(w.window, sli_text, target_text, text)


def _quantile(w: WindowSli, m: Measure) -> WindowText:
    sli_text = "n/a" if w.sli is None else value_text(w.sli, m.unit)
    target_text = value_text(w.target, m.unit)
    text = f"{quantile_label(m.quantile)} {sli_text}, threshold {target_text} over {w.window}"
    return WindowText(w.window, sli_text, target_text, text)


def _freshness(w: WindowSli, breach: Breach) -> WindowText:
    sli_text = "n/a" if w.sli is None else duration_text(w.sli)
    target_text = duration_text(w.target)
    text = f"no event for {sli_text} (allowed {target_text})"
    if breach.kind == "breach.resolved":  # its windows are the silence that just ended
        text = f"no event for {sli_text} (allowed {target_text}), events again since"
    return WindowText(w.window, sli_text, target_text, text)


def _deadline(w: WindowSli, m: Measure, breach: Breach) -> WindowText:
    target_ms = float(w.valid) if w.valid else float(parse_duration_ms(w.window))
    used_ms = float(w.good) if w.good is not None else (w.sli or 0.0) * target_ms
    fraction = used_ms / target_ms if target_ms else 0.0
    sli_text = f"{duration_text(used_ms)} ({fraction * 100:.0f} %)"
    target_text = duration_text(target_ms)
    entity = breach.group.get(ENTITY)
    clock = f"business time of calendar {m.calendar}" if m.calendar else "around the clock"
    text = (
        f"{'entity ' + entity + ': ' if entity else ''}{duration_text(used_ms)} of "
        f"{target_text} used ({fraction * 100:.0f} %), {clock}"
    )
    return WindowText(w.window, sli_text, target_text, text)


def window_texts(breach: Breach, measure: Measure) -> list[WindowText]:
    """Every window of ``breach`` in words, in the breach's order."""
    out: list[WindowText] = []
    for w in breach.windows:
        match measure.kind:
            case "ratio":
                out.append(_ratio(w))
            case "quantile":
                out.append(_quantile(w, measure))
            case "freshness":
                out.append(_freshness(w, breach))
            case "deadline":
                out.append(_deadline(w, measure, breach))
    return out


def budget_text(remaining: float | None) -> str | None:
    """The error budget left, as a percentage (negative: overspent)."""
    if remaining is None:
        return None
    text = percent(remaining, 1)
    return f"{text} (overspent)" if remaining < 0 else text
