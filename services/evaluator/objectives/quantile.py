"""The ``quantile`` objective: the q-quantile of ``value`` over a sliding window ≤ threshold.

Same selection, grouping and threshold state machine as :mod:`.ratio` (``for``,
``minEvents``, hysteresis, deterministic evaluation instants); only the window
differs: a :class:`~services.evaluator.sketch.QuantileWindow` of log-bucket sketches.
Its ``good`` count is the values whose sketch bin stands for at most the threshold, so
"quantile > threshold" is exactly ``good / valid < q`` (no sort per event). Hysteresis
``h`` means: recovered when the share of values within the threshold reaches
``q + h``. Events without a ``value`` are not counted.

Breach events report, per window, ``sli`` = the sketched quantile (relative error
≤ 1 %), ``target`` = the threshold, ``good`` = values within it, ``valid`` = all values.
"""

from __future__ import annotations

from typing import Any

from services.evaluator.objectives.base import CountWindow, EventLike
from services.evaluator.objectives.ratio import CompiledRatio, OpenBreach, RatioGroup
from services.evaluator.sketch import QuantileWindow
from shared.definitions.model import Agreement, QuantileObjective
from shared.schemas import Breach, BreachKind, WindowSli
from shared.timeutil import Clock

RULE = "threshold"


class CompiledQuantile(CompiledRatio):
    """A quantile objective ready to evaluate events."""

    def __init__(
        self, agreement: Agreement, objective: QuantileObjective, clock: Clock, **kw: Any
    ) -> None:
        super().__init__(agreement, objective, clock, **kw)
        self.quantile = objective.quantile
        self.threshold = objective.threshold

    def new_window(self) -> CountWindow:
        return QuantileWindow(self.window_ms, self.threshold)

    def load_window(self, data: dict[str, Any]) -> CountWindow:
        return QuantileWindow.from_dict(data, self.window_ms, self.threshold)

    def classify(self, event: EventLike) -> Any:
        return event.value

    def value_now(self, window: CountWindow) -> float | None:
        assert isinstance(window, QuantileWindow)
        return window.quantile(self.quantile)

    def breach(
        self,
        kind: BreachKind,
        state: RatioGroup,
        opened: OpenBreach,
        at: int,
        trigger: EventLike | None,
    ) -> Breach:
        base = super().breach(kind, state, opened, at, trigger)
        window = state.window
        return base.model_copy(
            update={
                "windows": [
                    WindowSli(
                        window=self.window_label,
                        sli=self.value_now(window),
                        target=self.threshold,
                        good=window.good,
                        valid=window.valid,
                    )
                ],
                "burn_rates": {},
                "error_budget_remaining": None,
            }
        )
