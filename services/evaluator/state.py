"""One partition's evaluator state, and its versioned snapshot (orjson bytes).

Snapshot layout, version 1::

    {"v": 1,
     "max_time": <newest event time seen in the partition, or null>,
     "objectives": {"<agreement>/<objective>": <the shard's own dump>, ...}}

On restore, the state of an objective that no longer exists is dropped, and so is
the state of one whose window changed shape (it restarts empty); both are logged.
An unknown version or a malformed envelope raises :class:`StateFormatError`: losing
state silently would publish wrong SLIs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from services.evaluator.exceptions import StateFormatError
from services.evaluator.objectives.base import CompiledObjective, Shard

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class PartitionState:
    """Everything the evaluator keeps for one partition of the events topic.

    Room for later: a bounded set of recent event ids for duplicate suppression
    belongs here, so that it moves with the partition too.
    """

    max_time: int | None = None
    shards: dict[str, Shard] = field(default_factory=dict)


def encode(state: PartitionState) -> bytes:
    """The snapshot of ``state``."""
    return orjson.dumps(
        {
            "v": STATE_VERSION,
            "max_time": state.max_time,
            "objectives": {oid: shard.dump() for oid, shard in state.shards.items()},
        }
    )


def decode(data: bytes, objectives: Mapping[str, CompiledObjective]) -> PartitionState:
    """Restore a snapshot against the objectives compiled now."""
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
    state = PartitionState(max_time=max_time)
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
