"""docs/webhooks.md's commands run as written: the ``verify()`` example with the
arguments the code requires, and the demo receiver with ``--secret`` verifying a real
signed delivery."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from pathlib import Path

import httpx

from services.notifier.channels.webhook.signature import format_secret, signed_headers

ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS = ROOT / "docs" / "webhooks.md"
KEY = bytes(range(32))


def block(doc: Path, marker: str) -> str:
    """The fenced block right after ``<!-- marker -->``."""
    found = re.search(
        rf"<!-- {re.escape(marker)} -->\n```\w+\n(.*?)```", doc.read_text(), re.DOTALL
    )
    assert found is not None, f"{doc.name} lost its {marker!r} block"
    return found.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_verify_example_runs_with_the_required_arguments() -> None:
    body = b'{"breach_id": "b-1"}'
    headers = signed_headers(KEY, "msg-1", int(time.time()), body)
    scope: dict[str, object] = {"secret": format_secret(KEY), "body": body, "headers": headers}
    exec(block(WEBHOOKS, "verify example"), scope)  # the documentation's own code
    verified = scope["verified"]
    assert getattr(verified, "id", None) == "msg-1"


async def test_receiver_command_verifies_as_documented(tmp_path: Path) -> None:
    (command,) = [
        line.split("#")[0].split()
        for line in block(WEBHOOKS, "receiver with secret").splitlines()
        if line.strip()
    ]
    assert command[:2] == [".venv/bin/slawatch", "receiver"]
    port = free_port()
    argv = [str(ROOT / command[0]), *command[1:]]
    argv[argv.index("--port") + 1] = str(port)  # the documented 9000 may be taken here
    secrets = tmp_path / ".slawatch" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "ops-hook").write_text(format_secret(KEY))
    (secrets / "ops-hook").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    child = await asyncio.create_subprocess_exec(
        *argv,
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert child.stdout is not None
        first = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
        assert "verifying Standard Webhooks signatures" in first, first
        body = b'{"hello": 1}'
        async with httpx.AsyncClient() as http:
            good = await http.post(
                f"http://127.0.0.1:{port}/hook",
                content=body,
                headers=signed_headers(KEY, "msg-7", int(time.time()), body),
            )
            forged = await http.post(
                f"http://127.0.0.1:{port}/hook",
                content=body,
                headers=signed_headers(bytes(32), "msg-8", int(time.time()), body),
            )
        assert forged.status_code == 401
        assert good.status_code != 401
        seen = ""
        while "rejected /hook" not in seen:
            seen += (await asyncio.wait_for(child.stdout.readline(), 30)).decode()
        assert "verified msg-7" in seen
    finally:
        child.terminate()
        await child.wait()
