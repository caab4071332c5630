"""Errors of the definition store.

SlawatchError
└── DefinitionStoreError
    ├── NotFound            no definition of that kind and name
    ├── AlreadyExists       create of a name that exists
    ├── VersionMismatch     If-Match / expected version is not the current one
    └── StillReferenced     delete of a document others refer to

Invalid documents raise :class:`shared.definitions.load.DefinitionsInvalid`.
"""

from __future__ import annotations

from shared.errors import SlawatchError


class DefinitionStoreError(SlawatchError):
    """Base of the store's refusals."""


class NotFound(DefinitionStoreError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"no {kind} named {name!r}")
        self.kind, self.name = kind, name


class AlreadyExists(DefinitionStoreError):
    def __init__(self, kind: str, name: str, version: int) -> None:
        super().__init__(f"{kind} {name!r} exists (version {version}); replace it instead")
        self.kind, self.name, self.version = kind, name, version


class VersionMismatch(DefinitionStoreError):
    def __init__(self, kind: str, name: str, expected: int | None, current: int | None) -> None:
        now = "absent" if current is None else f"at version {current}"
        super().__init__(
            f"{kind} {name!r} is {now}, not version {expected}: someone else changed it; "
            "read it again and reapply your change"
        )
        self.expected, self.current = expected, current


class StillReferenced(DefinitionStoreError):
    def __init__(self, kind: str, name: str, referrers: list[str]) -> None:
        super().__init__(f"{kind} {name!r} is referred to by {', '.join(referrers)}")
        self.referrers = referrers
