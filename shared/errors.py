"""The one error root of slawatch.

SlawatchError
├── ConfigError          settings or definitions that cannot work
├── InfrastructureError  broker or database could not be started or reached
└── (per package: services/*/exceptions.py)
"""


class SlawatchError(Exception):
    """Base of every error slawatch raises on purpose."""


class ConfigError(SlawatchError):
    """Settings or definitions that cannot work."""


class InfrastructureError(SlawatchError):
    """The broker or the database could not be started or reached."""
