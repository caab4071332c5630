"""The ``slawatch`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from shared import logs, stackfacts
from shared.definitions import cli as definitions_cli
from shared.definitions.kinds.receivers import ReceiverRules, use_rules
from shared.definitions.load import DefinitionsInvalid, load_paths
from shared.errors import ConfigError, SlawatchError
from shared.runtime import run_main
from shared.settings import Settings
from shared.stackfacts import Located

if TYPE_CHECKING:
    from services.stack import Stack

LOCAL_OUTBOUND_ALLOW = "127.0.0.1/32, ::1/128"


def _service(name: str, settings: Settings) -> int:
    logs.configure(name, settings.log_level)
    module = importlib.import_module(f"services.{name}.main")
    return run_main(lambda stop: module.run(settings, stop))


def _up(settings: Settings, _args: argparse.Namespace) -> int:
    from services.stack import running_stack

    logs.configure("up", settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print("slawatch: starting (the first start initialises the database)...", flush=True)
    with running_stack(settings, announce=_say) as stack:
        print(_banner(stack), flush=True)
        # Children that exit are restarted by the stack's supervisor; only a signal
        # stops the stack. (A timed wait: the signal handler runs between waits.)
        while not stop.wait(1.0):
            pass
        print(
            "\nslawatch: stopping: ingest first, then the evaluator and the notifier drain"
            " what it accepted...",
            flush=True,
        )
    print("slawatch: stopped", flush=True)
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _banner(stack: Stack) -> str:
    from shared.db import redacted_url  # the URL carries the embedded server's password

    s = stack.settings
    ingest, evaluator, notifier = (stack.url(n) for n in ("ingest", "evaluator", "notifier"))
    memory = (
        "\nThe embedded broker keeps events in memory only; a graceful stop (Ctrl-C) drains"
        " them first and loses nothing.\n"
        if stack.infra.kafka_bootstrap
        else ""
    )
    key_file = stack.admin_key_file
    key_text = (
        f"\nAn admin API key was created (shown once; also in {key_file}, mode 0600):\n"
        f"  {stack.admin_key}\n"
        if stack.admin_key_created
        else f"\nAdmin API key: in {key_file} (slawatch keys create makes narrower ones)\n"
    )
    return f"""
slawatch is up.
  ingest     {ingest}   (POST /v1/events, docs at /docs)
  evaluator  {evaluator}   (GET /v1/objectives/acme-checkout/availability/status)
  notifier   {notifier}   (GET /v1/breaches)
  kafka      {s.kafka_bootstrap}
  postgres   {redacted_url(s.database_url or "")}
  logs       {s.data_dir / "logs"}
{memory}
{key_text}
{_receiver_hint(stack)}
Send an event:
  KEY=$(cat {key_file})
  curl -s -XPOST {ingest}/v1/events -H "Authorization: Bearer $KEY" \\
    -H 'content-type: application/json' \\
    -d '{{"service":"checkout","type":"request","outcome":"bad"}}'

A service that exits is restarted. Ctrl-C stops everything.
"""


def command_path() -> str:
    """How to type ``slawatch`` here: the bare name when the shell finds this very
    script, else its path (``.venv/bin/slawatch`` from the checkout: a venv that was not
    activated is not on ``PATH``)."""
    script = Path(sys.argv[0])
    if script.name != "slawatch" or not script.exists():
        script = Path(sys.executable).parent / "slawatch"
    if not script.exists():
        return "slawatch"
    on_path = shutil.which("slawatch")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "slawatch"
    with contextlib.suppress(ValueError):
        return str(script.absolute().relative_to(Path.cwd()))
    return str(script.absolute())


def _receiver_hint(stack: Stack) -> str:
    from services.receiver import local_ports

    slawatch = command_path()
    targets = local_ports(stack.documents)
    if not targets:
        return (
            "No webhook Receiver posts to this machine; to watch one that does:\n"
            f"  {slawatch} receiver --port PORT"
        )
    lines = [
        f"  {slawatch} receiver --port {port}      (Receiver {name})"
        for name, port in dict.fromkeys(targets)
    ]
    return "Watch alerts arrive (in another terminal):\n" + "\n".join(lines)


def _validate(_settings: Settings, args: argparse.Namespace) -> int:
    try:
        documents = load_paths([Path(p) for p in args.paths])
    except DefinitionsInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    print(f"{len(documents)} document(s) valid")
    return 0


def _apply(settings: Settings, args: argparse.Namespace) -> int:
    from shared.definitions.cli import apply_command

    return apply_command(settings, args)


def _receiver(_settings: Settings, args: argparse.Namespace) -> int:
    import os

    from services import receiver

    # The environment only resolves an ``env:NAME`` --secret, as for a Receiver's secret.
    return receiver.main(args.port, args.host, args.secret, os.environ)


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from shared import db

    if not settings.database_url:  # main() says which setting; a direct caller gets this
        raise ConfigError("SLAWATCH_DATABASE_URL is not set")
    db.migrate_sync(settings.database_url)
    print("database schema is up to date")
    return 0


def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    from services.evaluator import backtest

    return backtest.main(args, settings)


def _source(settings: Settings, args: argparse.Namespace) -> int:
    from services.ingest import source_cli

    return source_cli.main(settings, args)


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from shared.apikeys import cli as keys_cli

    return keys_cli.main(settings, args)


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from services.notifier.reports import cli as report_cli

    return report_cli.main(settings, args)


def _breaches(settings: Settings, args: argparse.Namespace) -> int:
    from services.notifier import breaches_cli

    return breaches_cli.main(settings, args)


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from services import status_cli

    return status_cli.main(settings, args)


def _completion(_settings: Settings, args: argparse.Namespace) -> int:
    from services.completion import script

    print(script(args.shell, parser()), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="slawatch", description="SLA breach detection")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the whole stack locally (embedded broker/PostgreSQL if unset)")
    for name in ("ingest", "evaluator", "notifier"):
        sub.add_parser(name, help=f"run the {name} service")
    validate = sub.add_parser("validate", help="check definition files")
    validate.add_argument("paths", nargs="+")
    apply_cmd = sub.add_parser("apply", help="store definitions in the database")
    apply_cmd.add_argument("-f", "--file", action="append", required=True)
    apply_cmd.add_argument("--dry-run", action="store_true")
    definitions_cli.add_apply_options(apply_cmd)
    definitions_cli.add_commands(sub)
    recv = sub.add_parser("receiver", help="a local webhook receiver that prints alerts")
    recv.add_argument("--port", type=int, default=9000)
    recv.add_argument("--host", default="127.0.0.1")
    recv.add_argument(
        "--secret",
        help="verify Standard Webhooks signatures: a whsec_ secret, env:NAME or"
        " file:NAME (under SLAWATCH_SECRETS_DIR)",
    )
    sub.add_parser("migrate", help="apply database migrations")
    from services.evaluator.backtest import add_command as add_backtest

    add_backtest(sub)
    from services.ingest.source_cli import add_command as add_source

    add_source(sub)
    from services.notifier.reports.cli import add_command as add_report

    add_report(sub)
    from services.notifier.breaches_cli import add_command as add_breaches

    add_breaches(sub)
    from services.status_cli import add_command as add_status

    add_status(sub)
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh"))
    from shared.apikeys.cli import add_command as add_keys

    add_keys(sub)
    return root


COMMANDS: dict[str, definitions_cli.Handler] = {
    "up": _up,
    "validate": _validate,
    "apply": _apply,
    "receiver": _receiver,
    "migrate": _migrate,
    "backtest": _backtest,
    "source": _source,
    "report": _report,
    "breaches": _breaches,
    "status": _status,
    "completion": _completion,
    "keys": _keys,
    **definitions_cli.HANDLERS,
}


#: Commands that take what the environment leaves unset from a running local stack
#: (``<data_dir>/stack.json``, :mod:`shared.stackfacts`). Not ``up`` (it writes the
#: file) and not the services (a service is configured, never pointed at a stack by
#: a file left in the working directory). ``validate`` and ``backtest`` only take the
#: outbound allow list: a Receiver the local stack may reach is valid for them too.
USES_STACK = frozenset(
    {
        "apply",
        "migrate",
        "history",
        "report",
        "breaches",
        "status",
        "keys",
        "source",
        "validate",
        "backtest",
    }
)


def needs_database(args: argparse.Namespace) -> bool:
    """Whether this invocation cannot run without PostgreSQL."""
    if args.command == "source":
        return getattr(args, "defs", None) is None  # else the Source comes from files
    return args.command in {"apply", "migrate", "history", "report", "breaches", "status", "keys"}


def unreachable(error: BaseException) -> str | None:
    """One line for a failure to reach the database (refused, timed out, password or
    database refused), or ``None`` when ``error`` is something else."""
    import asyncpg

    from shared.reconnect import describe, is_transient

    todo: list[BaseException | None] = [error]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, asyncpg.PostgresError) and str(
            getattr(current, "sqlstate", "")
        ).startswith(("28", "3D")):
            return describe(current)  # authentication, or no such database
        todo.extend((current.__cause__, current.__context__, getattr(current, "orig", None)))
    return describe(error) if is_transient(error) else None


def _database_text(settings: Settings, located: Located) -> str:
    from shared.db import redacted_url

    origin = (
        f" (from {located.found.path})"
        if located.found.facts is not None
        and settings.database_url == located.found.facts.database_url
        else ""
    )
    return f"PostgreSQL at {redacted_url(settings.database_url or '')}{origin}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"slawatch: {_settings_problem(exc)}", file=sys.stderr)
        return 2
    if args.command == "up" and "outbound_allow" not in settings.model_fields_set:
        # The local profile delivers to receivers on this machine (the example's
        # `slawatch receiver`); everywhere else loopback is denied unless allowed.
        settings = settings.model_copy(update={"outbound_allow": LOCAL_OUTBOUND_ALLOW})
    located: Located | None = None
    try:
        if args.command in USES_STACK:
            located = stackfacts.locate(settings)
            settings = located.settings
        use_rules(ReceiverRules.from_settings(settings))  # what receivers written here may hold
        if args.command in ("ingest", "evaluator", "notifier"):
            return _service(args.command, settings)
        if located is not None and needs_database(args):
            located.require_database()
        return COMMANDS[args.command](settings, args)
    except SlawatchError as exc:
        print(f"slawatch: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        reason = unreachable(exc) if located is not None else None
        if reason is None or located is None:
            raise  # a bug: the traceback is what a report needs
        print(
            f"slawatch: cannot reach {_database_text(settings, located)}: {reason}", file=sys.stderr
        )
        return 2


def _settings_problem(exc: ValidationError) -> str:
    """One line per wrong setting, named as its environment variable."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(p) for p in error["loc"]).upper()
        parts.append(f"SLAWATCH_{name}: {error['msg']}" if name else error["msg"])
    return "; ".join(parts) or str(exc)


if __name__ == "__main__":
    sys.exit(main())
