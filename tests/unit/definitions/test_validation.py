"""Validation: one table row per error class, asserting the field path and the message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.definitions.load import DefinitionsInvalid, load_located, load_paths

BASE: dict[str, Any] = {
    "apiVersion": "slawatch/v1",
    "kind": "Agreement",
    "metadata": {"name": "shop"},
    "spec": {
        "type": "SLA",
        "provider": "shopco",
        "consumer": "acme",
        "objectives": [
            {
                "name": "availability",
                "kind": "ratio",
                "service": "checkout",
                "good": {"outcome": "good"},
                "target": 0.999,
                "window": "30d",
            }
        ],
        "notify": [{"receivers": ["hook"]}],
    },
}
OTHERS: list[dict[str, Any]] = [
    {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": "hook"},
        "spec": {"type": "webhook", "url": "http://127.0.0.1:9000/"},
    },
    {
        "apiVersion": "slawatch/v1",
        "kind": "Party",
        "metadata": {"name": "shopco"},
        "spec": {"role": "provider", "contacts": ["hook"]},
    },
    {
        "apiVersion": "slawatch/v1",
        "kind": "Party",
        "metadata": {"name": "acme"},
        "spec": {"role": "customer"},
    },
]


def edited(path: str, value: object) -> dict[str, Any]:
    """BASE with the value at a dotted path (``spec.objectives.0.target``) replaced;
    ``...`` as value deletes the key, a key not there is added."""
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def write(tmp_path: Path, *docs: dict[str, Any]) -> Path:
    file = tmp_path / "defs.yaml"
    file.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return file


def errors_of(tmp_path: Path, *docs: dict[str, Any]) -> list[tuple[int, str, str]]:
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([write(tmp_path, *docs)])
    return [(e.index, e.path, e.message) for e in info.value.errors]


def test_the_base_set_is_valid(tmp_path: Path) -> None:
    assert len(load_paths([write(tmp_path, BASE, *OTHERS)])) == 4


CASES = [
    # unknown field, with a "did you mean"
    (
        "unknown field",
        edited("spec.objectives.0.tagret", 0.9),
        "spec.objectives[0].tagret",
        "unknown field 'tagret'; did you mean 'target'?",
    ),
    (
        "unknown field in the envelope",
        edited("metadata.lables", {"a": "b"}),
        "metadata.lables",
        "did you mean 'labels'?",
    ),
    (
        "unknown enum value",
        edited("spec.type", "SLAA"),
        "spec.type",
        "'SLAA' is not allowed; did you mean 'SLA'?",
    ),
    (
        "unknown objective kind",
        edited("spec.objectives.0.kind", "ratoi"),
        "spec.objectives[0].kind",
        "unknown kind 'ratoi'; did you mean 'ratio'?",
    ),
    # wrong unit
    (
        "wrong unit",
        edited("spec.objectives.0.window", "30days"),
        "spec.objectives[0].window",
        "wrong unit in duration '30days': did you mean '30d'?",
    ),
    (
        "wrong unit, minutes",
        edited("spec.objectives.0.window", "90 min"),
        "spec.objectives[0].window",
        "did you mean '90m'?",
    ),
    # impossible targets
    (
        "target above 1",
        edited("spec.objectives.0.target", 1.5),
        "spec.objectives[0].target",
        "target 1.5 is impossible",
    ),
    (
        "target as a percentage number",
        edited("spec.objectives.0.target", 99.9),
        "spec.objectives[0].target",
        "if you meant 99.9 %, write 0.999",
    ),
    (
        "target 100 %",
        edited("spec.objectives.0.target", 1),
        "spec.objectives[0].target",
        "target 1 (100 %) is impossible",
    ),
    (
        "target as percent text",
        edited("spec.objectives.0.target", "99.9 %"),
        "spec.objectives[0].target",
        "is a percentage; write a fraction between 0 and 1 (0.999 means 99.9 %): 0.999",
    ),
    (
        "target zero",
        edited("spec.objectives.0.target", 0),
        "spec.objectives[0].target",
        "target 0 is impossible",
    ),
    (
        "penalty tier as percent",
        edited("spec.penalties", [{"below": 99.9, "creditPercent": 10}]),
        "spec.penalties[0].below",
        "below 99.9 is impossible",
    ),
    # window shorter than the alert's long window
    (
        "window shorter than the default burn-rate long window",
        edited("spec.objectives.0", {**BASE["spec"]["objectives"][0], "window": "1d",
                                     "alerting": {"policy": "burn-rate"}}),
        "spec.objectives[0].window",
        "window 1d is shorter than the alert's long window 3d",
    ),
    (
        "window shorter than a custom burn-rate long window",
        edited("spec.objectives.0", {**BASE["spec"]["objectives"][0], "window": "2h",
                                     "alerting": {"policy": "burn-rate", "burnRates": [
                                         {"severity": "page", "factor": 14.4, "long": "1h",
                                          "short": "5m"},
                                         {"severity": "ticket", "factor": 1, "long": "6h",
                                          "short": "30m"}]}}),
        "spec.objectives[0].window",
        "window 2h is shorter than the alert's long window 6h (alerting.burnRates[1].long)",
    ),
    # agreement rules
    (
        "an SLA underpins nothing",
        edited("spec.underpins", "other"),
        "spec.underpins",
        "only an OLA or a UC can name the SLA it underpins",
    ),
    (
        "penalty tiers out of order",
        edited("spec.penalties", [{"below": 0.99, "creditPercent": 25},
                                  {"below": 0.999, "creditPercent": 10}]),
        "spec.penalties[1].below",
        "list tiers from the highest 'below' down",
    ),
    (
        "penalty tiers that credit less for worse attainment",
        edited("spec.penalties", [{"below": 0.999, "creditPercent": 25},
                                  {"below": 0.99, "creditPercent": 10}]),
        "spec.penalties[1].creditPercent",
        "a lower attainment must earn more credit",
    ),
    (
        "penalty tier for an unknown objective",
        edited("spec.penalties", [{"below": 0.99, "creditPercent": 5, "objective": "latency"}]),
        "spec.penalties[0].objective",
        "no objective named 'latency'",
    ),
    (
        "unknown time zone",
        edited("spec.period", {"every": "month", "timezone": "Europe/Berln"}),
        "spec.period.timezone",
        "unknown time zone 'Europe/Berln'",
    ),
    (
        "termination needs at least one period",
        edited("spec.termination", {"consecutiveMissedPeriods": 0}),
        "spec.termination.consecutiveMissedPeriods",
        "consecutiveMissedPeriods is a number of reporting periods in a row, at least 1; got 0",
    ),
    # route matchers that can never hold
    (
        "route on a severity that does not exist",
        edited("spec.notify", [{"match": {"severity": "pgae"}, "receivers": ["hook"]}]),
        "spec.notify[0].match.severity",
        "severity 'pgae' never occurs in this agreement's breaches; did you mean 'page'?",
    ),
    (
        "route on an objective the agreement lacks",
        edited("spec.notify", [{"match": {"objective": "availabilty"}, "receivers": ["hook"]}]),
        "spec.notify[0].match.objective",
        "did you mean 'availability'?",
    ),
    (
        "route on a breach kind that does not exist",
        edited("spec.notify", [{"match": {"kind": "breach.open"}, "receivers": ["hook"]}]),
        "spec.notify[0].match.kind",
        "did you mean 'breach.opened'?",
    ),
    # dangling references
    (
        "dangling receiver",
        edited("spec.notify", [{"receivers": ["hoook"]}]),
        "spec.notify[0].receivers[0]",
        "no Receiver named 'hoook'; did you mean 'hook'?",
    ),
    (
        "dangling party",
        edited("spec.provider", "shopcoo"),
        "spec.provider",
        "no Party named 'shopcoo'; did you mean 'shopco'?",
    ),
    (
        "dangling agreement",
        {**edited("spec.type", "OLA"), "spec": {**edited("spec.type", "OLA")["spec"],
                                                "underpins": "nothing"}},
        "spec.underpins",
        "no Agreement named 'nothing'",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("document", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_names_path_and_says_why(
    tmp_path: Path, document: dict[str, Any], path: str, message: str
) -> None:
    found = errors_of(tmp_path, document, *OTHERS)
    assert any(p == path and message in m for _, p, m in found), found
    assert all(index == 0 for index, _, _ in found), found


def test_dangling_party_in_contacts(tmp_path: Path) -> None:
    party = {**OTHERS[1], "spec": {"role": "provider", "contacts": ["nobody"]}}
    found = errors_of(tmp_path, BASE, OTHERS[0], party, OTHERS[2])
    assert found == [(2, "spec.contacts[0]", "no Receiver named 'nobody'")]


def test_dangling_calendar(tmp_path: Path) -> None:
    """Deadline objectives name a Calendar (owned by the objective kinds)."""
    deadline = {
        "name": "p1-response",
        "kind": "deadline",
        "service": "support",
        "start": ["ticket.opened"],
        "stop": ["ticket.responded"],
        "target": "15m",
        "calendar": "office",
    }
    doc = edited("spec.objectives", [deadline])
    found = errors_of(tmp_path, doc, *OTHERS)
    assert ("spec.objectives[0].calendar", "no Calendar named 'office'") in [
        (p, m) for _, p, m in found
    ]


def test_services_and_parties_are_opt_in(tmp_path: Path) -> None:
    """With no Service (Party) at all, names are free; with one, they must resolve."""
    assert load_paths([write(tmp_path, edited("spec.provider", "anyone"), OTHERS[0])])
    service = {
        "apiVersion": "slawatch/v1",
        "kind": "Service",
        "metadata": {"name": "payments"},
        "spec": {"owner": "shopco"},
    }
    found = errors_of(tmp_path, BASE, *OTHERS, service)
    assert found == [(0, "spec.objectives[0].service", "no Service named 'checkout'")]


def test_duplicates_name_both_places(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump_all([BASE, *OTHERS]))
    second.write_text(yaml.safe_dump(OTHERS[0]))
    with pytest.raises(DefinitionsInvalid) as info:
        load_paths([tmp_path])
    (error,) = info.value.errors
    assert (error.file, error.index, error.path) == (str(second), 0, "metadata.name")
    assert error.message == f"duplicate Receiver 'hook' (first defined in {first}[1])"


def test_unknown_kind_did_you_mean(tmp_path: Path) -> None:
    found = errors_of(tmp_path, BASE, *OTHERS, {**OTHERS[2], "kind": "Partie"})
    assert found[0][:2] == (4, "kind")
    assert "unknown kind 'Partie'; did you mean 'Party'?" in found[0][2]


def test_every_error_at_once_in_document_order(tmp_path: Path) -> None:
    bad_party = {**OTHERS[1], "spec": {"role": "vendor"}}
    found = errors_of(tmp_path, edited("spec.objectives.0.target", 2), *OTHERS[:1], bad_party)
    # the broken party still counts as a Party (its spec stands in), so the
    # agreement's consumer, which names no Party, is reported too
    assert [(i, p) for i, p, _ in found] == [
        (0, "spec.objectives[0].target"),
        (0, "spec.consumer"),
        (2, "spec.role"),
    ]


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("kind: [unclosed\n")
    with pytest.raises(DefinitionsInvalid) as info:
        load_located([file])
    assert info.value.errors[0].file == str(file)
    assert "cannot read YAML" in info.value.errors[0].message


def test_conventional_fields_with_paths_are_no_references(tmp_path: Path) -> None:
    """A Source maps ``service`` from a JSON path (no reference) or names a constant
    service (a reference, checked once Services are declared)."""
    service = {
        "apiVersion": "slawatch/v1",
        "kind": "Service",
        "metadata": {"name": "checkout"},
        "spec": {},
    }

    def source(mapped: str) -> dict[str, Any]:
        return {
            "apiVersion": "slawatch/v1",
            "kind": "Source",
            "metadata": {"name": "orders"},
            "spec": {"topics": ["shop.orders"], "mapping": {"service": mapped}},
        }

    assert load_paths([write(tmp_path, service, source("$.app"))])
    found = errors_of(tmp_path, service, source("payments"))
    assert found == [(1, "spec.mapping.service", "no Service named 'payments'")]


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ({"country": "XX"}, "spec.country", "unknown country 'XX'"),
        ({"country": "de"}, "spec.country", "did you mean 'DE'?"),
        ({"country": "DE", "subdivision": "ZZ"}, "spec.subdivision", "unknown subdivision 'ZZ'"),
        ({"subdivision": "BY"}, "spec.subdivision", "'subdivision' needs 'country'"),
    ],
)
def test_calendar_country_and_subdivision(
    tmp_path: Path, fields: dict[str, str], path: str, message: str
) -> None:
    calendar = {
        "apiVersion": "slawatch/v1",
        "kind": "Calendar",
        "metadata": {"name": "office"},
        "spec": {"timezone": "Europe/Berlin", **fields},
    }
    found = errors_of(tmp_path, calendar)
    assert any(p == path and message in m for _, p, m in found), found
    assert load_paths(
        [write(tmp_path, {**calendar, "spec": {"country": "DE", "subdivision": "BY"}})]
    )
