"""Settings read from the environment: the limits of ingest and the evaluator."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import Settings

LIMITS = {
    "SLAWATCH_EVALUATOR_MAX_GROUPS": ("evaluator_max_groups", "25", 25),
    "SLAWATCH_EVALUATOR_MAX_OPEN_ENTITIES": ("evaluator_max_open_entities", "7", 7),
    "SLAWATCH_DEDUP_HORIZON_MS": ("dedup_horizon_ms", "60000", 60_000),
    "SLAWATCH_INGEST_MAX_INFLIGHT": ("ingest_max_inflight", "1000", 1_000),
    "SLAWATCH_INGEST_PUBLISH_TIMEOUT_S": ("ingest_publish_timeout_s", "2.5", 2.5),
    "SLAWATCH_INGEST_OVERLOAD_COOLDOWN_MS": ("ingest_overload_cooldown_ms", "0", 0),
    "SLAWATCH_INGEST_DEDUP_CAPACITY": ("ingest_dedup_capacity", "10", 10),
    "SLAWATCH_INGEST_DEDUP_HORIZON_MS": ("ingest_dedup_horizon_ms", "1000", 1_000),
}


def test_defaults() -> None:
    s = Settings()
    assert (s.evaluator_max_groups, s.evaluator_max_open_entities) == (10_000, 100_000)
    assert s.dedup_horizon_ms == 600_000
    assert (s.ingest_max_inflight, s.ingest_publish_timeout_s) == (50_000, 10.0)
    assert (s.ingest_dedup_capacity, s.ingest_dedup_horizon_ms) == (100_000, 300_000)
    assert s.ingest_overload_cooldown_ms == 1_000


def test_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, (_, text, _) in LIMITS.items():
        monkeypatch.setenv(variable, text)
    s = Settings()
    assert {field: getattr(s, field) for field, _, _ in LIMITS.values()} == {
        field: value for field, _, value in LIMITS.values()
    }


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("SLAWATCH_EVALUATOR_MAX_GROUPS", "0"),
        ("SLAWATCH_EVALUATOR_MAX_OPEN_ENTITIES", "-1"),
        ("SLAWATCH_EVALUATOR_MAX_OPEN_ENTITIES", "many"),
        ("SLAWATCH_DEDUP_HORIZON_MS", "0"),
        ("SLAWATCH_INGEST_MAX_INFLIGHT", "0"),
        ("SLAWATCH_INGEST_PUBLISH_TIMEOUT_S", "0"),
        ("SLAWATCH_INGEST_OVERLOAD_COOLDOWN_MS", "-1"),
        ("SLAWATCH_INGEST_DEDUP_CAPACITY", "0"),
        ("SLAWATCH_INGEST_DEDUP_HORIZON_MS", "1.5"),
    ],
)
def test_invalid_limits_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, text: str
) -> None:
    monkeypatch.setenv(variable, text)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert raised.value.errors()[0]["loc"] == (variable.removeprefix("SLAWATCH_").lower(),)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.evaluator_max_groups = 1  # type: ignore[misc]


def test_dedup_horizon_must_cover_the_allowed_lateness() -> None:
    with pytest.raises(ValidationError, match="allowed_lateness_ms"):
        Settings(allowed_lateness_ms=60_000, dedup_horizon_ms=30_000)
    assert Settings(allowed_lateness_ms=60_000, dedup_horizon_ms=60_000).dedup_horizon_ms == 60_000
