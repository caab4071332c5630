"""What the console shows: the Now order and filters, spans, the timeline (pure)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.console.routes import content_security_policy, safe_next
from services.notifier.console.views import (
    SEVERITY_ORDER,
    AckView,
    AttemptLine,
    BadMatchers,
    DeliveryLine,
    Filters,
    ago_text,
    breach_matchers,
    breach_view,
    matchers_text,
    muted_now,
    now_rows,
    parse_matchers,
    timeline,
    unacked_pages,
    utc_text,
)
from shared.schemas import WindowSli
from tests.unit.notifier.support import T0, make_breach


@dataclass
class Row:
    """The attributes of a ``BreachRecord`` the views read."""

    id: str
    severity: str = "page"
    status: str = "open"
    agreement: str = "acme-checkout"
    objective_id: str = "acme-checkout/availability"
    service: str = "checkout"
    group: dict[str, str] = field(default_factory=lambda: {"customer": "acme"})
    opened_at: int = T0
    resolved_at: int | None = None
    last_event: dict[str, Any] = field(default_factory=dict)


def row(id: str, **overrides: Any) -> Row:
    r = Row(id=id, **overrides)
    event = make_breach(
        id=id, severity=r.severity, opened_at=r.opened_at, at=r.opened_at, group=r.group
    )
    r.last_event = event.model_dump()
    return r


ACK = AckView("ana", "on it", T0 + 5, "console", "oncall-key")


def test_a_view_has_agreement_type_parties_and_the_sli_in_its_unit() -> None:
    view = breach_view(row("a"), None)
    assert (view.agreement_type, view.parties) == ("SLA", "shopco → acme")
    assert view.measures == ["SLI 98.0 % (98 of 100 good) vs target 99.9 % over 1h"]
    assert view.group_text == "customer=acme"


def test_a_quantile_breach_reads_as_a_duration() -> None:
    r = row("q")
    r.last_event = make_breach(
        id="q", windows=[WindowSli(window="5m", sli=512.0, target=300.0)]
    ).model_dump()
    assert breach_view(r, None).measures == ["quantile 512 ms, threshold 300 ms over 5m"]


def test_a_last_event_that_no_longer_validates_still_lists() -> None:
    r = row("x")
    r.last_event = {"not": "a breach"}
    view = breach_view(r, None)
    assert (view.id, view.objective, view.measures) == ("x", "availability", [])


def test_now_order_severity_then_longest_open() -> None:
    views = [
        breach_view(row("t-new", severity="ticket", opened_at=T0 + 9), None),
        breach_view(row("p-new", severity="page", opened_at=T0 + 8), None),
        breach_view(row("i-old", severity="info", opened_at=T0), None),
        breach_view(row("p-old", severity="page", opened_at=T0 + 1), None),
        breach_view(row("w", severity="warning", opened_at=T0 + 2), None),
        breach_view(row("r", status="resolved"), None),
    ]
    assert [v.id for v in now_rows(views, Filters())] == ["p-old", "p-new", "t-new", "w", "i-old"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, Filters()),
        ({"agreement": "a", "severity": "page", "acked": "no"}, Filters("a", "page", False)),
        ({"acked": "yes"}, Filters(acked=True)),
        ({"acked": "maybe", "severity": "loud", "agreement": ""}, Filters()),
        ({"party": "acme"}, Filters(party="acme")),
    ],
)
def test_filters_parse(params: dict[str, str], expected: Filters) -> None:
    assert Filters.parse(params) == expected
    assert Filters.parse(expected.query()) == expected


severities = st.sampled_from(SEVERITY_ORDER)


@given(
    st.lists(
        st.tuples(severities, st.integers(0, 5), st.booleans(), st.sampled_from(["a", "b"])),
        max_size=12,
    ),
    st.sampled_from([None, "a", "b"]),
    st.sampled_from([None, *SEVERITY_ORDER]),
    st.sampled_from([None, True, False]),
)
def test_now_rows_match_a_brute_force_reference(
    specs: list[tuple[str, int, bool, str]],
    agreement: str | None,
    severity: str | None,
    acked: bool | None,
) -> None:
    views = [
        breach_view(
            row(f"{i:02d}", severity=s, opened_at=T0 + age, agreement=a), ACK if is_acked else None
        )
        for i, (s, age, is_acked, a) in enumerate(specs)
    ]
    got = [v.id for v in now_rows(views, Filters(agreement, severity, acked))]
    # reference: every pair in the output is in order, and exactly the admitted ones are there
    admitted = [
        v
        for v in views
        if (agreement is None or v.agreement == agreement)
        and (severity is None or v.severity == severity)
        and (acked is None or (v.ack is not None) == acked)
    ]
    assert sorted(got) == sorted(v.id for v in admitted)
    by_id = {v.id: v for v in views}
    for before, after in itertools.pairwise(got):
        b, a = by_id[before], by_id[after]
        rank_b, rank_a = SEVERITY_ORDER.index(b.severity), SEVERITY_ORDER.index(a.severity)
        assert (rank_b, b.opened_at, b.id) < (rank_a, a.opened_at, a.id)
    expected_unacked = sum(1 for v in views if v.severity == "page" and v.ack is None)
    assert unacked_pages(views) == expected_unacked


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 s"),
        (-5_000, "0 s"),
        (59_999, "59 s"),
        (60_000, "1 m"),
        (3_599_999, "59 m"),
        (3_600_000, "1 h"),
        (3 * 3_600_000 + 20 * 60_000, "3 h 20 m"),
        (86_400_000, "1 d"),
        (2 * 86_400_000 + 4 * 3_600_000, "2 d 4 h"),
    ],
)
def test_ago_text(ms: int, text: str) -> None:
    assert ago_text(ms) == text


def test_utc_text() -> None:
    assert utc_text(T0) == "2023-11-14 22:13:20 UTC"


@dataclass
class Event:
    kind: str
    at: int
    payload: dict[str, Any]


def test_timeline_orders_events_deliveries_escalations_and_the_ack() -> None:
    opened = make_breach()
    events = [
        Event("breach.resolved", T0 + 50, make_breach(kind="breach.resolved").model_dump()),
        Event("breach.opened", T0, opened.model_dump()),
    ]
    deliveries = [
        DeliveryLine(
            "hook",
            "breach.opened",
            "delivered",
            None,
            T0 + 1,
            T0 + 1,
            [
                AttemptLine(1, "retry", 503, 12, "http_5xx", T0 + 2),
                AttemptLine(2, "delivered", 200, 8, None, T0 + 3),
            ],
        ),
        DeliveryLine("pager", "escalation.1", "cancelled", None, T0 + 1, T0 + 600_000, []),
    ]
    entries = timeline(events, deliveries, ACK)
    assert [e.what for e in entries] == [
        "breach.opened",
        "delivery of breach.opened",
        "delivery of escalation step 1",
        "acknowledged",
        "breach.resolved",
    ]
    assert entries[1].lines == (
        "attempt 1: retry HTTP 503 in 12 ms: http_5xx",
        "attempt 2: delivered HTTP 200 in 8 ms",
    )
    assert entries[1].detail == "to hook: delivered"
    assert entries[2].detail.startswith("to pager: cancelled, due ")
    assert entries[3].detail == "by ana (key oncall-key) via console: on it"
    assert "vs target 99.9 %" in entries[0].detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "/console"),
        ("", "/console"),
        ("/console/breaches/x?y=1", "/console/breaches/x?y=1"),
        ("https://evil.example/console", "/console"),
        ("//evil.example", "/console"),
        ("/v1/breaches", "/console"),
        ("/console\\@evil", "/console"),
    ],
)
def test_sign_in_returns_only_to_console_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_the_policy_admits_only_the_nonce() -> None:
    policy = content_security_policy("n0nce")
    assert "script-src 'nonce-n0nce'" in policy
    assert "style-src 'nonce-n0nce'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (
            "agreement=acme-checkout\n\n customer = acme \n",
            {"agreement": "acme-checkout", "customer": "acme"},
        ),
        ("severity=page\nseverity=page", {"severity": "page"}),
        ("url=http://x/?a=b", {"url": "http://x/?a=b"}),
    ],
)
def test_parse_matchers(text: str, expected: dict[str, str]) -> None:
    assert parse_matchers(text) == expected
    assert parse_matchers(matchers_text(expected)) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("agreement", "line 1"), ("a=b\n=x", "line 2"), ("k=", "line 1"), ("k=a\nk=b", "twice")],
)
def test_bad_matchers_name_the_line(text: str, reason: str) -> None:
    with pytest.raises(BadMatchers, match=reason):
        parse_matchers(text)


def test_a_breach_silence_preview_mutes_its_series_only() -> None:
    views = [
        breach_view(row("a1", opened_at=T0 + 1), None),
        breach_view(row("a0", severity="ticket", opened_at=T0), None),
        breach_view(row("b", group={"customer": "bob"}), None),
        breach_view(row("gone", status="resolved"), None),
    ]
    match = breach_matchers(views[0])
    assert match == {"agreement": "acme-checkout", "objective": "availability", "customer": "acme"}
    assert [v.id for v in muted_now(match, views)] == ["a1", "a0"]
    assert [v.id for v in muted_now({"party": "shopco", "severity": "ticket"}, views)] == ["a0"]
    assert [v.id for v in muted_now({}, views)] == ["b", "a1", "a0"]  # the Now order
    assert muted_now({"customer": "nobody"}, views) == []


def test_the_party_filter_takes_provider_or_consumer() -> None:
    view = breach_view(row("a"), None)
    assert Filters(party="shopco").admits(view) and Filters(party="acme").admits(view)
    assert not Filters(party="other").admits(view)
    assert Filters.parse({"party": "acme"}) == Filters(party="acme")
