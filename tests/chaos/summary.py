"""The figures table of docs/reliability.md from a chaos report (JSON).

``python -m tests.chaos.summary chaos-report.json [more.json ...]`` prints one Markdown
row per case and broker: lost / double-counted events, lost breach events, duplicate
deliveries (of which in flight at a fault), client retries and seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

HEADER = (
    "| case | broker | lost events | double-counted | lost breaches | "
    "duplicate deliveries (in flight at a fault) | client retries | seconds |\n"
    "|---|---|---|---|---|---|---|---|"
)


def rows(document: dict[str, object]) -> list[str]:
    cases = document["cases"]
    assert isinstance(cases, list)
    return [
        f"| {c['case']} | {c['broker']} | {c['lost_events']} | {c['double_counted_events']} | "
        f"{c['lost_breaches']} | {c['duplicate_deliveries']} ({c['duplicates_in_flight']}) | "
        f"{c['client_retries']} | {c['seconds']:.0f} |"
        for c in cases
    ]


def main(paths: list[str]) -> int:
    print(HEADER)
    for path in paths:
        for row in rows(orjson.loads(Path(path).read_bytes())):
            print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
