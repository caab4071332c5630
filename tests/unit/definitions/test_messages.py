"""Messages for broken definitions: one table row per broken definition, asserting
every problem it has (field path and the whole message), and that a file's problems
all arrive in one run."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.definitions.load import (
    DefinitionsInvalid,
    load_paths,
    parse_document,
    validate_model,
)

RATIO: dict[str, Any] = {
    "name": "availability",
    "kind": "ratio",
    "service": "checkout",
    "good": {"outcome": "good"},
    "target": 0.999,
    "window": "30d",
}
QUANTILE: dict[str, Any] = {
    "name": "latency",
    "kind": "quantile",
    "service": "checkout",
    "quantile": 0.99,
    "threshold": 300,
    "window": "15m",
}
DEADLINE: dict[str, Any] = {
    "name": "response",
    "kind": "deadline",
    "service": "desk",
    "start": ["ticket.opened"],
    "stop": ["ticket.answered"],
    "target": "1h",
}
FRESHNESS: dict[str, Any] = {
    "name": "export",
    "kind": "freshness",
    "service": "export",
    "maxSilence": "26h",
}
HOOK: dict[str, Any] = {
    "apiVersion": "slawatch/v1",
    "kind": "Receiver",
    "metadata": {"name": "hook"},
    "spec": {"type": "webhook", "url": "https://alerts.example.com/hook"},
}
BURN = {"policy": "burn-rate"}
EMAIL = {
    "type": "email",
    "host": "smtp.example.com",
    "from": "slawatch@example.com",
    "to": ["ops@example.com"],
}
SLACK = {"type": "slack", "url": "env:SLAWATCH_SECRET_HOOK_URL"}


def agreement(*objectives: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Agreement",
        "metadata": {"name": "shop"},
        "spec": {
            "type": "SLA",
            "objectives": list(objectives or [RATIO]),
            "notify": [{"receivers": ["hook"]}],
            **spec,
        },
    }


def objective(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``base`` with ``fields`` set; ``...`` removes a field."""
    out = {**copy.deepcopy(base), **fields}
    return {k: v for k, v in out.items() if v is not ...}


def receiver(**spec: Any) -> dict[str, Any]:
    return {**HOOK, "spec": spec}


def route(**fields: Any) -> dict[str, Any]:
    return agreement(notify=[{"receivers": ["hook"], **fields}])


def source(**mapping: Any) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Source",
        "metadata": {"name": "orders"},
        "spec": {"topics": ["shop.orders"], "mapping": {"service": "$.app", **mapping}},
    }


def without(document: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != key}


NAME_RULE = (
    "a name is lowercase letters, digits and '-', starting and ending with a letter or "
    "digit, at most 63 characters"
)
SELECT_HINT = (
    "add them to select.types, or remove select.types (then every event type of the "
    "service is seen and the clock acts on its own types only)"
)
FIRST = "spec.objectives[0]"

CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    # names: the rule in words, never the regex, and the closest valid name
    (
        "name with capitals and a space",
        {**agreement(), "metadata": {"name": "Shop SLA"}},
        [("metadata.name", f"{NAME_RULE}; got 'Shop SLA'; did you mean 'shop-sla'?")],
    ),
    (
        "name with an underscore",
        {**agreement(), "metadata": {"name": "shop_sla"}},
        [("metadata.name", f"{NAME_RULE}; got 'shop_sla'; did you mean 'shop-sla'?")],
    ),
    (
        "objective name ending in '-'",
        agreement(objective(RATIO, name="availability-")),
        [(f"{FIRST}.name", f"{NAME_RULE}; got 'availability-'; did you mean 'availability'?")],
    ),
    # ranges: what the field is, what it takes, what was written
    (
        "quantile as a percentage",
        agreement(objective(QUANTILE, quantile=99)),
        [
            (
                f"{FIRST}.quantile",
                "quantile is a fraction between 0 and 1 (exclusive), e.g. 0.99 for p99; got 99",
            )
        ],
    ),
    (
        "quantile as text",
        agreement(objective(QUANTILE, quantile="p99")),
        [
            (
                f"{FIRST}.quantile",
                "quantile must be a number; got 'p99' (quantile is a fraction between 0 and 1 "
                "(exclusive), e.g. 0.99 for p99)",
            )
        ],
    ),
    (
        "target as a percentage",
        agreement(objective(RATIO, target=99.9)),
        [
            (
                f"{FIRST}.target",
                "target 99.9 is impossible: it must be a fraction between 0 and 1 (0.999 means "
                "99.9 %), greater than 0 and less than 1; if you meant 99.9 %, write 0.999",
            )
        ],
    ),
    (
        "hysteresis of 1 or more",
        agreement(objective(RATIO, alerting={"hysteresis": 1.5})),
        [
            (
                f"{FIRST}.alerting.hysteresis",
                "hysteresis is a fraction from 0 up to (not including) 1, e.g. 0.1; got 1.5",
            )
        ],
    ),
    (
        "minEvents zero",
        agreement(objective(RATIO, alerting={"minEvents": 0})),
        [
            (
                f"{FIRST}.alerting.minEvents",
                "minEvents is how many valid events the judged window needs before anything "
                "fires, a whole number of at least 1; got 0",
            )
        ],
    ),
    (
        "burn-rate factor zero",
        agreement(
            objective(
                RATIO,
                alerting={
                    **BURN,
                    "burnRates": [{"severity": "page", "factor": 0, "long": "1h", "short": "5m"}],
                },
            )
        ),
        [
            (
                f"{FIRST}.alerting.burnRates[0].factor",
                "factor is the burn rate that fires (how many times faster than sustainable the "
                "error budget is spent), greater than 0, e.g. 14.4; got 0",
            )
        ],
    ),
    (
        "deadline warning past the target",
        agreement(objective(DEADLINE, warnings=[0.5, 1.5])),
        [
            (
                f"{FIRST}.warnings[1]",
                "a warning is a fraction of the target time between 0 and 1 (exclusive), e.g. "
                "0.75 to warn when 75 % of it is used; got 1.5",
            )
        ],
    ),
    (
        "credit over 100 %",
        agreement(penalties=[{"below": 0.99, "creditPercent": 150}]),
        [
            (
                "spec.penalties[0].creditPercent",
                "creditPercent is a percentage greater than 0 and at most 100, e.g. 10; got 150",
            )
        ],
    ),
    (
        "termination after zero periods",
        agreement(termination={"consecutiveMissedPeriods": 0}),
        [
            (
                "spec.termination.consecutiveMissedPeriods",
                "consecutiveMissedPeriods is a number of reporting periods in a row, at least 1; "
                "got 0",
            )
        ],
    ),
    (
        "email port out of range",
        receiver(**EMAIL, port=70000),
        [("spec.port", "port is a TCP port number from 1 to 65535; got 70000")],
    ),
    # fields that do not apply to the chosen policy
    (
        "for under burn-rate",
        agreement(objective(RATIO, alerting={**BURN, "for": "5m"})),
        [
            (
                f"{FIRST}.alerting.for",
                "'for' does not apply to policy 'burn-rate' (it is how long a threshold breach "
                "must hold): a burn-rate rule opens a breach when both its long and short "
                "windows burn past its factor, so its short window already confirms it; "
                "remove 'for'",
            )
        ],
    ),
    (
        "severity under burn-rate",
        agreement(objective(RATIO, alerting={**BURN, "severity": "ticket"})),
        [
            (
                f"{FIRST}.alerting.severity",
                "'severity' does not apply to policy 'burn-rate': each rule carries its own "
                "(page or ticket) and the breach takes the highest firing one; remove "
                "'severity', or set 'severity' on rules in burnRates",
            )
        ],
    ),
    (
        "burnRates under threshold",
        agreement(
            objective(
                RATIO,
                alerting={
                    "burnRates": [{"severity": "page", "factor": 14.4, "long": "1h", "short": "5m"}]
                },
            )
        ),
        [
            (
                f"{FIRST}.alerting.burnRates",
                "'burnRates' does not apply to policy 'threshold' (which fires on the SLI "
                "against the target); write policy: burn-rate to use them, or remove "
                "'burnRates'",
            )
        ],
    ),
    (
        "timezone on a rolling window",
        agreement(objective(RATIO, timezone="Europe/Berlin")),
        [
            (
                f"{FIRST}.timezone",
                "'timezone' does not apply to the rolling window '30d': it aligns calendar "
                "windows (week, month, quarter) to local midnight; remove 'timezone', or use a "
                "calendar window",
            )
        ],
    ),
    # deadline clocks
    (
        "deadline select leaves out stop, pause and resume",
        agreement(
            objective(
                DEADLINE,
                select={"types": ["ticket.opened"]},
                pause=["ticket.waiting"],
                resume=["ticket.replied"],
            )
        ),
        [
            (
                f"{FIRST}.select.types",
                "select.types leaves out the clock's own event types 'ticket.answered' (stop), "
                "'ticket.waiting' (pause), 'ticket.replied' (resume): those events are never "
                f"seen, so clocks would never stop, never pause, never resume; {SELECT_HINT}",
            )
        ],
    ),
    (
        "deadline select leaves out start",
        agreement(objective(DEADLINE, select={"types": ["ticket.answered"]})),
        [
            (
                f"{FIRST}.select.types",
                "select.types leaves out the clock's own event types 'ticket.opened' (start): "
                f"those events are never seen, so clocks would never start; {SELECT_HINT}",
            )
        ],
    ),
    (
        "deadline targetBy without targets",
        agreement(objective(DEADLINE, targetBy="priority")),
        [
            (
                f"{FIRST}.targetBy",
                "'targetBy' does not apply without 'targets': it names the attribute "
                "('priority') whose values key 'targets'; add targets, or remove 'targetBy'",
            )
        ],
    ),
    (
        "deadline resume without pause",
        agreement(objective(DEADLINE, resume=["ticket.replied"])),
        [
            (
                f"{FIRST}.resume",
                "'resume' does not apply without 'pause': it restarts a paused clock, and "
                "nothing pauses one; add pause types, or remove 'resume'",
            )
        ],
    ),
    (
        "deadline type that both starts and stops",
        agreement(objective(DEADLINE, stop=["ticket.opened"])),
        [
            (
                f"{FIRST}.stop",
                "event type 'ticket.opened' is in both 'start' and 'stop': an event type does "
                "one thing to the clock; keep it in one list",
            )
        ],
    ),
    # routes
    (
        "groupWait on a route that does not group",
        route(groupWait="30s"),
        [
            (
                "spec.notify[0].groupWait",
                "'groupWait' does not apply without 'groupBy': a route that does not group "
                "notifies every breach event at once; add groupBy, or remove 'groupWait'",
            )
        ],
    ),
    (
        "repeatInterval on a route that does not group",
        route(repeatInterval="12h"),
        [
            (
                "spec.notify[0].repeatInterval",
                "'repeatInterval' does not apply without 'groupBy': a route that does not group "
                "notifies every breach event at once; add groupBy, or remove 'repeatInterval'",
            )
        ],
    ),
    (
        "escalateEvery without escalate steps",
        route(escalateEvery="30m"),
        [
            (
                "spec.notify[0].escalateEvery",
                "'escalateEvery' does not apply without 'escalate' steps (it repeats them); "
                "add escalate steps, or remove 'escalateEvery'",
            )
        ],
    ),
    (
        "escalateCycles without escalateEvery",
        route(escalate=[{"after": "30m", "receivers": ["hook"]}], escalateCycles=3),
        [
            (
                "spec.notify[0].escalateCycles",
                "'escalateCycles' does not apply without 'escalateEvery': the steps run once "
                "unless they repeat every escalateEvery; add escalateEvery, or remove "
                "'escalateCycles'",
            )
        ],
    ),
    (
        "continue on a default route",
        route(default=True, **{"continue": True}),
        [
            (
                "spec.notify[0].continue",
                "'continue' does not apply to a default route: default routes are tried only "
                "when no other route took the event, and every matching one takes it; remove "
                "'continue'",
            )
        ],
    ),
    (
        "route without receivers",
        agreement(notify=[{"receivers": []}]),
        [
            (
                "spec.notify[0].receivers",
                "receivers needs at least one item: the names of the Receivers to notify",
            )
        ],
    ),
    # other kinds' fields that do not apply
    (
        "verifyTls without TLS",
        receiver(**EMAIL, security="none", verifyTls=False),
        [
            (
                "spec.verifyTls",
                "'verifyTls' does not apply to security 'none' (no TLS, nothing to verify); "
                "use security starttls or tls, or remove 'verifyTls'",
            )
        ],
    ),
    (
        "good values with a when condition",
        source(outcome={"when": "status < 500", "good": ["ok"]}),
        [
            (
                "spec.mapping.outcome.good",
                "'good' does not apply with 'when': it lists the values of 'path' that mean a "
                "good outcome, while 'when' decides by its condition; remove 'good', or use "
                "path with good instead of when",
            )
        ],
    ),
    (
        "maintenance match while nothing is excluded",
        agreement(maintenance={"exclude": False, "match": {"service": "checkout"}}),
        [
            (
                "spec.maintenance.match",
                "'match' does not apply with exclude: false: it narrows which maintenance "
                "windows are excluded from compliance, and none are; remove 'match', or set "
                "exclude: true",
            )
        ],
    ),
    # fields of another kind
    (
        "window on a deadline objective",
        agreement(objective(DEADLINE, window="30d")),
        [
            (
                f"{FIRST}.window",
                "'window' does not apply to kind 'deadline' (only to kind ratio, quantile); "
                "allowed here: calendar, groupBy, kind, name, pause, resume, select, service, "
                "severity, start, stop, target, targetBy, targets, warnings",
            )
        ],
    ),
    (
        "alerting on a freshness objective",
        agreement(objective(FRESHNESS, alerting=BURN)),
        [
            (
                f"{FIRST}.alerting",
                "'alerting' does not apply to kind 'freshness' (only to kind ratio, quantile); "
                "allowed here: expectedGroups, groupBy, kind, maxSilence, name, select, "
                "service, severity",
            )
        ],
    ),
    (
        "headers on a slack receiver",
        receiver(**SLACK, headers={"X-Team": "ops"}),
        [
            (
                "spec.headers",
                "'headers' does not apply to type 'slack' (only to type webhook, "
                "alertmanager); allowed here: templates, type, url",
            )
        ],
    ),
    # missing and mistyped
    (
        "missing target",
        agreement(objective(RATIO, target=...)),
        [
            (
                f"{FIRST}.target",
                "missing required field 'target': a fraction between 0 and 1, e.g. 0.999 for "
                "99.9 %",
            )
        ],
    ),
    (
        "missing objective kind",
        agreement(objective(RATIO, kind=...)),
        [(f"{FIRST}.kind", "missing 'kind': one of ratio, quantile, deadline, freshness")],
    ),
    (
        "missing document kind",
        without(agreement(), "kind"),
        [
            (
                "kind",
                "missing 'kind': one of Agreement, Calendar, MaintenanceWindow, Party, "
                "Receiver, Service, Silence, Source",
            )
        ],
    ),
    (
        "wrong apiVersion",
        {**agreement(), "apiVersion": "slawatch/v2"},
        [
            (
                "apiVersion",
                "'slawatch/v2' is not allowed; did you mean 'slawatch/v1'? (expected: slawatch/v1)",
            )
        ],
    ),
    (
        "service as a list",
        agreement(objective(RATIO, service=["a", "b"])),
        [(f"{FIRST}.service", "service must be text; got a list")],
    ),
    (
        "no objectives",
        agreement(objectives=[]),
        [
            (
                "spec.objectives",
                "objectives needs at least one item: an agreement promises at least one objective",
            )
        ],
    ),
    (
        "silence in words",
        agreement(objective(FRESHNESS, maxSilence="1 day")),
        [(f"{FIRST}.maxSilence", "wrong unit in duration '1 day': did you mean '1d'?")],
    ),
    (
        "holiday that is no date",
        {
            "apiVersion": "slawatch/v1",
            "kind": "Calendar",
            "metadata": {"name": "office"},
            "spec": {"holidays": ["2026-13-01"]},
        },
        [("spec.holidays[0]", "holidays must be a date written YYYY-MM-DD; got '2026-13-01'")],
    ),
    # patterns of secret fields: the rule, and the value is not echoed
    (
        "secret that is not a reference",
        receiver(type="webhook", url="https://alerts.example.com/hook", secret="whsec_c2VjcmV0"),
        [
            (
                "spec.secret",
                "secret must be a secret reference: env:NAME (an environment variable of the "
                "notifier; letters, digits and '_', not starting with a digit) or file:NAME (a "
                "file in the secrets directory); the value itself is not repeated here in case "
                "it is the secret",
            )
        ],
    ),
    (
        "url without a scheme",
        receiver(type="webhook", url="alerts.example.com/hook"),
        [
            (
                "spec.url",
                "url must be an http:// or https:// URL, or a secret reference env:NAME or "
                "file:NAME holding one; the value itself is not repeated here in case it is a "
                "credential",
            )
        ],
    ),
    (
        "template name with capitals",
        receiver(**SLACK, templates={"Title": "x"}),
        [
            (
                "spec.templates.Title",
                "a template name is 1 to 32 lowercase letters or '_'; got 'Title'",
            )
        ],
    ),
]


def problems(tmp_path: Path, *documents: dict[str, Any]) -> list[tuple[int, str, str]]:
    file = tmp_path / "defs.yaml"
    file.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([file])
    assert all(e.file == str(file) for e in info.value.errors)
    return [(e.index, e.path, e.message) for e in info.value.errors]


def test_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("document", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_message(tmp_path: Path, document: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    others = [] if document.get("kind") == "Receiver" else [HOOK]
    assert problems(tmp_path, document, *others) == [(0, p, m) for p, m in expected]


_MACHINE = re.compile(r"Input should|String should|Field required|Value error|\^|\$|\[a-z|\{0,")


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_no_raw_regex_or_bare_pydantic_phrasing(case: tuple[str, Any, Any]) -> None:
    for _, message in case[2]:
        assert not _MACHINE.search(message), message


def test_a_secret_that_fails_its_pattern_is_not_echoed(tmp_path: Path) -> None:
    token = "R0UTINGKEY-s3cr3t"
    pagerduty = receiver(type="pagerduty", routingKey=token)
    ((_, path, message),) = problems(tmp_path, pagerduty)
    assert path == "spec.routingKey" and token not in message


STAGED = [
    {
        **agreement(
            objective(QUANTILE, quantile=99),  # a field error
            objective(RATIO, name="monthly", window="month"),  # the objective's own rule
            objective(RATIO, name="fast", window="1h", alerting={**BURN, "for": "5m"}),
            objective(DEADLINE, select={"types": ["ticket.opened"]}),
            objective(FRESHNESS, maxSilence="1 day"),
        ),
        "metadata": {"name": "Shop SLA"},
    },
    {**HOOK, "metadata": {"name": "hook"}, "spec": {"type": "webhok", "url": "x"}},
]


def test_every_problem_of_a_file_in_one_run(tmp_path: Path) -> None:
    """Field errors, an objective's own rule, fields that do not apply, the burn-rate
    window check and dangling references of one file: once, in one run, where they
    were written (indexes as in the file), nothing reported twice or made up."""
    document = copy.deepcopy(STAGED[0])
    document["spec"]["notify"] = [{"receivers": ["nobody"], "groupWait": "1m"}]
    found = problems(tmp_path, document, STAGED[1])
    assert [(i, p) for i, p, _ in found] == [
        (0, "metadata.name"),
        (0, "spec.objectives[0].quantile"),
        (0, "spec.objectives[1]"),
        (0, "spec.objectives[4].maxSilence"),
        (0, "spec.objectives[2].alerting.for"),
        (0, "spec.objectives[3].select.types"),
        (0, "spec.notify[0].groupWait"),
        (0, "spec.objectives[2].window"),
        (0, "spec.notify[0].receivers[0]"),
        (1, "spec.type"),
    ]
    messages = dict(((i, p), m) for i, p, m in found)
    assert messages[(0, "spec.objectives[1]")].startswith(
        "a calendar window needs alerting.policy 'burn-rate'"
    )
    assert messages[(0, "spec.objectives[2].window")].startswith(
        "window 1h is shorter than the alert's long window 3d"
    )
    assert messages[(0, "spec.notify[0].receivers[0]")] == "no Receiver named 'nobody'"
    assert messages[(1, "spec.type")].startswith("unknown type 'webhok'; did you mean 'webhook'?")


def test_errors_name_file_document_kind_and_name(tmp_path: Path) -> None:
    file = tmp_path / "defs.yaml"
    file.write_text(yaml.safe_dump_all([HOOK, agreement(objective(QUANTILE, quantile=99))]))
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([file])
    (error,) = info.value.errors
    assert (error.file, error.index, error.kind, error.name) == (str(file), 1, "Agreement", "shop")
    assert str(error) == (
        f"{file}[1] Agreement/shop spec.objectives[0].quantile: quantile is a fraction between "
        "0 and 1 (exclusive), e.g. 0.99 for p99; got 99"
    )


def test_no_problem_made_up_by_a_removed_part(tmp_path: Path) -> None:
    """An objective dropped for its errors is not reported again by the checks that
    run on the rest (a penalty tier or a route naming it)."""
    document = agreement(
        objective(RATIO, target=...),
        penalties=[{"below": 0.99, "creditPercent": 5, "objective": "availability"}],
        notify=[{"receivers": ["hook"], "match": {"objective": "availability"}}],
    )
    assert problems(tmp_path, document, HOOK) == [
        (
            0,
            "spec.objectives[0].target",
            "missing required field 'target': a fraction between 0 and 1, e.g. 0.999 for 99.9 %",
        )
    ]


def test_a_stored_document_loads_although_a_field_does_not_apply() -> None:
    """Fields that do not apply are refused on write; a document stored before the
    check still loads (the services read it with the model only)."""
    document = agreement(objective(RATIO, alerting={**BURN, "for": "5m"}))
    assert validate_model(document).metadata.name == "shop"
    with pytest.raises(DefinitionsInvalid) as info:
        parse_document(document)
    assert [e.path for e in info.value.errors] == ["spec.objectives[0].alerting.for"]
