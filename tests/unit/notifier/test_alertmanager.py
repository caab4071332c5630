"""Push to the real Prometheus Alertmanager (Debian ``prometheus-alertmanager``),
started by the test on a free loopback port with its own config and storage."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.notifier.channels.alertmanager import AlertmanagerChannel
from services.notifier.message import simple
from services.notifier.secrets import Secrets
from services.notifier.templates import Renderer
from shared.timeutil import wall_clock_ms
from tests.unit.notifier.support import make_breach, unused_port
from tests.unit.notifier.test_channel_conformance import receiver

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="prometheus-alertmanager not installed (apt install it; CI does)"
)

CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


@pytest.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[str]:
    assert BINARY is not None
    (tmp_path / "am.yml").write_text(CONFIG)
    port = unused_port()
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client, asyncio.timeout(20):
            while True:  # a foreign process: its readiness can only be polled
                try:
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, "alertmanager exited"
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def test_pushed_breach_is_an_alert_then_resolves(alertmanager: str) -> None:
    now = wall_clock_ms()
    breach = make_breach(at=now, opened_at=now - 60_000, detected_at=now)
    target = receiver("am", {"type": "alertmanager", "url": alertmanager})
    async with httpx.AsyncClient() as http:
        channel = AlertmanagerChannel(
            http, timeout_ms=5_000, secrets=Secrets({}), renderer=Renderer()
        )
        result = await channel.deliver(simple(breach), target)
        assert result.status_code == 200
        alerts = (await http.get(f"{alertmanager}/api/v2/alerts")).json()
        [alert] = alerts
        assert alert["labels"] == {
            "alertname": "SLABreach",
            "agreement": "acme-checkout",
            "objective": "availability",
            "service": "checkout",
            "severity": "page",
            "breach_id": breach.id,
            "customer": "acme",
        }
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["summary"].startswith("[PAGE] SLA breach: acme-checkout")
        assert "status_url" in alert["annotations"]
        assert alert["startsAt"].startswith(breach_time(breach.opened_at))

        resolved = breach.model_copy(
            update={"kind": "breach.resolved", "at": now, "resolved_at": now}
        )
        await channel.deliver(simple(resolved), target)
        active = (await http.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"})).json()
        everything = (
            await http.get(
                f"{alertmanager}/api/v2/alerts",
                params={"active": "true", "inhibited": "true", "silenced": "true",
                        "unprocessed": "true"},
            )
        ).json()  # fmt: skip
    assert active == []
    assert [a["labels"]["breach_id"] for a in everything] in ([], [breach.id])


def breach_time(ms: int) -> str:
    from shared.timeutil import to_rfc3339

    return to_rfc3339(ms)[:19]
