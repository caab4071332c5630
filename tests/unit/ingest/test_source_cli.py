"""``slawatch source test``: the mapping's verdict per sample record, error by error."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main
from services.ingest.source_cli import read_samples

DEFS = """\
apiVersion: slawatch/v1
kind: Source
metadata: {name: shop-orders}
spec: {topics: [shop.orders],
       mapping: {service: $.app, time: $.ts, outcome: status < 500, value: $.latency_ms}}
"""


@pytest.fixture
def defs(tmp_path: Path) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(DEFS)
    return path


def run(defs: Path, sample: Path, name: str = "shop-orders") -> int:
    return main(["source", "test", "--source", name, "--sample", str(sample), "--defs", str(defs)])


def test_reports_each_record_and_every_error(
    defs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = tmp_path / "sample.ndjson"
    sample.write_text(
        '{"app": "checkout", "ts": 1795870800, "status": 200, "latency_ms": 80}\n'
        "\n"
        '{"app": 7, "status": "x"}\n'
        "not json\n"
    )
    assert run(defs, sample) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('record 0: event {"id":')
    assert '"service":"checkout","type":"request","time":1795870800000,"outcome":"good"' in out[0]
    assert out[1:] == [
        "record 2: rejected (4 error(s))",
        "  - wrong_type: service: $.app is number, expected string",
        "  - missing_field: time: $.ts missing",
        "  - wrong_type: outcome: 'status < 500': cannot compare string < number",
        "  - missing_field: value: $.latency_ms missing",
        "record 3: rejected (1 error(s))",
        "  - invalid_json: not valid JSON: invalid literal, expected 'null': "
        "line 1 column 1 (char 0)",
        "source shop-orders: 3 record(s), 1 event(s), 2 rejected",
    ]


def test_all_good_exits_zero(defs: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample.json"
    sample.write_text('[{"app": "checkout", "ts": 1795870800, "status": 1, "latency_ms": 1}]')
    assert run(defs, sample) == 0


def test_unknown_source(defs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "s.ndjson"
    sample.write_text("{}\n")
    assert run(defs, sample, "nope") == 1
    assert "no Source named 'nope'" in capsys.readouterr().out


def test_samples_as_array_or_lines(tmp_path: Path) -> None:
    array = tmp_path / "a.json"
    array.write_text('[{"a": 1}, 2]')
    assert read_samples(array) == [(0, b'{"a":1}'), (1, b"2")]
    lines = tmp_path / "b.ndjson"
    lines.write_text('{"a": 1}\n\n[1')
    assert read_samples(lines) == [(0, b'{"a": 1}'), (2, b"[1")]
