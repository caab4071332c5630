"""``slawatch status [--agreement NAME] [-o table|json|yaml]``: every agreement and
objective with its state now.

One row per group of each objective: the agreement (type, parties), the objective
(kind), the group, its state (``ok``, ``breached <severity>``, ``no data``, or ``not
loaded`` when the evaluator does not evaluate it), the SLI against the target in the
objective's own unit (the wording of the messages: ``services.notifier.values``), the
error budget left, and the open breach.

Where it reads: the agreements from the definitions in the database (like ``report``),
each objective's groups from the evaluator's ``GET /v1/objectives/{a}/{o}/status``
with an API key (``SLAWATCH_API_KEY``, else the local stack's admin key file). The
rendering (:func:`rows`) is pure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from services.notifier import values
from shared import cliout
from shared.definitions.model import (
    Agreement,
    FreshnessObjective,
    Objective,
    QuantileObjective,
    RatioObjective,
)
from shared.errors import ConfigError
from shared.settings import Settings
from shared.timeutil import parse_duration_ms

HEADER = ("AGREEMENT", "OBJECTIVE", "GROUP", "STATE", "SLI", "TARGET", "BUDGET LEFT", "BREACH")
#: the status of one objective as the evaluator answers it; None: not loaded there
StatusOf = Callable[[str, str], "dict[str, Any] | None"]


def add_command(sub: Any) -> None:
    cmd = sub.add_parser("status", help="every agreement and objective with its state now")
    cmd.add_argument("--agreement", help="only this agreement")
    cliout.add_output_option(cmd)


@dataclass(frozen=True)
class GroupState:
    """One row: an objective's group and what the evaluator says of it."""

    agreement: Agreement
    objective: Objective
    group: dict[str, str]
    status: dict[str, Any] | None  # the evaluator's group entry; None: none yet

    @property
    def state(self) -> str:
        if self.status is None:
            return "no data"
        if self.status.get("active_breach_id"):
            return f"breached {self.status.get('severity') or ''}".strip()
        return "ok"


def measured(objective: Objective, status: dict[str, Any] | None) -> tuple[str, str]:
    """(SLI, target) in the objective's unit; the target stands without a status."""
    sli = None if status is None else status.get("sli")
    if isinstance(objective, RatioObjective):
        sli_text, target_text = values.ratio_texts(sli, objective.target)
        return sli_text, f">= {target_text} over {objective.window}"
    if isinstance(objective, QuantileObjective):
        label = values.quantile_label(objective.quantile)
        value = "n/a" if sli is None else values.value_text(float(sli), "ms")
        threshold = values.value_text(objective.threshold, "ms")
        return f"{label} {value}", f"<= {threshold} over {objective.window}"
    if isinstance(objective, FreshnessObjective):
        allowed = values.duration_text(parse_duration_ms(objective.max_silence))
        seen = status is not None and status.get("event_time") is not None
        return ("events seen" if seen else "no event yet"), f"an event every {allowed}"
    # deadline: the fraction of the entity's target used
    used = "n/a" if sli is None else values.percent(float(sli), 0) + " used"
    window = "" if status is None else f" of {status.get('window', '')}"
    return used, f"done within the target{window}"


def states(agreements: Sequence[Agreement], status_of: StatusOf) -> list[GroupState]:
    out: list[GroupState] = []
    for agreement in sorted(agreements, key=lambda a: a.metadata.name):
        for objective in agreement.spec.objectives:
            answer = status_of(agreement.metadata.name, objective.name)
            groups = [] if answer is None else list(answer.get("groups", []))
            if not groups:
                out.append(GroupState(agreement, objective, {}, None))
            for group in sorted(groups, key=lambda g: sorted(g.get("group", {}).items())):
                out.append(GroupState(agreement, objective, dict(group.get("group", {})), group))
    return out


def _agreement_text(agreement: Agreement) -> str:
    spec = agreement.spec
    parties = " -> ".join(p for p in (spec.provider, spec.consumer) if p)
    return f"{agreement.metadata.name} ({spec.type}{', ' + parties if parties else ''})"


def rows(found: Sequence[GroupState]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for item in found:
        sli, target = measured(item.objective, item.status)
        budget = None if item.status is None else item.status.get("budget_remaining")
        breach = "" if item.status is None else item.status.get("active_breach_id") or ""
        out.append(
            (
                _agreement_text(item.agreement),
                f"{item.objective.name} ({item.objective.kind})",
                ", ".join(f"{k}={v}" for k, v in sorted(item.group.items())) or "-",
                item.state,
                sli,
                target,
                values.budget_text(budget) or "-",
                breach[:12],
            )
        )
    return out


def table(found: Sequence[GroupState], *, color: bool | None = None) -> str:
    return cliout.table(
        HEADER,
        rows(found),
        empty="no agreements",
        alarming=lambda row: row[3].startswith("breached"),
        color=color,
    )


def serialized(found: Sequence[GroupState], output: str) -> str:
    items = [
        {
            "agreement": item.agreement.metadata.name,
            "agreement_type": item.agreement.spec.type,
            "objective": item.objective.name,
            "kind": item.objective.kind,
            "group": item.group,
            "state": item.state,
            "status": item.status,
        }
        for item in found
    ]
    return cliout.data(items, output)


# -- I/O ----------------------------------------------------------------------------


def api_key(key_file: os.PathLike[str] | str) -> str:
    """``SLAWATCH_API_KEY``, else the key in ``key_file``; one line when neither."""
    if key := os.environ.get("SLAWATCH_API_KEY", "").strip():
        return key
    try:
        with open(key_file) as f:
            return f.read().strip()
    except OSError:
        raise ConfigError(
            f"no API key: set SLAWATCH_API_KEY (scope breaches:read), or start the local "
            f"stack (it leaves {key_file})"
        ) from None


def http_status_of(client: httpx.Client, evaluator_url: str) -> StatusOf:
    def status_of(agreement: str, objective: str) -> dict[str, Any] | None:
        url = f"{evaluator_url}/v1/objectives/{agreement}/{objective}/status"
        try:
            answer = client.get(url)
        except httpx.HTTPError as exc:
            raise ConfigError(f"cannot reach the evaluator at {evaluator_url}: {exc}") from None
        if answer.status_code == 404:
            return None
        if answer.status_code in (401, 403):
            raise ConfigError(
                f"the evaluator refused the API key ({answer.status_code}): it needs "
                "the scope breaches:read"
            )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    return status_of


async def _agreements(settings: Settings, only: str | None) -> list[Agreement]:
    from shared import db
    from shared.definitions.store import stored_documents

    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session:
            documents = await stored_documents(session)
    finally:
        await engine.dispose()
    found = [d for d in documents if isinstance(d, Agreement)]
    if only is not None:
        found = [a for a in found if a.metadata.name == only]
        if not found:
            raise ConfigError(f"no agreement named {only!r} is stored")
    return found


def main(settings: Settings, args: argparse.Namespace) -> int:
    from shared import stackfacts

    located = stackfacts.locate(settings)
    agreements = asyncio.run(_agreements(settings, args.agreement))
    key = api_key(located.admin_key_file())
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=5.0, headers=headers) as client:
        found = states(agreements, http_status_of(client, located.service_url("evaluator")))
    if args.output == "table":
        sys.stdout.write(table(found))
    else:
        sys.stdout.write(serialized(found, args.output))
    return 0
