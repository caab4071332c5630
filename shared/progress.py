"""Progress of a long CLI operation: a bar on a terminal, nothing in a pipe.

:func:`tracked` wraps an iterable; on an interactive stderr it draws a Rich progress
bar (items done, rate, time left) that disappears when the work ends, so the output
the command prints stays as it would be without it. In a pipe, a file or CI it is the
iterable itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

#: fewer items than this finish before a bar would help
MIN_ITEMS = 10_000


def interactive(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def tracked(
    items: Iterable[T],
    what: str,
    *,
    total: int | None = None,
    stream: TextIO | None = None,
    force: bool | None = None,
) -> Iterator[T]:
    """``items`` as they are; with a bar on ``stream`` (default stderr) when it is a
    terminal and there are at least :data:`MIN_ITEMS` (``force`` decides instead)."""
    out = sys.stderr if stream is None else stream
    show = force if force is not None else interactive(out) and (total or 0) >= MIN_ITEMS
    if not show:
        yield from items
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    console = Console(file=out, force_terminal=force or None)
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=total)
        for done, item in enumerate(items, 1):
            yield item
            if done % 1000 == 0:
                bar.update(task, completed=done)
        bar.update(task, completed=total)
