"""How the CLI's listing commands print: an aligned table for people, or the same
items as JSON or YAML for programs (``--output table|json|yaml``).

Tables go through Rich: colour only on a terminal, never with ``NO_COLOR`` set (Rich
reads it), and never in a pipe. One renderer for every listing command.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml
from rich import box
from rich.console import Console
from rich.table import Table

OUTPUTS = ("table", "json", "yaml")
#: a wide console: a table never wraps to a terminal's width mid-cell in a pipe
WIDTH = 200


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", "-o", choices=OUTPUTS, default="table", help="table (default), json or yaml"
    )


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    empty: str,
    alarming: Callable[[Sequence[str]], bool] | None = None,
    color: bool | None = None,
) -> str:
    """``rows`` under ``header``, aligned; ``empty`` (a line) without rows. Rows that
    are ``alarming`` are bold red where colour is on; ``color`` None lets Rich decide."""
    if not rows:
        return empty + "\n"
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in header:
        grid.add_column(name, overflow="fold")
    for row in rows:
        style = "bold red" if alarming is not None and alarming(row) else None
        grid.add_row(*row, style=style)
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=WIDTH,
        force_terminal=color,
        no_color=None if color is None else not color,
        highlight=False,
    )
    console.print(grid)
    return buffer.getvalue()


def data(items: Sequence[Mapping[str, Any]], output: str) -> str:
    """``items`` as JSON (indented) or YAML (keys in their order)."""
    plain = [dict(item) for item in items]
    if output == "json":
        return json.dumps(plain, indent=2, default=str) + "\n"
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
