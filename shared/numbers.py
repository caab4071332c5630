"""Numbers as an API shows them: without binary floating-point noise.

``tidy(9.999999999999991)`` is ``10.0``: twelve significant digits keep every figure a
person or a dashboard can use (a ratio of counts stays within a part in 10^11) and
drop the last-bit noise of sums and divisions.
"""

from __future__ import annotations

SIGNIFICANT = 12


def tidy(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT}g}")


def tidy_or_none(value: float | None) -> float | None:
    return None if value is None else tidy(value)
