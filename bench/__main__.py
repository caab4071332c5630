"""``python -m bench [NAME ...]``: run benchmarks (all by default) and write the results."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from bench.results import Results, write

Benchmark = Callable[[Results], Coroutine[Any, Any, None]]


def discover() -> dict[str, Benchmark]:
    """Every ``bench/bench_<name>.py`` with an ``async def run(results)``."""
    found: dict[str, Benchmark] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("bench_"):
            loaded = importlib.import_module(f"bench.{module.name}")
            found[module.name.removeprefix("bench_")] = loaded.run
    return found


def chosen_names(argv: list[str] | None, available: Iterable[str]) -> list[str]:
    """The benchmarks to run: those named, else all. Checked here rather than with
    ``choices``: Python 3.11's argparse checks the empty default of ``nargs="*"``
    against them and refuses a run without arguments (``invalid choice: []``)."""
    names = sorted(available)
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(names)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(names)})")
    return list(dict.fromkeys(args.names)) or names


def main(argv: list[str] | None = None) -> int:
    available = discover()
    chosen = chosen_names(argv, available)
    results = Results()
    for name in chosen:
        print(f"== {name}", flush=True)
        asyncio.run(available[name](results))
    path = write(results, chosen)
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
