"""Long CLI operations: a progress bar on a terminal, the bare items in a pipe."""

from __future__ import annotations

import io

from shared.progress import MIN_ITEMS, tracked


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_the_items_and_nothing_else() -> None:
    out = io.StringIO()
    assert list(tracked(range(MIN_ITEMS * 2), "work", total=MIN_ITEMS * 2, stream=out)) == list(
        range(MIN_ITEMS * 2)
    )
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_for_long_work_only() -> None:
    short = Terminal()
    assert list(tracked(range(5), "work", total=5, stream=short)) == [0, 1, 2, 3, 4]
    assert short.getvalue() == ""
    long = Terminal()
    count = MIN_ITEMS + 1
    assert sum(1 for _ in tracked(range(count), "backtest", total=count, stream=long)) == count
    drawn = long.getvalue()
    assert "backtest" in drawn and f"{count}/{count}" in drawn
