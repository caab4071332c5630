"""``python -m bench [NAME ...]``: run benchmarks (all by default) and write the results."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
from collections.abc import Callable, Coroutine
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


def main() -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=sorted(available) or None)
    args = parser.parse_args()
    chosen = args.names or sorted(available)
    results = Results()
    for name in chosen:
        print(f"== {name}", flush=True)
        asyncio.run(available[name](results))
    path = write(results, chosen)
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
