"""Checkpoints in PostgreSQL: a partition's state snapshot and its next offset, together.

One call of :meth:`CheckpointStore.save` is one transaction over any number of
partitions (an upsert into ``evaluator_checkpoints``), so state and offset can never
disagree. The per-minute SLI rollups counted since the previous checkpoint are added
to ``evaluator_sli_rollups`` in the same transaction. The stored offset, not Kafka's
committed one, is the source of truth: on assignment the consumer restores the state
and seeks to it.

Each rollup row carries the rollup fingerprint of its objective (what it measured),
so a window rebuilt after a definition change (:meth:`CheckpointStore.load_rollups`)
reads only rows that counted the same events the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.evaluator.engine import DedupDelta, RebuildRequest, Rollup
from shared.logid import LogIdentity
from shared.models import Checkpoint, DedupSlice, SliRollup


@dataclass(frozen=True)
class StoredCheckpoint:
    """What was saved for one partition: state, next offset and the log that offset
    belongs to (None for checkpoints older than identities); on loading, with its
    stored dedup slices ``(bound, ids)``, oldest first."""

    state: bytes
    next_offset: int
    log: LogIdentity | None = None
    dedup: list[tuple[int, list[str]]] = field(default_factory=list)


_ROLLUP_UPSERT = text(
    """INSERT INTO evaluator_sli_rollups
         (objective_id, fingerprint, group_key, minute, "group", good, valid)
       VALUES (:objective_id, :fingerprint, :group_key, :minute, CAST(:group AS jsonb),
               :good, :valid)
       ON CONFLICT (objective_id, fingerprint, group_key, minute) DO UPDATE
       SET good = evaluator_sli_rollups.good + EXCLUDED.good,
           valid = evaluator_sli_rollups.valid + EXCLUDED.valid"""
)


def _rollup_rows(rollups: Sequence[Rollup]) -> list[dict[str, Any]]:
    """One parameter set per (objective, fingerprint, group, minute), counts merged
    (executemany)."""
    merged: dict[tuple[str, str, str, int], list[Any]] = {}
    for r in rollups:
        row = merged.setdefault(
            (r.objective_id, r.fingerprint, r.group_key, r.minute), [r.group, 0, 0]
        )
        row[1] += r.good
        row[2] += r.valid
    return [
        {
            "objective_id": oid,
            "fingerprint": fingerprint,
            "group_key": key,
            "minute": minute,
            "group": orjson.dumps(group).decode(),
            "good": good,
            "valid": valid,
        }
        for (oid, fingerprint, key, minute), (group, good, valid) in merged.items()
    ]


class CheckpointStore:
    """Checkpoints of one consumer group on one topic."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], consumer_group: str, topic: str
    ) -> None:
        self.sessions = sessions
        self.consumer_group = consumer_group
        self.topic = topic

    async def save(
        self,
        checkpoints: Mapping[int, StoredCheckpoint],
        rollups: Sequence[Rollup] = (),
        dedup: Mapping[int, DedupDelta] | None = None,
        rebased: Mapping[int, int] | None = None,
    ) -> None:
        """Upsert every partition's checkpoint, add the rollups and the new dedup slices
        and delete the expired ones, in one transaction.

        ``rebased`` maps a partition that moved to a new log (shared.logid) to the
        offset its previous checkpoint had in the old log: its slices that stood there
        are carried over to the new log, the others dropped (see :meth:`_rebase`).
        """
        if not checkpoints:
            return
        rows = [
            {
                "consumer_group": self.consumer_group,
                "topic": self.topic,
                "partition": partition,
                "next_offset": cp.next_offset,
                "state": cp.state,
                "log_identity": None if cp.log is None else cp.log.encode(),
            }
            for partition, cp in sorted(checkpoints.items())
        ]
        statement = insert(Checkpoint).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[Checkpoint.consumer_group, Checkpoint.topic, Checkpoint.partition],
            set_={
                "next_offset": statement.excluded.next_offset,
                "state": statement.excluded.state,
                "log_identity": statement.excluded.log_identity,
                "updated_at": func.now(),
            },
        )
        async with self.sessions.begin() as session:
            await session.execute(statement)
            for partition, old_offset in sorted((rebased or {}).items()):
                if partition in checkpoints:
                    await self._rebase(session, partition, old_offset)
            if rollups:
                await session.execute(_ROLLUP_UPSERT, _rollup_rows(rollups))
            for partition, delta in sorted((dedup or {}).items()):
                offset = checkpoints[partition].next_offset
                await self._save_dedup(session, partition, offset, delta)

    async def _rebase(self, session: AsyncSession, partition: int, old_offset: int) -> None:
        """A slice stands when it was written at or below the checkpoint's offset; in a
        new log offsets start again, so the slices that stood in the old one are
        re-tagged with offset 0 (standing at any offset) and the rest are deleted."""
        where = (
            DedupSlice.consumer_group == self.consumer_group,
            DedupSlice.topic == self.topic,
            DedupSlice.partition == partition,
        )
        await session.execute(delete(DedupSlice).where(*where, DedupSlice.next_offset > old_offset))
        await session.execute(update(DedupSlice).where(*where).values(next_offset=0))

    async def _save_dedup(
        self, session: AsyncSession, partition: int, next_offset: int, delta: DedupDelta
    ) -> None:
        if delta.expired_below is not None:
            await session.execute(
                delete(DedupSlice).where(
                    DedupSlice.consumer_group == self.consumer_group,
                    DedupSlice.topic == self.topic,
                    DedupSlice.partition == partition,
                    DedupSlice.bound < delta.expired_below,
                )
            )
        if delta.new:
            await session.execute(
                insert(DedupSlice),
                [
                    {
                        "consumer_group": self.consumer_group,
                        "topic": self.topic,
                        "partition": partition,
                        "bound": bound,
                        "next_offset": next_offset,
                        "ids": orjson.dumps(ids),
                    }
                    for bound, ids in delta.new
                ],
            )

    async def load(self, partitions: Iterable[int]) -> dict[int, StoredCheckpoint]:
        """The stored checkpoints of ``partitions`` (absent ones are left out)."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        query = select(
            Checkpoint.partition, Checkpoint.state, Checkpoint.next_offset, Checkpoint.log_identity
        ).where(
            Checkpoint.consumer_group == self.consumer_group,
            Checkpoint.topic == self.topic,
            Checkpoint.partition.in_(wanted),
        )
        slices = (
            select(DedupSlice.partition, DedupSlice.next_offset, DedupSlice.bound, DedupSlice.ids)
            .where(
                DedupSlice.consumer_group == self.consumer_group,
                DedupSlice.topic == self.topic,
                DedupSlice.partition.in_(wanted),
            )
            .order_by(DedupSlice.partition, DedupSlice.bound, DedupSlice.id)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
            stored = (await session.execute(slices)).all()
        offsets = {p: o for p, _, o, _ in rows}
        dedup: dict[int, list[tuple[int, list[str]]]] = {}
        for partition, written_at, bound, ids in stored:
            # A slice written with a checkpoint beyond the stored one did not stand (an
            # owner fenced out meanwhile): its ids may be of events still to be replayed.
            if written_at <= offsets.get(partition, -1):
                dedup.setdefault(partition, []).append((bound, orjson.loads(ids)))
        return {
            p: StoredCheckpoint(
                state=bytes(s),
                next_offset=o,
                log=LogIdentity.decode(log),
                dedup=dedup.get(p, []),
            )
            for p, s, o, log in rows
        }

    async def load_rollups(self, requests: Sequence[RebuildRequest]) -> dict[str, list[Rollup]]:
        """Per requested objective, its rollup rows under the requested fingerprint from
        minute ``since_ms`` on (every consumer group's: a group's rows come from the
        one partition that held it)."""
        out: dict[str, list[Rollup]] = {r.objective_id: [] for r in requests}
        wanted = [r for r in requests if r.since_ms is not None and r.fingerprint]
        if not wanted:
            return out
        async with self.sessions() as session:
            for request in wanted:
                query = select(
                    SliRollup.group_key,
                    SliRollup.minute,
                    SliRollup.group,
                    SliRollup.good,
                    SliRollup.valid,
                ).where(
                    SliRollup.objective_id == request.objective_id,
                    SliRollup.fingerprint == request.fingerprint,
                    SliRollup.minute >= request.since_ms,
                )
                out[request.objective_id] = [
                    Rollup(
                        request.objective_id,
                        key,
                        minute,
                        dict(group),
                        good,
                        valid,
                        request.fingerprint,
                    )
                    for key, minute, group, good, valid in await session.execute(query)
                ]
        return out
