"""Secret references (``env:NAME``, ``file:PATH``) resolved at delivery time.

The environment mapping is passed in by ``main`` (the only other reader of the
environment besides the settings module, because secrets must not be frozen into the
settings object at start: a rotated file is picked up by the next delivery). Values
are never logged; errors name the reference, not the value.

Every resolution applies :mod:`shared.secret_refs` again (a receiver stored before the
rules, or rules narrowed since, must not read what they refuse): ``env:`` names must
match the allowed patterns, ``file:`` paths must lie in the secrets directory with
symlinks followed, and the file is opened without following a last symlink, so it
cannot be swapped for one between the check and the read.

    NotifierError
    ├── SecretUnavailable   may appear later (unset variable, missing file): retriable
    └── SecretRefused       the rules refuse the reference: a config error, not retriable
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from services.notifier.exceptions import NotifierError
from shared.secret_refs import (
    SecretRefDenied,
    SecretRules,
    contained_file,
    reference_problem,
)


class SecretUnavailable(NotifierError):
    """A reference that cannot be resolved right now (unset variable, unreadable file)."""


class SecretRefused(NotifierError):
    """A reference the secret rules refuse (outside the allowed names or directory)."""


MAX_SECRET_BYTES = 64 * 1024


class Secrets:
    """Resolves references against an environment mapping and the secrets directory."""

    def __init__(self, environ: Mapping[str, str], rules: SecretRules | None = None) -> None:
        self._environ = environ
        self._rules = rules or SecretRules()

    def resolve(self, reference: str) -> str:
        problem = reference_problem(reference, self._rules)
        if problem is not None:
            raise SecretRefused(problem)
        if reference.startswith("env:"):
            name = reference[4:]
            value = self._environ.get(name)
            if value is None:
                raise SecretUnavailable(f"environment variable {name} is not set")
            return value
        return self._read(reference[5:])

    def _read(self, text: str) -> str:
        try:
            path = contained_file(text, self._rules)
        except SecretRefDenied as exc:
            raise SecretRefused(str(exc)) from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                data = f.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SecretUnavailable(f"cannot read secret file {text}: {exc.strerror}") from None
        if len(data) > MAX_SECRET_BYTES:
            raise SecretRefused(f"secret file {text} is larger than {MAX_SECRET_BYTES} bytes")
        return data.decode("utf-8", errors="replace").rstrip("\r\n")

    def url(self, value: str) -> str:
        """A plain ``http(s)://`` URL as is, a reference resolved."""
        return value if value.startswith(("http://", "https://")) else self.resolve(value)
