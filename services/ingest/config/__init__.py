"""The configuration REST API under ``/v1/``: one resource per definition kind.

Built from :data:`shared.definitions.model.KINDS`, so every registered kind gets
list, get, create, replace, delete, validate and versions with no further code.
See :mod:`services.ingest.config.routes`.
"""

from services.ingest.config.routes import config_router, resource_name

__all__ = ["config_router", "resource_name"]
