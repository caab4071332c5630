"""Definitions as code: YAML documents (``apiVersion: slawatch/v1``, ``kind``,
``metadata``, ``spec``), validated, stored in PostgreSQL, read by the services."""
