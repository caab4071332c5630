"""RFC 9457 problem details: shape and content type."""

from __future__ import annotations

import orjson

from services.ingest import problems
from services.ingest.items import FieldError, Rejected


def test_problem_body_has_rfc9457_members_and_errors() -> None:
    rejections = [
        Rejected(3, "invalid_event", (FieldError("time", "bad"), FieldError("value", "nan"))),
        Rejected(0, "not_an_object", (FieldError(None, "expected a JSON object, got number"),)),
    ]
    body = problems.invalid_events(rejections).body()
    assert body == {
        "type": "urn:slawatch:problem:invalid-events",
        "title": "No valid event",
        "status": 422,
        "detail": "every event in the request was rejected; see errors",
        "errors": [
            {"index": 0, "field": None, "message": "expected a JSON object, got number"},
            {"index": 3, "field": "time", "message": "bad"},
            {"index": 3, "field": "value", "message": "nan"},
        ],
    }


def test_response_is_problem_json_with_status() -> None:
    response = problems.response(problems.too_many_items(10))
    assert response.status_code == 413
    assert response.media_type == "application/problem+json"
    assert response.headers["content-type"] == "application/problem+json"
    body = orjson.loads(bytes(response.body))
    assert body["type"] == "urn:slawatch:problem:too-many-items"
    assert body["status"] == 413
    assert "10" in body["detail"]
    assert body["errors"] == []


def test_every_request_reason_has_a_distinct_type() -> None:
    built = [
        problems.invalid_body("x"),
        problems.empty_body(),
        problems.body_too_large(1),
        problems.too_many_items(1),
        problems.unsupported_media_type("x"),
        problems.invalid_events([]),
        problems.unavailable([]),
        problems.overloaded("x"),
        problems.shutting_down(),
        problems.not_found("x"),
        problems.invalid_query("x", "y"),
    ]
    assert sorted(p.reason for p in built) == sorted(problems.REQUEST_REASONS)
    assert len({p.type for p in built}) == len(built)
    assert {p.status for p in built} == {400, 404, 413, 415, 422, 503}
