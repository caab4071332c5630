"""OpenSLO v1 import: documents covering every field of Service, SLI, SLO,
AlertPolicy, AlertCondition and AlertNotificationTarget convert into valid slawatch
documents, and every field not carried over is reported by document and path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import main
from shared.definitions.load import load_paths
from shared.definitions.openslo import convert, import_paths

FULL = Path(__file__).parent / "openslo" / "full.yaml"


@pytest.fixture(scope="module")
def converted() -> Any:
    return import_paths([FULL])


def by_name(documents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def test_every_document_converts_and_validates(converted: Any, tmp_path: Path) -> None:
    assert converted.errors == []
    assert sorted(by_name(converted.documents)) == [
        ("Agreement", "checkout-availability"),
        ("Agreement", "checkout-latency"),
        ("Receiver", "latency-hook"),
        ("Receiver", "payments-pagerduty"),
        ("Receiver", "payments-slack"),
        ("Service", "checkout"),
    ]
    out = tmp_path / "out.yaml"
    out.write_text(converted.yaml())
    assert "&id" not in out.read_text()
    assert len(load_paths([out])) == 6


def test_service(converted: Any) -> None:
    service = by_name(converted.documents)[("Service", "checkout")]
    assert service["metadata"] == {
        "name": "checkout",
        "labels": {"team": "payments", "region": "eu-west-1,us-east-1"},
        "description": "Checkout",
    }
    assert service["spec"] == {"description": "Cart, payment and order confirmation"}


def test_ratio_slo_with_referenced_sli_policy_conditions_and_targets(converted: Any) -> None:
    agreement = by_name(converted.documents)[("Agreement", "checkout-availability")]
    assert agreement["metadata"]["labels"] == {"tier": "1"}
    spec = agreement["spec"]
    assert spec["type"] == "SLA"
    (objective,) = spec["objectives"]
    assert objective == {
        "name": "availability",
        "kind": "ratio",
        "service": "checkout",
        "select": {"types": ["request"]},
        "good": {"outcome": "good"},
        "target": 0.999,
        "window": "28d",
        "alerting": {
            "policy": "burn-rate",
            "burnRates": [
                {"severity": "page", "factor": 14.4, "long": "1h", "short": "5m"},
                {"severity": "ticket", "factor": 1.0, "long": "3d", "short": "6h"},
            ],
        },
    }
    assert spec["notify"] == [{"match": {}, "receivers": ["payments-slack", "payments-pagerduty"]}]
    receivers = by_name(converted.documents)
    assert receivers[("Receiver", "payments-slack")]["spec"] == {
        "type": "slack",
        "url": "env:SLAWATCH_SECRET_OPENSLO_PAYMENTS_SLACK_URL",
    }
    assert receivers[("Receiver", "payments-pagerduty")]["spec"]["routingKey"] == (
        "env:SLAWATCH_SECRET_OPENSLO_PAYMENTS_PAGERDUTY_ROUTING_KEY"
    )


def test_threshold_slo_with_inline_sli_calendar_window_and_inline_policy(
    converted: Any,
) -> None:
    agreement = by_name(converted.documents)[("Agreement", "checkout-latency")]
    fast, not_slow = agreement["spec"]["objectives"]
    assert (fast["name"], fast["good"], fast["target"]) == ("fast", {"value": "<= 300"}, 0.95)
    assert (not_slow["name"], not_slow["good"], not_slow["target"]) == (
        "not-slow",
        {"value": "< 1000"},
        0.99,
    )
    assert (fast["window"], fast["timezone"]) == ("month", "Europe/Berlin")
    assert fast["alerting"]["burnRates"] == [
        {"severity": "ticket", "factor": 2.0, "long": "6h", "short": "30m"}
    ]
    assert agreement["spec"]["notify"] == [
        {"match": {"severity": "ticket"}, "receivers": ["latency-hook"]}
    ]
    hook = by_name(converted.documents)[("Receiver", "latency-hook")]
    assert hook["spec"] == {"type": "webhook", "url": "https://hooks.example.com/slo"}


EXPECTED_NOTES = [
    (0, "metadata.labels.region", "comma-separated"),
    (0, "metadata.annotations", "annotations are not kept"),
    (1, "metadata", "folded into the objectives"),
    (1, "spec.description", "not carried over"),
    (1, "spec.ratioMetric.good", "metric queries are not run"),
    (1, "spec.ratioMetric.total", 'query: sum(rate(http_requests_total{service="checkout"}'),
    (1, "spec.ratioMetric.counter", "not needed"),
    (2, "", "SLI referenced by no SLO"),
    (3, "metadata.annotations", "annotations are not kept"),
    (4, "spec.budgetingMethod", "Timeslices is not supported"),
    (4, "spec.timeWindow[0].calendar.startTime", "start time is not used"),
    (4, "spec.objectives[0].timeSliceTarget", "not supported"),
    (4, "spec.objectives[0].timeSliceWindow", "not supported"),
    (4, "spec.objectives[1].compositeWeight", "not supported"),
    (4, "spec.indicator.metadata", "folded"),
    (4, "spec.indicator.spec.thresholdMetric", "send events whose value"),
    (4, "spec.alertPolicies[0].spec.alertWhenNoData", "freshness objective"),
    (4, "spec.alertPolicies[0].spec.alertWhenResolved", "always sends resolutions"),
    (4, "spec.alertPolicies[0].spec.conditions[0].spec.severity", "'warning' mapped to 'ticket'"),
    (4, "spec.alertPolicies[0].spec.conditions[0].spec.condition.alertAfter", "not carried"),
    (5, "spec.description", "not carried over"),
    (6, "spec.condition.lookbackWindow", "short window of 1/12 (5m)"),
    (6, "spec.condition.alertAfter", "not carried over"),
    (8, "spec.description", "not carried over"),
    (8, "spec.target", "$SLAWATCH_SECRET_OPENSLO_PAYMENTS_SLACK_URL"),
    (10, "", "used by no alert policy"),
    (11, "", "'DataSource' is not supported"),
]


@pytest.mark.parametrize(("index", "path", "words"), EXPECTED_NOTES)
def test_report_names_every_field_not_carried_over(
    converted: Any, index: int, path: str, words: str
) -> None:
    assert any(
        n.index == index and n.path == path and words in n.message for n in converted.notes
    ), [str(n) for n in converted.notes if n.index == index]


def test_no_field_is_dropped_silently(converted: Any) -> None:
    """Every field of the specification is carried over or has its own note; a field
    outside it (here ``spec.owner``) gets the generic one."""
    generic = [n for n in converted.notes if "no slawatch equivalent" in n.message]
    assert generic == []
    assert len({(n.index, n.path) for n in converted.notes}) == len(converted.notes)
    extra = doc("Service", "web", {"description": "d", "owner": {"team": "x"}})
    result = convert([("in.yaml", 0, extra)])
    assert [(n.path, n.message) for n in result.notes] == [
        ("spec.owner.team", "not carried over: no slawatch equivalent")
    ]


def doc(kind: str, name: str, spec: dict[str, Any], api: str = "openslo/v1") -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}


def slo(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "service": "web",
        "indicator": {"spec": {"ratioMetric": {"good": {}, "total": {}}}},
        "timeWindow": [{"duration": "1M", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"targetPercent": 99.5}],
    }
    return doc("SLO", "web-availability", {**base, **spec})


def test_rolling_month_is_approximated_and_noted() -> None:
    result = convert([("in.yaml", 0, slo())])
    assert result.errors == []
    (agreement,) = result.documents
    objective = agreement["spec"]["objectives"][0]
    assert (objective["window"], objective["target"]) == ("30d", 0.995)
    assert objective["alerting"] == {"policy": "burn-rate"}  # 30d: the SRE defaults fit
    assert any(n.path == "spec.timeWindow[0].duration" and "30d" in n.message for n in result.notes)


def test_unsupported_calendar_length_falls_back_to_rolling() -> None:
    windows = [{"duration": "2M", "calendar": {"timeZone": "UTC"}}]
    result = convert([("in.yaml", 0, slo(timeWindow=windows))])
    assert result.documents[0]["spec"]["objectives"][0]["window"] == "60d"
    assert any("only 1w, 1M, 1Q" in n.message for n in result.notes)


def test_short_window_without_policy_gets_threshold_alerting() -> None:
    result = convert([("in.yaml", 0, slo(timeWindow=[{"duration": "1h", "isRolling": True}]))])
    assert "alerting" not in result.documents[0]["spec"]["objectives"][0]


def test_conversion_that_slawatch_rejects_is_an_error_with_the_path() -> None:
    condition = doc(
        "AlertCondition",
        "burn",
        {
            "severity": "page",
            "condition": {"kind": "burnrate", "threshold": 2, "lookbackWindow": "3d"},
        },
    )
    policy = doc("AlertPolicy", "p", {"conditions": [{"conditionRef": "burn"}]})
    result = convert(
        [
            ("in.yaml", 0, slo(timeWindow=[{"duration": "1d"}], alertPolicies=["p"])),
            ("in.yaml", 1, policy),
            ("in.yaml", 2, condition),
        ]
    )
    assert result.documents == []
    (error,) = result.errors
    assert (error.index, error.path) == (0, "spec.objectives[0].window")
    assert "shorter than the alert's long window 3d" in error.message


def test_bad_inputs_are_errors_and_unknown_references_are_noted() -> None:
    result = convert(
        [
            ("in.yaml", 0, doc("SLO", "x", {}, api="openslo/v1alpha")),
            ("in.yaml", 1, {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {}}),
            ("in.yaml", 2, slo(alertPolicies=["missing"], indicator=None, indicatorRef="nope")),
        ]
    )
    assert [(e.index, e.path) for e in result.errors] == [(0, "apiVersion"), (1, "metadata.name")]
    paths = {(n.index, n.path) for n in result.notes}
    assert (2, "spec.alertPolicies[0]") in paths
    assert (2, "spec.indicatorRef") in paths


def test_names_become_kebab_case() -> None:
    target = doc("AlertNotificationTarget", "OnCall_Mail", {"target": "https://x.example/hook"})
    policy = doc(
        "AlertPolicy",
        "p",
        {"conditions": [], "notificationTargets": [{"targetRef": "OnCall_Mail"}]},
    )
    result = convert(
        [("in.yaml", 0, slo(alertPolicies=[{"alertPolicyRef": "p"}])), ("in.yaml", 1, policy),
         ("in.yaml", 2, target)]
    )  # fmt: skip
    assert result.errors == []
    names = {d["metadata"]["name"] for d in result.documents}
    assert "on-call-mail" in names
    assert any(n.path == "metadata.name" and "on-call-mail" in n.message for n in result.notes)


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "slawatch.yaml"
    assert main(["import", "openslo", str(FULL), "-o", str(out)]) == 0
    report = capsys.readouterr().err
    assert "converted: 2 Agreement, 3 Receiver, 1 Service" in report
    assert "DataSource" in report
    assert len(list(yaml.safe_load_all(out.read_text()))) == 6
    assert main(["validate", str(out)]) == 0


def targets_converted(*urls: str) -> Any:
    """An SLO notifying one AlertNotificationTarget per URL (``t0``, ``t1``, ...)."""
    refs = [{"targetRef": f"t{i}"} for i in range(len(urls))]
    policy = doc("AlertPolicy", "p", {"conditions": [], "notificationTargets": refs})
    targets = [doc("AlertNotificationTarget", f"t{i}", {"target": u}) for i, u in enumerate(urls)]
    raws = [slo(alertPolicies=[{"alertPolicyRef": "p"}]), policy, *targets]
    return convert([("in.yaml", i, d) for i, d in enumerate(raws)])


def test_target_with_an_inline_secret_url_is_never_copied_into_definitions() -> None:
    """A Slack / Teams webhook URL becomes that type with an ``env:`` reference and a
    report line naming the variable to set; a URL with a credential slawatch cannot
    reference (webhook) is not converted, with a report line saying what to do."""
    slack = "https://hooks.slack.com/services/T0/B0/s3cr3t"
    teams = "https://contoso.webhook.office.com/webhookb2/x/IncomingWebhook/s3cr3t"
    tokened = "https://status.example.com/hook?token=s3cr3t"
    plain = "https://status.example.com/hook"
    result = targets_converted(slack, teams, tokened, plain)
    assert result.errors == []
    assert "s3cr3t" not in result.yaml()
    receivers = {
        d["metadata"]["name"]: d["spec"] for d in result.documents if d["kind"] == "Receiver"
    }
    assert receivers == {
        "t0": {"type": "slack", "url": "env:SLAWATCH_SECRET_OPENSLO_T0_URL"},
        "t1": {"type": "teams", "url": "env:SLAWATCH_SECRET_OPENSLO_T1_URL"},
        "t3": {"type": "webhook", "url": plain},
    }
    (agreement,) = (d for d in result.documents if d["kind"] == "Agreement")
    assert agreement["spec"]["notify"] == [{"match": {}, "receivers": ["t0", "t1", "t3"]}]
    notes = {n.index: n.message for n in result.notes if n.path == "spec.target"}
    assert "set $SLAWATCH_SECRET_OPENSLO_T0_URL in the notifier's environment" in notes[2]
    assert notes[3].startswith("Teams webhook URL, a credential: not copied")
    assert notes[4].startswith("not converted: query parameter 'token' of the target URL")
    assert "secretHeaders" in notes[4]
    assert 5 not in notes
    assert all("s3cr3t" not in str(n) for n in result.notes)
