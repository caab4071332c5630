"""One partition's evaluator state, and its versioned snapshot (orjson bytes).

Snapshot layout, version 2::

    {"v": 2,
     "max_time": <newest event time seen in the partition, or null>,
     "clocks": {"<service>": <newest event time of that service>, ...},
     "objectives": {"<agreement>/<objective>": <the shard's own dump>, ...},
     "fingerprints": {"<agreement>/<objective>": [<fingerprint>, <measure fingerprint>]}}

Version 1 (before event time was kept per service) has no ``"clocks"``: it is read
with none, so each service's clock starts again from its next event (or the wall
clock on an idle tick), and its partition-wide ``max_time`` keeps the dedup horizon.

Restoring clamps event time to ``max_time_ms`` (the engine passes its wall clock plus
the future skew): a snapshot taken before future events were refused may hold a
``max_time`` an hour or a year ahead, which would make every following event late.
The clamped ``max_time`` and clocks are logged; a shard whose own clock is past the
bound has been advanced into that future (its windows emptied, its timers fired
early) and restarts empty, its open breaches resolved (:attr:`PartitionState.
resolutions`).

Restoring under definitions that changed meanwhile (a restart with other
definitions, or a crash between a hot reload and the checkpoint after it) follows the
hot reload's plan as far as it can without the rollups: same definition → loaded;
same measurement → carried; anything else → restarted empty, its open breaches
resolved (:attr:`PartitionState.resolutions`, published by the consumer; built with
the new definition, so only where the old state still loads under it).

The ids seen within the dedup horizon are not in the snapshot: they are stored in
slices next to it (:class:`SeenIds`), so a checkpoint writes only the new ones.
Snapshots written before that carry them as ``"seen": [[<event time>, <id>], ...]``;
those are read into one slice.

On restore, the state of an objective that no longer exists is dropped, and so is
the state of one whose window changed shape (it restarts empty); both are logged.
An unknown version or a malformed envelope raises :class:`StateFormatError`: losing
state silently would publish wrong SLIs.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from services.evaluator.exceptions import StateFormatError
from services.evaluator.objectives.base import CompiledObjective, Shard
from shared.schemas import Breach

log = logging.getLogger(__name__)

STATE_VERSION = 2
#: Versions :func:`decode` reads (1: one event-time clock per partition, no ``clocks``).
READABLE_VERSIONS = frozenset({1, 2})
#: An open dedup slice spans at most 1/60 of the horizon in event time (10 s of the
#: default 10 minutes; see :class:`SeenIds`).
SLICES_PER_HORIZON = 60


class Slice:
    """Ids that arrived while the partition's newest event time was at most ``bound``.

    ``saved``: already written to PostgreSQL (a slice is written once, when sealed).
    """

    __slots__ = ("bound", "ids", "saved")

    def __init__(self, bound: int, ids: list[str], saved: bool = False) -> None:
        self.bound = bound
        self.ids = ids
        self.saved = saved


class SeenIds:
    """Event ids seen within the dedup horizon (event time), in slices of arrival.

    ``ids`` maps each held id to its :class:`Slice`. New ids go into the open slice,
    which is sealed when the newest event time moves a 60th of the horizon past the
    slice's start, and when a checkpoint takes it (:meth:`take_unsaved`). Every id of
    a sealed slice has an event time at most its ``bound``, so once ``bound`` is
    behind ``newest - horizon`` the whole slice is forgotten: an id is held at least
    the horizon, and at most about one slice (a 60th of it) longer.

    Persistence is incremental: each sealed slice is written once next to its
    partition's checkpoint and deleted once expired, so a checkpoint writes only the
    ids that arrived since the previous one (:class:`~services.evaluator.checkpoint.
    CheckpointStore`). Memory: about 50 bytes per id held (dict entry, list slot)
    plus the id string, i.e. proportional to events per second x horizon.
    """

    __slots__ = ("due", "ids", "open", "open_since", "sealed")

    def __init__(self) -> None:
        self.ids: dict[str, Slice] = {}
        self.sealed: deque[Slice] = deque()
        self.open = Slice(0, [])
        self.open_since: int | None = None
        #: The newest event time from which :meth:`newest` has work (seal or expire):
        #: the engine calls it only then.
        self.due = 0

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.ids

    def add(self, event_id: str) -> None:
        self.ids[event_id] = self.open
        self.open.ids.append(event_id)

    def newest(self, time_ms: int, previous: int | None, horizon_ms: int) -> None:
        """The partition's newest event time moved from ``previous`` to ``time_ms``."""
        width = max(1, horizon_ms // SLICES_PER_HORIZON)
        if self.open_since is None:
            self.open_since = time_ms
        elif time_ms - self.open_since >= width and previous is not None:
            self.seal(previous)
            self.open_since = time_ms
        cutoff = time_ms - horizon_ms
        sealed = self.sealed
        while sealed and sealed[0].bound < cutoff:
            expired = sealed.popleft()
            ids = self.ids
            for event_id in expired.ids:
                if ids.get(event_id) is expired:
                    del ids[event_id]
        due = self.open_since + width
        if sealed:
            due = min(due, sealed[0].bound + horizon_ms + 1)
        self.due = due

    def seal(self, bound: int) -> None:
        """Close the open slice (ids of event time ≤ ``bound``); a new one opens."""
        if self.open.ids:
            self.open.bound = bound
            self.sealed.append(self.open)
            self.open = Slice(0, [])

    def unsaved(self, bound: int | None) -> list[Slice]:
        """Seal the open slice and return the slices not written yet (the caller marks
        them ``saved`` once they are)."""
        if bound is not None:
            self.seal(bound)
        return [s for s in self.sealed if not s.saved]

    def oldest_bound(self) -> int | None:
        """The bound of the oldest slice held: stored slices older than it have expired."""
        return self.sealed[0].bound if self.sealed else None

    def restore(self, slices: Iterable[tuple[int, list[str]]], *, saved: bool = True) -> None:
        """Add slices ``(bound, ids)``: stored ones (``saved``), or ones the next
        checkpoint must write (ids of a snapshot from before slices existed)."""
        pieces = sorted(
            (Slice(bound, list(ids), saved=saved) for bound, ids in slices),
            key=lambda piece: piece.bound,
        )
        held = self.ids
        for piece in pieces:
            for event_id in piece.ids:
                current = held.get(event_id)
                if current is None or current.bound <= piece.bound:
                    held[event_id] = piece  # the newest slice holding it decides expiry
        self.sealed = deque(sorted([*self.sealed, *pieces], key=lambda piece: piece.bound))
        self.due = 0  # let the next newer event expire what the horizon has passed


@dataclass
class PartitionState:
    """Everything the evaluator keeps for one partition of the events topic: the
    newest event time (the dedup horizon's reference), the newest event time of each
    service with objectives (its watermark's), the ids seen within the dedup horizon
    and every shard."""

    max_time: int | None = None
    clocks: dict[str, int] = field(default_factory=dict)
    shards: dict[str, Shard] = field(default_factory=dict)
    seen: SeenIds = field(default_factory=SeenIds)
    #: ``breach.resolved`` of breaches whose rule changed while the state was stored.
    resolutions: list[Breach] = field(default_factory=list)


def encode(state: PartitionState, objectives: Mapping[str, CompiledObjective]) -> bytes:
    """The snapshot of ``state``, with what each objective was when it was taken."""
    return orjson.dumps(
        {
            "v": STATE_VERSION,
            "max_time": state.max_time,
            "clocks": state.clocks,
            "objectives": {oid: shard.dump() for oid, shard in state.shards.items()},
            "fingerprints": {
                oid: [objectives[oid].fingerprint, objectives[oid].measure_fingerprint]
                for oid in state.shards
                if oid in objectives
            },
        }
    )


def decode(
    data: bytes,
    objectives: Mapping[str, CompiledObjective],
    *,
    max_time_ms: int | None = None,
) -> PartitionState:
    """Restore a snapshot against the objectives compiled now; event time past
    ``max_time_ms`` (if given) is clamped to it (see the module docstring).

    The cyclic garbage collector is paused meanwhile: restoring allocates millions of
    small objects and none of them is garbage, so collections would only rescan them
    (more than half of the restore time for 100,000 groups).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _decode(data, objectives, max_time_ms)
    finally:
        if enabled:
            gc.enable()


def _decode(
    data: bytes, objectives: Mapping[str, CompiledObjective], max_time_ms: int | None
) -> PartitionState:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateFormatError(f"snapshot is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("v") not in READABLE_VERSIONS:
        version = body.get("v") if isinstance(body, dict) else None
        raise StateFormatError(f"unknown snapshot version {version!r}")
    max_time = body.get("max_time")
    stored = body.get("objectives")
    if not (max_time is None or isinstance(max_time, int)) or not isinstance(stored, dict):
        raise StateFormatError("malformed snapshot envelope")
    clocks = body.get("clocks", {})  # version 1: none
    if not isinstance(clocks, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in clocks.items()
    ):
        raise StateFormatError("malformed service clocks")
    seen = body.get("seen", [])
    if not isinstance(seen, list):
        raise StateFormatError("malformed dedup set")
    # Shards advance only to event times the partition saw: unless its newest one is
    # past the bound, none of them is (and the restore skips walking their groups).
    poisoned = max_time_ms is not None and max_time is not None and max_time > max_time_ms
    max_time, clocks = _clamped(max_time, clocks, max_time_ms)
    state = PartitionState(max_time=max_time, clocks=clocks)
    if seen:
        legacy = (max(_legacy_time(e) for e in seen), [_legacy_id(e) for e in seen])
        state.seen.restore([legacy], saved=False)  # stored nowhere else yet
    fingerprints = body.get("fingerprints", {})
    if not isinstance(fingerprints, dict):
        raise StateFormatError("malformed fingerprints")
    for oid, shard_data in stored.items():
        compiled = objectives.get(oid)
        if compiled is None:
            log.warning("dropping state of removed objective", extra={"objective": oid})
            continue
        try:
            shard = compiled.load_shard(shard_data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "objective state does not fit its definition; restarting it empty",
                extra={"objective": oid, "error": str(exc)},
            )
            continue
        if poisoned and max_time_ms is not None and _ahead(shard, max_time_ms):
            log.warning(
                "objective state was advanced past now + the future skew (a far-future "
                "event before they were refused); restarting it empty",
                extra={"objective": oid, "bound": max_time_ms},
            )
            state.resolutions.extend(shard.resolutions())
        elif _still_measures(fingerprints.get(oid), compiled):
            state.shards[oid] = shard
        else:
            log.warning(
                "objective changed while its state was stored; restarting it empty",
                extra={"objective": oid},
            )
            state.resolutions.extend(shard.resolutions())
    return state


def _clamped(
    max_time: int | None, clocks: dict[str, int], bound: int | None
) -> tuple[int | None, dict[str, int]]:
    """``max_time`` and the service clocks, none past ``bound`` (logged when one was)."""
    if bound is None:
        return max_time, clocks
    ahead = {s: t for s, t in clocks.items() if t > bound}
    if (max_time is not None and max_time > bound) or ahead:
        log.warning(
            "snapshot event time past now + the future skew; clamped",
            extra={"max_time": max_time, "clocks_ahead": ahead, "bound": bound},
        )
    if max_time is not None:
        max_time = min(max_time, bound)
    return max_time, {s: min(t, bound) for s, t in clocks.items()}


def _ahead(shard: Shard, bound: int) -> bool:
    """Whether any group of the shard has its clock past ``bound``."""
    return any(s.clock is not None and s.clock > bound for s in shard.status())


def _still_measures(stored: object, compiled: CompiledObjective) -> bool:
    """Whether state taken under ``stored`` fingerprints counts what ``compiled``
    counts (snapshots without fingerprints are trusted, as before they existed)."""
    if not (isinstance(stored, list) and len(stored) == 2):
        return True
    fingerprint, measure = stored
    if fingerprint == compiled.fingerprint:
        return True
    return bool(measure) and measure == compiled.measure_fingerprint


def _legacy_time(entry: object) -> int:
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)):
        raise StateFormatError("malformed dedup entry")
    return entry[0]


def _legacy_id(entry: list[object]) -> str:
    if not isinstance(entry[1], str):
        raise StateFormatError("malformed dedup entry")
    return entry[1]
