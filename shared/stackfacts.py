"""Where the local stack is: the connection facts ``slawatch up`` leaves in its data directory.

``slawatch up`` writes ``<data_dir>/stack.json`` once every service is ready and
removes it when it begins to stop. The file is mode 0600 from its first byte. It holds
no secret: the database URL is stored without its password, which stays in a key
file of its own (the embedded server's ``pgdata.password``, or ``database.password``
for a URL given with one) that this file names. Content (``version`` 1)::

    {"version": 1, "pid": 4242, "process_start": "981234",
     "database_url": "postgresql://postgres@127.0.0.1:15432/postgres",
     "database_password_file": "/abs/path/.slawatch/pgdata.password",
     "kafka_bootstrap": "127.0.0.1:19092",
     "services": {"ingest": "http://127.0.0.1:8080", "evaluator": "...", "notifier": "..."},
     "admin_key_file": "/abs/path/.slawatch/admin.key",
     "outbound_allow": "127.0.0.1/32, ::1/128"}

The other commands (:func:`locate`) fill every setting the environment left unset
from it, so a second terminal needs no exports. A file left behind by an ``up`` that
was killed is *stale*: its pid no longer runs, or now runs another process (the
process start time, from ``/proc``, differs). A stale file is never used — the
command fails at once with one line naming the setting to set — so it cannot make a
command wait on a server that is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from shared.embedded import EMBEDDED_DATA_DIR_NAME, password_file
from shared.errors import ConfigError
from shared.settings import Settings

FILE_NAME = "stack.json"
VERSION = 1
SERVICES = ("ingest", "evaluator", "notifier")
#: What a user does to get a stack that writes the file.
START_HINT = "start the local stack with `make run`"

#: pid -> an identity of the process running under it (its start time), ``""`` when
#: the system has no way to tell, ``None`` when no process has that pid.
ProcessProbe = Callable[[int], str | None]


class FactsInvalid(ConfigError):
    """``stack.json`` exists but cannot be read as facts."""


def facts_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field
    22): with the pid it names one process, so a reused pid is told apart. ``""`` where
    ``/proc`` is missing but the pid exists; ``None`` when nothing runs under it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # /proc works here, so the pid is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return ""  # exists, another user's
        return ""
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


_probe_default: ProcessProbe = process_start


@dataclass(frozen=True)
class StackFacts:
    """How to reach a running local stack, and which process runs it."""

    pid: int
    process_start: str
    database_url: str
    kafka_bootstrap: str
    services: Mapping[str, str] = field(default_factory=dict)
    admin_key_file: str = ""
    #: the stack's notifier's outbound allow list: what a Receiver applied to it may name
    outbound_allow: str = ""
    #: the file holding the database URL's password ("" for a URL without one)
    database_password_file: str = ""

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "version": VERSION,
                    "pid": self.pid,
                    "process_start": self.process_start,
                    "database_url": self.database_url,
                    "database_password_file": self.database_password_file,
                    "kafka_bootstrap": self.kafka_bootstrap,
                    "services": dict(self.services),
                    "admin_key_file": self.admin_key_file,
                    "outbound_allow": self.outbound_allow,
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str, where: Path) -> StackFacts:
        """Parse; :class:`FactsInvalid` names the file and what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FactsInvalid(f"{where} is not JSON ({exc.msg}); delete it") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise FactsInvalid(f"{where} is not a version {VERSION} stack file; delete it")
        try:
            services = data.get("services") or {}
            facts = cls(
                pid=int(data["pid"]),
                process_start=str(data.get("process_start") or ""),
                database_url=str(data["database_url"]),
                kafka_bootstrap=str(data["kafka_bootstrap"]),
                services={str(k): str(v) for k, v in dict(services).items()},
                admin_key_file=str(data.get("admin_key_file") or ""),
                outbound_allow=str(data.get("outbound_allow") or ""),
                database_password_file=str(data.get("database_password_file") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FactsInvalid(f"{where} lacks a valid {exc}; delete it") from None
        return facts

    def running(self, probe: ProcessProbe | None = None) -> bool:
        """Whether the ``slawatch up`` that wrote these facts still runs."""
        # (no default of process_start here: the field of that name shadows it)
        now = (probe or _probe_default)(self.pid)
        if now is None:
            return False
        return not self.process_start or not now or now == self.process_start


def current_process_facts(
    *,
    database_url: str,
    kafka_bootstrap: str,
    services: Mapping[str, str],
    admin_key_file: Path,
    data_dir: Path,
    outbound_allow: str = "",
    probe: ProcessProbe = process_start,
) -> StackFacts:
    """Facts naming this process as the stack's owner. A password in ``database_url``
    is moved to a key file beside the facts (see the module docstring)."""
    pid = os.getpid()
    url, password_file = split_password(database_url, data_dir)
    return StackFacts(
        pid=pid,
        process_start=probe(pid) or "",
        database_url=url,
        database_password_file=password_file,
        kafka_bootstrap=kafka_bootstrap,
        services=dict(services),
        admin_key_file=str(admin_key_file.absolute()),
        outbound_allow=outbound_allow,
    )


#: where a database password not already in a key file is kept while the stack runs
PASSWORD_FILE_NAME = "database.password"  # noqa: S105 (a file name)


def split_password(database_url: str, data_dir: Path) -> tuple[str, str]:
    """``database_url`` without its password, and the file that holds the password:
    the embedded server's own file when it holds this password, otherwise a new
    ``database.password`` (0600) in ``data_dir``."""
    if not database_url:
        return "", ""
    url = make_url(database_url)
    if url.password is None:
        return database_url, ""
    password = str(url.password)
    bare = url._replace(password=None).render_as_string(hide_password=False)
    embedded = password_file(data_dir / EMBEDDED_DATA_DIR_NAME)
    with contextlib.suppress(OSError):
        if embedded.read_text().strip() == password:
            return bare, str(embedded.absolute())
    kept = data_dir / PASSWORD_FILE_NAME
    _write_private(kept, password + "\n")
    return bare, str(kept.absolute())


def database_url(facts: StackFacts) -> str:
    """The facts' database URL with its password read back from its key file."""
    if not facts.database_password_file or not facts.database_url:
        return facts.database_url
    where = Path(facts.database_password_file)
    try:
        password = where.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the database password file {where} ({exc.strerror}); "
            "set SLAWATCH_DATABASE_URL"
        ) from None
    return make_url(facts.database_url).set(password=password).render_as_string(hide_password=False)


def write(path: Path, facts: StackFacts) -> None:
    """Replace ``path`` with ``facts``, 0600 from the first byte (a temporary file made
    by mkstemp, which is 0600, renamed over it), so no reader sees half a file."""
    _write_private(path, facts.to_json())


def _write_private(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove(path: Path, pid: int | None = None) -> None:
    """Delete ``path`` if it names ``pid`` (default: this process): a second ``up``
    that failed to start must not delete the file of the one that runs."""
    pid = os.getpid() if pid is None else pid
    try:
        facts = StackFacts.from_json(path.read_text(), path)
    except (FactsInvalid, OSError):  # gone already, or not ours to judge
        return
    if facts.pid == pid:
        path.unlink(missing_ok=True)
        if Path(facts.database_password_file).name == PASSWORD_FILE_NAME:
            Path(facts.database_password_file).unlink(missing_ok=True)


@dataclass(frozen=True)
class Found:
    """What :func:`find` saw in the data directory: usable facts, or why there are none."""

    path: Path
    facts: StackFacts | None = None
    #: a file was there and is not used (stale): why, for the error line
    stale: str | None = None


def find(data_dir: Path, probe: ProcessProbe = process_start) -> Found:
    """The facts of a running stack in ``data_dir``; a stale or missing file gives none.
    Raises :class:`FactsInvalid` for a file that is there but unreadable as facts."""
    path = facts_path(data_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Found(path)
    except OSError as exc:
        raise FactsInvalid(f"cannot read {path}: {exc.strerror or exc}") from None
    facts = StackFacts.from_json(text, path)
    if not facts.running(probe):
        return Found(
            path, stale=f"{path} is stale: the stack that wrote it (pid {facts.pid}) stopped"
        )
    return Found(path, facts)


def with_facts(settings: Settings, facts: StackFacts) -> Settings:
    """``settings`` with what the environment left unset taken from ``facts``: the
    database URL, the broker, the services' host and ports, and the outbound allow list
    (a Receiver the stack's notifier may reach is one ``apply`` accepts)."""
    update: dict[str, object] = {}
    if not settings.database_url:
        update["database_url"] = database_url(facts)
    if not settings.kafka_bootstrap:
        update["kafka_bootstrap"] = facts.kafka_bootstrap
    explicit = settings.model_fields_set
    if facts.outbound_allow and "outbound_allow" not in explicit:
        update["outbound_allow"] = facts.outbound_allow
    for name in SERVICES:
        url = facts.services.get(name)
        if not url:
            continue
        parts = urlsplit(url)
        if parts.port is not None and f"{name}_port" not in explicit:
            update[f"{name}_port"] = parts.port
        if parts.hostname and "host" not in explicit:
            update["host"] = parts.hostname
    return settings.model_copy(update=update) if update else settings


def missing(setting: str, found: Found) -> str:
    """The one line for a command that needs ``setting`` (an env name) it did not get."""
    if found.stale:
        return f"{found.stale}; {START_HINT}, or set {setting}"
    return (
        f"{setting} is not set and no local stack is running ({START_HINT}; it leaves {found.path})"
    )


@dataclass(frozen=True)
class Located:
    """The settings a command runs with, and what :func:`locate` found for them."""

    settings: Settings
    found: Found

    def require_database(self) -> str:
        """The database URL, or :class:`~shared.errors.ConfigError` with one line."""
        if not self.settings.database_url:
            raise ConfigError(missing("SLAWATCH_DATABASE_URL", self.found))
        return self.settings.database_url

    def require_kafka(self) -> str:
        if not self.settings.kafka_bootstrap:
            raise ConfigError(missing("SLAWATCH_KAFKA_BOOTSTRAP", self.found))
        return self.settings.kafka_bootstrap

    def service_url(self, name: str) -> str:
        """Base URL of ``ingest``, ``evaluator`` or ``notifier`` (the facts' host and
        ports unless the environment sets them)."""
        port = getattr(self.settings, f"{name}_port")
        return f"http://{self.settings.host}:{port}"

    def admin_key_file(self) -> Path:
        """The stack's admin key file (``<data_dir>/admin.key`` without facts)."""
        facts = self.found.facts
        if facts is not None and facts.admin_key_file:
            return Path(facts.admin_key_file)
        return self.settings.data_dir / "admin.key"


def locate(settings: Settings, probe: ProcessProbe = process_start) -> Located:
    """Settings completed from a running stack's facts (see the module docstring)."""
    found = find(settings.data_dir, probe)
    if found.facts is None:
        return Located(settings, found)
    return Located(with_facts(settings, found.facts), found)
