"""Body bytes + Content-Type → items or a whole-request problem."""

from __future__ import annotations

import pytest

from services.ingest.items import Decoded, Item, Rejected
from services.ingest.parsing import check_encoding, media_type, parse_body
from services.ingest.problems import Problem

OBJ = b'{"service":"checkout","type":"request"}'


def summary(result: list[Item] | Problem) -> object:
    """A compact view: the problem's (status, reason), or per item (index, kind)."""
    if isinstance(result, Problem):
        return (result.status, result.reason)
    return [(item.index, "ok" if isinstance(item, Decoded) else item.reason) for item in result]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        pytest.param(OBJ, "application/json", [(0, "ok")], id="one-object"),
        pytest.param(OBJ, "application/json; charset=utf-8", [(0, "ok")], id="charset"),
        pytest.param(OBJ, "Application/JSON", [(0, "ok")], id="case-insensitive"),
        pytest.param(
            b"[" + OBJ + b"," + OBJ + b"]", "application/json", [(0, "ok"), (1, "ok")], id="array"
        ),
        pytest.param(
            b"[" + OBJ + b", 5, null]",
            "application/json",
            [(0, "ok"), (1, "not_an_object"), (2, "not_an_object")],
            id="array-scalars",
        ),
        pytest.param(b"[]", "application/json", (400, "empty_body"), id="empty-array"),
        pytest.param(b"", "application/json", (400, "empty_body"), id="empty-body"),
        pytest.param(b"  \n", "application/json", (400, "empty_body"), id="blank-body"),
        pytest.param(b'{"service":', "application/json", (400, "invalid_body"), id="bad-json"),
        pytest.param(b'"text"', "application/json", (400, "invalid_body"), id="top-level-string"),
        pytest.param(b"\xff\xfe", "application/json", (400, "invalid_body"), id="not-utf8"),
        pytest.param(
            b"[" + b",".join([OBJ] * 4) + b"]",
            "application/json",
            (413, "too_many_items"),
            id="array-too-many",
        ),
        pytest.param(
            OBJ + b"\n\n" + OBJ + b"\r\n",
            "application/x-ndjson",
            [(0, "ok"), (2, "ok")],
            id="ndjson-blank-lines",
        ),
        pytest.param(
            b"{bad\n" + OBJ + b"\n[1]",
            "application/jsonl",
            [(0, "invalid_json"), (1, "ok"), (2, "not_an_object")],
            id="ndjson-bad-lines",
        ),
        pytest.param(b"\n\n", "application/x-ndjson", (400, "empty_body"), id="ndjson-empty"),
        pytest.param(
            b"\n".join([OBJ] * 4),
            "application/x-ndjson",
            (413, "too_many_items"),
            id="ndjson-too-many",
        ),
        pytest.param(
            b"\n".join([OBJ] * 3),
            "application/x-ndjson",
            [(0, "ok"), (1, "ok"), (2, "ok")],
            id="ndjson-at-limit",
        ),
        pytest.param(OBJ, "text/plain", (415, "unsupported_media_type"), id="text-plain"),
        pytest.param(
            OBJ,
            "application/x-www-form-urlencoded",
            (415, "unsupported_media_type"),
            id="curl-default",
        ),
        pytest.param(OBJ, None, (415, "unsupported_media_type"), id="no-content-type"),
    ],
)
def test_parse_body(body: bytes, content_type: str | None, expected: object) -> None:
    assert summary(parse_body(body, content_type, max_items=3)) == expected


def test_bad_ndjson_line_names_its_line() -> None:
    result = parse_body(OBJ + b"\n{oops}\n", "application/x-ndjson", max_items=10)
    assert isinstance(result, list)
    bad = result[1]
    assert isinstance(bad, Rejected)
    assert bad.index == 1
    assert bad.errors[0].field is None
    assert "not valid JSON" in bad.errors[0].message


def test_unsupported_media_type_lists_accepted_types() -> None:
    problem = parse_body(OBJ, "text/csv", max_items=10)
    assert isinstance(problem, Problem)
    assert "'text/csv'" in problem.detail
    assert "application/json" in problem.detail
    assert "application/x-ndjson" in problem.detail


def test_decoded_item_keeps_the_object() -> None:
    result = parse_body(OBJ, "application/json", max_items=1)
    assert result == [Decoded(0, {"service": "checkout", "type": "request"})]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ""),
        ("", ""),
        ("application/json", "application/json"),
        (" Application/X-NDJSON ; charset=utf-8", "application/x-ndjson"),
    ],
)
def test_media_type(header: str | None, expected: str) -> None:
    assert media_type(header) == expected


@pytest.mark.parametrize(
    ("coding", "ok"),
    [(None, True), ("identity", True), ("gzip", True), (" X-GZIP", True), ("br", False)],
)
def test_content_encoding(coding: str | None, ok: bool) -> None:
    problem = check_encoding(coding)
    assert (problem is None) is ok
    if problem is not None:
        assert problem.status == 415
