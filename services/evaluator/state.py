"""One partition's evaluator state, and its versioned snapshot (orjson bytes).

Snapshot layout, version 1::

    {"v": 1,
     "max_time": <newest event time seen in the partition, or null>,
     "seen": [[<event time>, <event id>], ...],     (optional: the dedup set)
     "objectives": {"<agreement>/<objective>": <the shard's own dump>, ...}}

On restore, the state of an objective that no longer exists is dropped, and so is
the state of one whose window changed shape (it restarts empty); both are logged.
An unknown version or a malformed envelope raises :class:`StateFormatError`: losing
state silently would publish wrong SLIs.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from services.evaluator.exceptions import StateFormatError
from services.evaluator.objectives.base import CompiledObjective, Shard

log = logging.getLogger(__name__)

STATE_VERSION = 1


class SeenIds:
    """Event ids seen within the dedup horizon (event time), in arrival order.

    ``forget_before(cutoff)`` drops ids from the front of the arrival order while
    their event time is before ``cutoff``; an out-of-order early id behind a newer one
    is kept a little longer, never shorter, than the horizon. Memory: about 120 bytes
    per id held (dict entry, deque entry, the id string), i.e. events per second x
    horizon; 10 minutes at 1,000 events/s per partition is about 70 MB.
    """

    __slots__ = ("order", "times")

    def __init__(self) -> None:
        self.times: dict[str, int] = {}
        self.order: deque[tuple[int, str]] = deque()

    def __len__(self) -> int:
        return len(self.times)

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.times

    def add(self, event_id: str, time_ms: int) -> None:
        self.times[event_id] = time_ms
        self.order.append((time_ms, event_id))

    def forget_before(self, cutoff: int) -> None:
        order, times = self.order, self.times
        while order and order[0][0] < cutoff:
            time_ms, event_id = order.popleft()
            if times.get(event_id) == time_ms:
                del times[event_id]

    def dump(self) -> list[tuple[int, str]]:
        """``[(time, id), ...]`` in arrival order (orjson writes tuples as arrays)."""
        return list(self.order)

    @classmethod
    def load(cls, data: list[list[object]]) -> SeenIds:
        seen = cls()
        for time_ms, event_id in data:
            if not isinstance(event_id, str) or not isinstance(time_ms, int):
                raise StateFormatError("malformed dedup entry")
            seen.add(event_id, time_ms)
        return seen


@dataclass
class PartitionState:
    """Everything the evaluator keeps for one partition of the events topic: the
    newest event time, the ids seen within the dedup horizon and every shard."""

    max_time: int | None = None
    shards: dict[str, Shard] = field(default_factory=dict)
    seen: SeenIds = field(default_factory=SeenIds)


def encode(state: PartitionState) -> bytes:
    """The snapshot of ``state``."""
    return orjson.dumps(
        {
            "v": STATE_VERSION,
            "max_time": state.max_time,
            "seen": state.seen.dump(),
            "objectives": {oid: shard.dump() for oid, shard in state.shards.items()},
        }
    )


def decode(data: bytes, objectives: Mapping[str, CompiledObjective]) -> PartitionState:
    """Restore a snapshot against the objectives compiled now.

    The cyclic garbage collector is paused meanwhile: restoring allocates millions of
    small objects and none of them is garbage, so collections would only rescan them
    (more than half of the restore time for 100,000 groups).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _decode(data, objectives)
    finally:
        if enabled:
            gc.enable()


def _decode(data: bytes, objectives: Mapping[str, CompiledObjective]) -> PartitionState:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StateFormatError(f"snapshot is not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("v") != STATE_VERSION:
        version = body.get("v") if isinstance(body, dict) else None
        raise StateFormatError(f"unknown snapshot version {version!r}")
    max_time = body.get("max_time")
    stored = body.get("objectives")
    if not (max_time is None or isinstance(max_time, int)) or not isinstance(stored, dict):
        raise StateFormatError("malformed snapshot envelope")
    seen = body.get("seen", [])
    if not isinstance(seen, list):
        raise StateFormatError("malformed dedup set")
    state = PartitionState(max_time=max_time, seen=SeenIds.load(seen))
    for oid, shard_data in stored.items():
        compiled = objectives.get(oid)
        if compiled is None:
            log.warning("dropping state of removed objective", extra={"objective": oid})
            continue
        try:
            state.shards[oid] = compiled.load_shard(shard_data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "objective state does not fit its definition; restarting it empty",
                extra={"objective": oid, "error": str(exc)},
            )
    return state
