"""The on-call console, served by the notifier under ``/console`` (docs/console.md).

- :mod:`.session`: session cookies and CSRF tokens (pure);
- :mod:`.views`: what the pages show, from stored rows (pure);
- :mod:`.routes`: the routes, the sign-in check (:class:`.routes.ConsoleRequire`) and
  :func:`.routes.mount_console`;
- ``templates/``: Jinja2 pages (autoescaped), style and script inline.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.api import Lifecycle
from services.notifier.console.routes import ConsoleConfig, mount_console
from services.notifier.console.session import SessionCodec, derive_secret

__all__ = ["ConsoleConfig", "console_config", "mount_console"]


def console_config(
    sessions: async_sessionmaker[AsyncSession],
    life: Lifecycle,
    signing_key: bytes,
    public_url: str,
) -> ConsoleConfig:
    """The console of a notifier whose signing key (the ack-link key) and public URL
    are given: cookies are ``Secure`` when the public URL is https."""
    return ConsoleConfig(
        sessions=sessions,
        life=life,
        codec=SessionCodec(derive_secret(signing_key)),
        secure_cookies=public_url.lower().startswith("https://"),
    )
