"""The 202 / 422 / 503 decision and the per-item results."""

from __future__ import annotations

from services.ingest.items import FieldError, Rejected
from services.ingest.problems import Problem
from services.ingest.results import IngestResponse, Published, decide
from shared.schemas import Event


def event(i: int) -> Event:
    return Event(id=f"e{i}", service="s", type="t", time=1_700_000_000_000 + i)


BAD = Rejected(1, "invalid_event", (FieldError("time", "invalid"),))


def test_all_invalid_is_422_with_every_error() -> None:
    decision = decide([BAD], [])
    assert isinstance(decision, Problem)
    assert decision.status == 422
    assert [(e.index, e.field) for e in decision.errors] == [(1, "time")]


def test_mixed_batch_is_202_with_results_in_item_order() -> None:
    decision = decide([BAD], [Published(2, event(2), None), Published(0, event(0), None)])
    assert decision == {
        "accepted": 2,
        "rejected": 1,
        "failed": 0,
        "results": [
            {"index": 0, "status": "accepted", "id": "e0"},
            {"index": 1, "status": "rejected", "errors": [{"field": "time", "message": "invalid"}]},
            {"index": 2, "status": "accepted", "id": "e2"},
        ],
    }
    IngestResponse.model_validate(decision)


def test_unacknowledged_event_is_reported_failed() -> None:
    decision = decide(
        [], [Published(0, event(0), None), Published(1, event(1), "KafkaTimeoutError")]
    )
    assert isinstance(decision, dict)
    assert (decision["accepted"], decision["failed"]) == (1, 1)
    failed = decision["results"][1]
    assert failed["status"] == "failed"
    assert failed["id"] == "e1"
    assert "KafkaTimeoutError" in failed["errors"][0]["message"]
    IngestResponse.model_validate(decision)


def test_nothing_acknowledged_is_503() -> None:
    decision = decide([BAD], [Published(0, event(0), "down")])
    assert isinstance(decision, Problem)
    assert decision.status == 503
    assert [e.index for e in decision.errors] == [0, 1]
