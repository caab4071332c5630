"""The whole stack on one machine: what ``slawatch up`` runs and the end-to-end tests use.

Start order: embedded broker and PostgreSQL (only those not configured), migrations,
topics, definitions, then ingest, evaluator and notifier as separate processes,
each waited for on ``/readyz``. Stop order is the reverse; every child dies with
this process even when it is killed (see shared.embedded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared import db
from shared.definitions.load import load_paths
from shared.definitions.store import Applied, apply
from shared.embedded import ChildProcess, EmbeddedInfra, embedded_infra, port_open, spawn
from shared.errors import InfrastructureError
from shared.settings import Settings
from shared.topics import ensure_topics

log = logging.getLogger(__name__)

SERVICES = ("ingest", "evaluator", "notifier")


@dataclass
class Stack:
    """A running stack: the effective settings, the service processes, their URLs."""

    settings: Settings
    infra: EmbeddedInfra
    services: dict[str, ChildProcess] = field(default_factory=dict)
    applied: list[Applied] = field(default_factory=list)

    def url(self, service: str) -> str:
        port = getattr(self.settings, f"{service}_port")
        return f"http://{self.settings.host}:{port}"

    def dead(self) -> list[str]:
        return [name for name, child in self.services.items() if not child.running()]

    def stop_services(self) -> dict[str, int]:
        codes: dict[str, int] = {}
        for name, child in reversed(list(self.services.items())):
            codes[name] = child.stop(grace_s=self.settings.shutdown_grace_s + 2)
        return codes


async def prepare(settings: Settings, definitions: list[Path]) -> list[Applied]:
    """Schema, topics and definitions: idempotent, so every start runs it."""
    assert settings.database_url is not None
    await db.migrate(settings.database_url)
    await ensure_topics(settings)
    if not definitions:
        return []
    documents = load_paths(definitions)
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            return await apply(session, documents)
    finally:
        await engine.dispose()


def service_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"SLAWATCH_{name.upper()}"] = str(value)
    return env


def wait_ready(stack: Stack, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(stack.services)
    with httpx.Client(timeout=1.0) as client:
        while pending:
            if dead := stack.dead():
                raise InfrastructureError(
                    f"{', '.join(dead)} exited during start; see {stack.settings.data_dir / 'logs'}"
                )
            name = pending[0]
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{stack.url(name)}/readyz").status_code == 200:
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise InfrastructureError(f"{name} not ready within {timeout_s:.0f} s")
            time.sleep(0.1)


def default_definitions(settings: Settings) -> list[Path]:
    if settings.definitions_path is not None:
        return [settings.definitions_path]
    examples = Path("examples")
    return [examples] if examples.is_dir() else []


@contextlib.contextmanager
def running_stack(settings: Settings, definitions: list[Path] | None = None) -> Iterator[Stack]:
    """Start everything; stop everything on exit, even after a failed start."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        port = getattr(settings, f"{service}_port")
        if port_open(settings.host, port):
            raise InfrastructureError(
                f"port {port} for {service} is in use; set SLAWATCH_{service.upper()}_PORT"
            )
    with embedded_infra(
        need_kafka=not settings.kafka_bootstrap,
        need_postgres=not settings.database_url,
        data_dir=settings.data_dir,
        kafka_port=settings.embedded_kafka_port,
        postgres_port=settings.embedded_postgres_port,
    ) as infra:
        effective = settings.model_copy(
            update={
                "kafka_bootstrap": settings.kafka_bootstrap or infra.kafka_bootstrap,
                "database_url": settings.database_url or infra.database_url,
            }
        )
        stack = Stack(effective, infra)
        stack.applied = asyncio.run(
            prepare(
                effective, default_definitions(settings) if definitions is None else definitions
            )
        )
        env = service_env(effective)
        try:
            for service in SERVICES:
                stack.services[service] = spawn(
                    service,
                    [sys.executable, "-m", "services.cli", service],
                    log_file=effective.data_dir / "logs" / f"{service}.log",
                    env=env,
                )
            wait_ready(stack)
            yield stack
        finally:
            stack.stop_services()
