"""Which secret references a receiver may carry (pure, but for :func:`contained_file`).

A reference is resolved by the notifier with its own environment and file system, so
an unrestricted one lets whoever writes configuration send any environment variable
(the database URL, cloud credentials) or any readable file to a host of their choice.
Two rules close that:

- ``env:NAME`` only for names matching :attr:`SecretRules.env_patterns` (glob, case
  sensitive; default ``SLAWATCH_SECRET_*``, setting ``SLAWATCH_SECRET_ENV_PATTERN``,
  comma separated for several); slawatch's own settings that match the default
  pattern (:data:`NEVER`) are refused all the same;
- ``file:PATH`` only for a file under :attr:`SecretRules.secrets_dir`
  (``SLAWATCH_SECRETS_DIR``, default ``<data_dir>/secrets``): ``file:name`` is
  relative to it, ``file:/abs/path`` must lie inside it. ``..`` and ``.`` components,
  ``//``, ``~``, backslashes and NUL bytes are refused outright (each is a way some
  layer reads a path differently), and at resolution the real path (symlinks
  followed) must still lie inside the directory's real path, so a symlink placed in
  the directory cannot point out of it (a Kubernetes secret volume's ``..data``
  links stay inside and work).

:func:`reference_problem` runs at creation (``Receiver.checks``) and again, through
``services.notifier.secrets``, at every resolution.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

DEFAULT_ENV_PATTERN = "SLAWATCH_SECRET_*"
NEVER = frozenset({"SLAWATCH_SECRET_KEY", "SLAWATCH_SECRET_ENV_PATTERN"})
"""Settings of slawatch itself whose names the default pattern would match."""

_ENV_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class SecretRefDenied(ValueError):
    """A reference the rules refuse (the message says why, never a value)."""


@dataclass(frozen=True)
class SecretRules:
    """The allowed environment names and the secrets directory."""

    env_patterns: tuple[str, ...] = (DEFAULT_ENV_PATTERN,)
    secrets_dir: Path = Path(".slawatch/secrets")

    @classmethod
    def of(cls, env_pattern: str, secrets_dir: Path) -> SecretRules:
        patterns = tuple(p.strip() for p in env_pattern.split(",") if p.strip())
        return cls(patterns or (DEFAULT_ENV_PATTERN,), secrets_dir)


def _env_problem(name: str, rules: SecretRules) -> str | None:
    if not name or name[0].isdigit() or not set(name) <= _ENV_NAME_CHARS:
        return f"{name!r} is not an environment variable name"
    if name in NEVER or not any(fnmatchcase(name, p) for p in rules.env_patterns):
        allowed = ", ".join(rules.env_patterns)
        return (
            f"environment variable {name} may not be referenced: only names matching "
            f"{allowed} (SLAWATCH_SECRET_ENV_PATTERN) are, e.g. env:SLAWATCH_SECRET_{name}"
        )
    return None


def file_path(text: str, rules: SecretRules) -> Path:
    """The path ``file:<text>`` names, checked lexically; raises :class:`SecretRefDenied`."""
    where = f"secret files live under {rules.secrets_dir} (SLAWATCH_SECRETS_DIR)"
    if not text:
        raise SecretRefDenied(f"empty file reference: {where}")
    for bad, what in (("\x00", "a NUL byte"), ("\\", "a backslash"), ("//", "'//'")):
        if bad in text:
            raise SecretRefDenied(f"the path contains {what}: {where}")
    if text.startswith("~"):
        raise SecretRefDenied(f"'~' is not expanded: {where}")
    parts = text.split("/")
    if any(p in (".", "..") for p in parts):
        raise SecretRefDenied(f"the path may not contain '.' or '..': {where}")
    base = Path(os.path.abspath(rules.secrets_dir))
    path = Path(text) if text.startswith("/") else base / text
    if not path.is_relative_to(base) or path == base:
        raise SecretRefDenied(f"{text} is outside the secrets directory: {where}")
    return path


def reference_problem(reference: str, rules: SecretRules) -> str | None:
    """Why ``reference`` may not be used, or ``None`` (lexical checks only)."""
    if reference.startswith("env:"):
        return _env_problem(reference[4:], rules)
    if reference.startswith("file:"):
        try:
            file_path(reference[5:], rules)
        except SecretRefDenied as exc:
            return str(exc)
        return None
    return "not a secret reference (use env:NAME or file:PATH)"


def contained_file(text: str, rules: SecretRules) -> Path:
    """The real path of ``file:<text>`` (symlinks followed), which must lie inside the
    secrets directory's real path; raises :class:`SecretRefDenied`. Reads the file
    system (the only I/O here), so the notifier calls it at each resolution."""
    path = file_path(text, rules)
    real_base = Path(os.path.realpath(rules.secrets_dir))
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(real_base) or real == real_base:
        raise SecretRefDenied(
            f"{text} leads outside the secrets directory {rules.secrets_dir} (a symlink?)"
        )
    return real
