"""The SLI of one breach's series over time, as an inline SVG chart (pure).

From the evaluator's per-minute rollups (good and valid events of one objective and
group), over ``[start, end)``: the minutes are summed into at most :data:`MAX_BUCKETS`
equal buckets, and two lines are drawn against the target:

    per bucket   good / valid of the bucket's minutes (a gap where nothing was valid)
    cumulative   good / valid since ``start`` (what an error budget over this span
                 would have seen; its budget left is reported beside the chart)

Rollups counted under several definitions of the objective (``fingerprint``) would
count the same events twice; only the fingerprint of the newest minute (the
definition in force) is drawn.

Drawn with presentation attributes only (no ``style``), so the page's
Content-Security-Policy needs nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_BUCKETS = 120
MINUTE_MS = 60_000
WIDTH, HEIGHT = 600, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 8, 8, 22


@dataclass(frozen=True)
class Minute:
    fingerprint: str
    minute: int
    good: int
    valid: int


@dataclass(frozen=True)
class Bucket:
    start: int
    good: int
    valid: int

    @property
    def sli(self) -> float | None:
        return self.good / self.valid if self.valid else None


@dataclass(frozen=True)
class Chart:
    """What the template draws: polylines (``x,y`` lists; one per run without gaps)
    in a ``WIDTH`` by ``HEIGHT`` box, the target's y, and axis labels."""

    per_bucket: list[str]
    cumulative: list[str]
    target_y: float
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, int]]
    bucket_ms: int
    budget_left: float | None
    points: int
    left: int = PAD_LEFT
    right: int = WIDTH - PAD_RIGHT


def current_definition(rows: Iterable[Minute]) -> list[Minute]:
    """The rows of the fingerprint that wrote the newest minute."""
    rows = list(rows)
    if not rows:
        return []
    newest = max(rows, key=lambda r: (r.minute, r.fingerprint)).fingerprint
    return [r for r in rows if r.fingerprint == newest]


def bucket_size(start: int, end: int, most: int = MAX_BUCKETS) -> int:
    """Whole minutes per bucket, so ``[start, end)`` needs at most ``most`` buckets."""
    minutes = max(1, -(-(end - start) // MINUTE_MS))
    return -(-minutes // most) * MINUTE_MS


def buckets(rows: Iterable[Minute], start: int, end: int) -> list[Bucket]:
    """Every bucket of ``[start, end)`` (empty ones too), rows outside left out."""
    size = bucket_size(start, end)
    count = max(1, -(-(end - start) // size))
    good = [0] * count
    valid = [0] * count
    for r in rows:
        if start <= r.minute < end:
            i = (r.minute - start) // size
            good[i] += r.good
            valid[i] += r.valid
    return [Bucket(start + i * size, good[i], valid[i]) for i in range(count)]


def _floor_label(lowest: float) -> float:
    """The chart's bottom: a round fraction below everything drawn."""
    for step in (0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0):
        bottom = 1.0 - step
        if bottom <= lowest:
            return max(0.0, bottom)
    return 0.0


def _percent_label(value: float) -> str:
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text} %"


def sli_chart(rows: Sequence[Minute], start: int, end: int, target: float) -> Chart | None:
    """The chart of ``rows`` over ``[start, end)`` against ``target``; None when no
    minute in it had a valid event."""
    drawn = buckets(current_definition(rows), start, end)
    if not any(b.valid for b in drawn):
        return None
    size = drawn[1].start - drawn[0].start if len(drawn) > 1 else bucket_size(start, end)
    cumulative: list[float | None] = []
    good_sum = valid_sum = 0
    for b in drawn:
        good_sum += b.good
        valid_sum += b.valid
        cumulative.append(good_sum / valid_sum if valid_sum else None)
    values = [v for v in [*(b.sli for b in drawn), *cumulative] if v is not None]
    bottom = _floor_label(min([*values, target]))
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(i: int) -> float:
        return PAD_LEFT + (i + 0.5) * plot_w / len(drawn)

    def y(value: float) -> float:
        return PAD_TOP + (1.0 - (value - bottom) / (1.0 - bottom)) * plot_h

    def lines(series: Sequence[float | None]) -> list[str]:
        runs: list[list[str]] = [[]]
        for i, value in enumerate(series):
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(value):.1f}")
        return [" ".join(run) for run in runs if run]

    allowed_bad = (1.0 - target) * valid_sum
    bad = valid_sum - good_sum
    budget_left = None if allowed_bad <= 0 else 1.0 - bad / allowed_bad
    ticks = [bottom, (bottom + 1.0) / 2, 1.0]
    x_ticks = sorted({0, len(drawn) // 2, len(drawn) - 1})
    return Chart(
        per_bucket=lines([b.sli for b in drawn]),
        cumulative=lines(cumulative),
        target_y=round(y(target), 1),
        y_labels=[(round(y(t), 1), _percent_label(t)) for t in ticks],
        x_labels=[(round(x(i), 1), drawn[i].start) for i in x_ticks],
        bucket_ms=size,
        budget_left=budget_left,
        points=sum(1 for b in drawn if b.valid),
    )
