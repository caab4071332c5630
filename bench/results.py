"""Collecting figures and writing the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"
LIBRARIES = ("aiokafka", "asyncpg", "sqlalchemy", "fastapi", "uvicorn", "orjson", "pydantic")


@dataclass
class Results:
    """Figures by name; each a list of samples in one unit."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str) -> None:
        self.samples.setdefault(name, []).append(value)
        self.units[name] = unit
        print(f"  {name}: {value:,.3f} {unit}", flush=True)

    def figures(self) -> dict[str, dict[str, float | str]]:
        return {
            name: {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "unit": self.units[name],
            }
            for name, values in sorted(self.samples.items())
        }


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions,
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def write(results: Results, only: list[str] | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "figures": results.figures(),
        "machine": machine(),
        "commit": git_commit(),
        "benchmarks": only,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    # the flat figure keys sit at the top level too, as the format asks
    flat = {**document["figures"], **{k: v for k, v in document.items() if k != "figures"}}  # type: ignore[dict-item]
    text = json.dumps(flat, indent=2, sort_keys=True)
    latest = RESULTS_DIR / "latest.json"
    latest.write_text(text)
    (RESULTS_DIR / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json").write_text(text)
    return latest
