"""Secret references (``env:NAME``, ``file:/path``) resolved at delivery time.

The environment mapping is passed in by ``main`` (the only other reader of the
environment besides the settings module, because secrets must not be frozen into the
settings object at start: a rotated file is picked up by the next delivery). Values
are never logged; errors name the reference, not the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from services.notifier.exceptions import NotifierError


class SecretUnavailable(NotifierError):
    """A reference that cannot be resolved right now (unset variable, unreadable file)."""


class Secrets:
    """Resolves references against an environment mapping and the file system."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def resolve(self, reference: str) -> str:
        if reference.startswith("env:"):
            name = reference[4:]
            value = self._environ.get(name)
            if value is None:
                raise SecretUnavailable(f"environment variable {name} is not set")
            return value
        if reference.startswith("file:"):
            path = Path(reference[5:])
            try:
                return path.read_text().rstrip("\r\n")
            except OSError as exc:
                raise SecretUnavailable(f"cannot read secret file {path}: {exc.strerror}") from None
        raise SecretUnavailable("not a secret reference (use env:NAME or file:/path)")

    def url(self, value: str) -> str:
        """A plain ``http(s)://`` URL as is, a reference resolved."""
        return value if value.startswith(("http://", "https://")) else self.resolve(value)
