"""The evaluation engine: routes events to compiled objectives, per partition.

Pure: no Kafka, no database; the wall clock is injected (``clock``; the compiled
objectives hold the one that stamps ``detected_at``). The shell owns the I/O:

* :meth:`Engine.assign` / :meth:`Engine.revoke` follow the consumer's partitions;
  state lives per partition so it moves with it (:mod:`.state` snapshots it);
* :meth:`Engine.process` handles one event of one partition. Event time is kept per
  (partition, service): a service's watermark is ``its newest event time - allowed
  lateness``, and an event older than its service's watermark is *late*: nothing is
  counted and the caller dead-letters it. One producer's clock (a service stamping
  an hour ahead) thus never makes another service's events late;
* events past ``clock() + max_future_skew_ms`` are *future*: refused like late ones
  (the caller dead-letters them, reason ``future``) and they move no clock, so no
  snapshot can hold one (ingest refuses them first; this covers whatever else
  writes to the events topic, and snapshots from before: :func:`.state.decode`
  clamps restored event time to the same bound);
* :meth:`Engine.tick` lets event time pass up to each service's watermark for every
  group of that service's objectives, so quiet groups expire old buckets and ``for``
  timers fire even when only other groups receive events. Ticking to the watermark
  (never beyond) keeps results independent of when ticks happen: no event that is
  still accepted can be older than a time already ticked to. When the partition has
  nothing unread (idle, or caught up with its log end), the shell passes the wall
  clock: a *live* service (watermark within :data:`LIVE_GAP_MS` of ``now - allowed
  lateness``) then moves its watermark to ``now - allowed lateness``, so deadlines
  and freshness fire and windows drain on a quiet stream. Timers are stamped with
  their own due instants, so the breach ids stay those of a replay. A service far
  behind the wall clock (a backfill, historical test data) is never moved by the
  wall clock. The price: an event that reaches the evaluator more than the allowed
  lateness after its event time, while its partition is caught up, is late, as it
  would be behind newer events.

Freshness "no data" (see :mod:`.objectives.freshness`): a freshness objective's
clock starts when it becomes active in the partition its service's events go to
(the engine knows ``events_partitions``): on assignment without state for it and
when a reload adds or restarts it, at ``clock()``, for its ungrouped group or each
of its ``expectedGroups``, so a service that never sends breaches after the silence.

Duplicates: an event whose ``id`` was seen in the same partition within the dedup
horizon (default 10 minutes of event time, behind the partition's newest event time,
any service) is counted once; the repeat is reported as ``duplicate`` and changes
nothing. Ids are keyed per partition, which suffices because events are partitioned
by service and an objective selects one service. So that every accepted event's
repeat is recognised, an event more than ``max(dedup horizon, allowed lateness)``
behind the partition's newest event time is late too: with the future bound under
the horizon (defaults: 5 min skew, 10 min horizon) that never touches a service
whose events are current. The seen ids are stored in slices beside the snapshot,
each written once (:meth:`Engine.dedup_delta`), so dedup holds across restarts and
rebalances while a checkpoint writes only the ids new since the last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka.partitioner import murmur2

from services.evaluator import rebuild
from services.evaluator.objectives import rollup_fingerprint_of
from services.evaluator.objectives.base import CompiledObjective, EventLike, GroupStatus
from services.evaluator.objectives.freshness import CompiledFreshness, FreshnessShard
from services.evaluator.objectives.ratio import CompiledRatio
from services.evaluator.state import PartitionState, Slice, decode, encode
from shared.schemas import Breach
from shared.timeutil import Clock

DEDUP_HORIZON_MS = 600_000
LIVE_GAP_MS = 86_400_000
#: Above every event time the event model accepts: no future bound without a clock.
_NO_BOUND = 1 << 63


def home_partition(service: str, partitions: int) -> int:
    """The events partition of ``service``: what Kafka's default partitioner (and
    ingest, which keys by service) chooses among ``partitions``."""
    return (int(murmur2(service.encode())) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class Rollup:
    """Good and valid events of one (objective, group) in one minute of event time,
    counted under the rollup ``fingerprint`` of the objective (what it measured: see
    :func:`~services.evaluator.objectives.rollup_fingerprint`)."""

    objective_id: str
    group_key: str
    minute: int
    group: dict[str, str]
    good: int
    valid: int
    fingerprint: str = ""


@dataclass(frozen=True)
class RebuildRequest:
    """The rollups a reload needs to rebuild one objective: rows of ``objective_id``
    counted under ``fingerprint``, from minute ``since_ms`` on (``None``: no group of
    it in the owned partitions, nothing to read)."""

    objective_id: str
    fingerprint: str
    since_ms: int | None


class Processed:
    """What one event caused (a plain slotted class: one is built per event, except
    the common "counted, nothing happened" results, which are shared: read only)."""

    __slots__ = ("breaches", "duplicate", "future_by_ms", "late_by_ms", "matched")

    def __init__(
        self,
        breaches: list[Breach] | None = None,
        late_by_ms: int | None = None,
        matched: int = 0,
        duplicate: bool = False,
        future_by_ms: int | None = None,
    ) -> None:
        self.breaches: list[Breach] = breaches if breaches is not None else []
        self.late_by_ms = late_by_ms
        self.matched = matched
        self.duplicate = duplicate
        #: How far past ``now + max_future_skew_ms`` a refused future event was.
        self.future_by_ms = future_by_ms

    @property
    def late(self) -> bool:
        return self.late_by_ms is not None


#: The results of events that matched 0, 1, ... objectives and caused nothing.
_QUIET = tuple(Processed(breaches=[], matched=n) for n in range(8))
_DUPLICATE = Processed(breaches=[], duplicate=True)


@dataclass(frozen=True)
class DedupDelta:
    """What a checkpoint writes of a partition's dedup ids: the slices not stored yet,
    and ``expired_below``: stored slices whose bound is under it are past the horizon
    (``None``: nothing has expired)."""

    slices: list[Slice]
    expired_below: int | None

    @property
    def new(self) -> list[tuple[int, list[str]]]:
        return [(piece.bound, piece.ids) for piece in self.slices]

    def stored(self) -> None:
        """The checkpoint holding these slices is committed: never write them again."""
        for piece in self.slices:
            piece.saved = True


@dataclass(frozen=True)
class PartitionGroupStatus:
    """A group's status and the partition whose state holds it."""

    partition: int
    status: GroupStatus


class Engine:
    """Compiled objectives plus the state of the partitions this instance owns."""

    def __init__(
        self,
        objectives: Iterable[CompiledObjective],
        *,
        allowed_lateness_ms: int,
        dedup_horizon_ms: int = DEDUP_HORIZON_MS,
        clock: Clock | None = None,
        max_future_skew_ms: int | None = None,
        events_partitions: int | None = None,
    ) -> None:
        """``clock`` with ``max_future_skew_ms``: refuse events past ``clock() + skew``
        and clamp restored state to it; with ``events_partitions`` (the events topic's
        partition count) too: start freshness clocks on activation. Without them
        (backtests, replays of history) neither applies."""
        self.dedup_horizon_ms = dedup_horizon_ms
        self._clock = clock
        self.max_future_skew_ms = max_future_skew_ms
        self.events_partitions = events_partitions
        self._bounded = clock is not None and max_future_skew_ms is not None
        # Cached ``clock() + skew``; only an event past it reads the clock again (the
        # bound only grows, so a stale one errs towards checking, never towards letting
        # a future event through).
        self._future_bound = 0 if self._bounded else _NO_BOUND
        self.objectives: dict[str, CompiledObjective] = {}
        self._by_service: dict[str, list[CompiledObjective]] = {}
        for objective in objectives:
            if objective.objective_id in self.objectives:
                raise ValueError(f"duplicate objective {objective.objective_id}")
            self.objectives[objective.objective_id] = objective
            self._by_service.setdefault(objective.service, []).append(objective)
        self.allowed_lateness_ms = allowed_lateness_ms
        # Behind the partition's newest event time, the dedup horizon no longer holds
        # an event's id: older events are late (see the module docstring).
        self._floor_gap = max(dedup_horizon_ms, allowed_lateness_ms)
        self._partitions: dict[int, PartitionState] = {}
        self._routes = _routes(self._by_service)
        self._resolutions: list[Breach] = []

    def reload(
        self,
        objectives: Iterable[CompiledObjective],
        history: Mapping[str, Sequence[Rollup]] | None = None,
    ) -> dict[str, str]:
        """Switch to newly compiled objectives (hot reload); returns what happened to each.

        An objective whose fingerprint is unchanged keeps its compiled object and its
        state in every partition (``"kept"``). One whose target or alerting changed but
        whose measurement and state shape did not (same ``measure_fingerprint``:
        service, selection, good rule, window, grouping; same alerting policy kind and
        burn-rate windows) keeps its window counts and open breaches under the new
        definition (``"carried"``): the next event or tick decides with the new
        target, resolving or opening as it says.

        A ratio objective whose rollups still measure the same thing (selection, good
        rule, grouping) but whose window or alerting policy changed is rebuilt from
        its per-minute rollups (``"rebuilt"``, see :mod:`.rebuild`) when ``history``
        holds its rows (the shell reads them for :meth:`rebuild_requests`); each group
        is rebuilt in the partition that held it. Without ``history`` (the backtest
        has no database) it restarts.

        Any other change *restarts empty* (``"restarted"``): its windows refill from
        new events. Removed objectives lose their state (``"removed"``), new ones start
        empty (``"added"``). An added or restarted freshness objective becomes active
        now (see the module docstring).

        A breach whose rule no longer holds it (restarted, removed, or rebuilt under
        another alerting policy kind) is resolved as of its group's clock, so the
        notifier and the services it paged close it; :meth:`take_resolutions` hands
        these ``breach.resolved`` events to the shell to publish.
        """
        old = self.objectives
        fresh: dict[str, CompiledObjective] = {}
        changes: dict[str, str] = {}
        for objective in objectives:
            oid = objective.objective_id
            if oid in fresh:
                raise ValueError(f"duplicate objective {oid}")
            previous = old.get(oid)
            if previous is None:
                fresh[oid] = objective
                changes[oid] = "added"
            elif previous.fingerprint == objective.fingerprint:
                fresh[oid] = previous
                changes[oid] = "kept"
            else:
                fresh[oid] = objective
                change = _reload_plan(previous, objective)
                if change == "rebuilt" and (history is None or oid not in history):
                    change = "restarted"
                changes[oid] = change
        for oid in old:
            if oid not in fresh:
                changes[oid] = "removed"
        minutes = {
            oid: _minutes_by_key(rows)
            for oid, rows in (history or {}).items()
            if changes.get(oid) == "rebuilt"
        }
        for state in self._partitions.values():
            for oid in list(state.shards):
                move = changes.get(oid)
                if move == "kept":
                    continue
                held = state.shards[oid].resolutions()
                if move == "carried":
                    moved = _carry(state, oid, fresh[oid])
                elif move == "rebuilt":
                    moved = _rebuild(state, oid, old[oid], fresh[oid], minutes[oid])
                else:
                    del state.shards[oid]
                    moved = True
                if not moved:
                    changes[oid] = "restarted"
                if held:
                    shard = state.shards.get(oid)
                    kept = {b.id for b in shard.resolutions()} if shard is not None else set()
                    self._resolutions.extend(b for b in held if b.id not in kept)
        self.objectives = fresh
        self._by_service = {}
        for objective in fresh.values():
            self._by_service.setdefault(objective.service, []).append(objective)
        self._routes = _routes(self._by_service)
        for partition, state in self._partitions.items():
            for oid, change in changes.items():
                if change in ("added", "restarted"):
                    self._activate(partition, state, fresh[oid])
        return changes

    def take_resolutions(self) -> list[Breach]:
        """The ``breach.resolved`` events of breaches the last reloads withdrew (cleared)."""
        out, self._resolutions = self._resolutions, []
        return out

    def rebuild_requests(self, objectives: Iterable[CompiledObjective]) -> list[RebuildRequest]:
        """The rollups :meth:`reload` with these objectives would rebuild from.

        One request per objective that would be ``"rebuilt"``; ``since_ms`` is the
        earliest minute any of its groups' new windows can hold (the oldest group
        clock minus :func:`~.rebuild.history_span_ms`).
        """
        out: list[RebuildRequest] = []
        for objective in objectives:
            oid = objective.objective_id
            previous = self.objectives.get(oid)
            if (
                previous is None
                or previous.fingerprint == objective.fingerprint
                or _reload_plan(previous, objective) != "rebuilt"
            ):
                continue
            assert isinstance(objective, CompiledRatio)
            clocks = [
                raw["clock"]
                for state in self._partitions.values()
                if oid in state.shards
                for raw in state.shards[oid].dump()["groups"]
                if raw.get("clock") is not None
            ]
            since = min(clocks) - rebuild.history_span_ms(objective) if clocks else None
            out.append(RebuildRequest(oid, rollup_fingerprint_of(objective), since))
        return out

    @property
    def partitions(self) -> list[int]:
        """The partitions whose state is held, ascending."""
        return sorted(self._partitions)

    def owns(self, partition: int) -> bool:
        return partition in self._partitions

    def assign(
        self,
        partition: int,
        snapshot: bytes | None,
        dedup: Iterable[tuple[int, list[str]]] = (),
    ) -> None:
        """Take a partition over, from its snapshot and stored dedup slices, or empty.

        Restored event time is clamped to ``clock() + max_future_skew_ms``; freshness
        objectives without state in the partition become active now.
        """
        if snapshot is None:
            state = PartitionState()
        else:
            bound = self._read_bound() if self._bounded else None
            state = decode(snapshot, self.objectives, max_time_ms=bound)
        state.seen.restore(dedup)
        self._resolutions.extend(state.resolutions)
        state.resolutions.clear()
        self._partitions[partition] = state
        for objective in self.objectives.values():
            self._activate(partition, state, objective)

    def _read_bound(self) -> int:
        """``clock() + max_future_skew_ms``, read now (the cached bound refreshed)."""
        assert self._clock is not None and self.max_future_skew_ms is not None
        self._future_bound = self._clock() + self.max_future_skew_ms
        return self._future_bound

    def _activate(self, partition: int, state: PartitionState, objective: object) -> None:
        """Start the no-data clocks of a freshness objective homed in ``partition``."""
        if (
            not isinstance(objective, CompiledFreshness)
            or self._clock is None
            or self.events_partitions is None
            or home_partition(objective.service, self.events_partitions) != partition
        ):
            return
        shard = state.shards.get(objective.objective_id)
        if shard is None:
            shard = state.shards[objective.objective_id] = objective.new_shard()
        assert isinstance(shard, FreshnessShard)
        shard.expect(self._clock())

    def revoke(self, partition: int) -> None:
        """Forget a partition (checkpoint it first)."""
        self._partitions.pop(partition, None)

    def close(self) -> None:
        self._partitions.clear()

    def watermark(self, partition: int, service: str | None = None) -> int | None:
        """``service``'s watermark in ``partition``; without ``service``, the newest
        event time of the partition (any service) minus the allowed lateness."""
        state = self._partitions[partition]
        newest = state.max_time if service is None else state.clocks.get(service)
        return None if newest is None else newest - self.allowed_lateness_ms

    def clocks(self, partition: int) -> dict[str, int]:
        """The newest event time of each service (with objectives) in ``partition``."""
        return dict(self._partitions[partition].clocks)

    def process(self, partition: int, event: EventLike) -> Processed:
        """Evaluate one event of an owned partition."""
        # The hot path: event fields are read once into locals.
        state = self._partitions[partition]
        time = event.time
        if time > self._future_bound:
            bound = self._read_bound()
            if time > bound:
                return Processed(future_by_ms=time - bound)
        service = event.service
        routes = self._routes.get(service, ())
        clocks = state.clocks
        own = clocks.get(service)
        if own is not None:
            watermark = own - self.allowed_lateness_ms
            if time < watermark:
                return Processed(late_by_ms=watermark - time)
        max_time = state.max_time
        if max_time is not None:
            floor = max_time - self._floor_gap
            if time < floor:
                return Processed(late_by_ms=floor - time)
        event_id = event.id
        seen = state.seen
        if event_id in seen.ids:
            return _DUPLICATE
        if max_time is None or time > max_time:
            if time >= seen.due:
                seen.newest(time, max_time, self.dedup_horizon_ms)
            state.max_time = time
        # Clocks only for services with objectives: the snapshot stays bounded by the
        # definitions, whatever service names arrive.
        if routes and (own is None or time > own):
            clocks[service] = time
        seen.ids[event_id] = seen.open  # SeenIds.add, inlined
        seen.open.ids.append(event_id)
        breaches: list[Breach] | None = None
        matched = 0
        shards = state.shards
        kind = event.type
        for oid, types, check, objective in routes:
            if types is not None and kind not in types:
                continue
            if check and not objective.matches(event):
                continue
            matched += 1
            shard = shards.get(oid)
            if shard is None:
                shard = shards[oid] = objective.new_shard()
            caused = shard.on_event(event)
            if caused:
                if breaches is None:
                    breaches = []
                breaches.extend(caused)
        if breaches is None and matched < len(_QUIET):
            return _QUIET[matched]
        return Processed(breaches=breaches, matched=matched)

    def tick(self, partition: int, idle_now_ms: int | None = None) -> list[Breach]:
        """Let event time pass to its service's watermark for every group.

        ``idle_now_ms``: the wall clock, passed when the partition has nothing unread
        (received nothing since the last tick, or caught up with its log end; see the
        module docstring).
        """
        state = self._partitions[partition]
        if idle_now_ms is not None:
            self._follow_wall_clock(state, idle_now_ms)
        lateness = self.allowed_lateness_ms
        clocks = state.clocks
        objectives = self.objectives
        breaches: list[Breach] = []
        for oid, shard in state.shards.items():
            objective = objectives.get(oid)
            newest = None if objective is None else clocks.get(objective.service)
            if newest is not None:
                breaches.extend(shard.advance(newest - lateness))
        return breaches

    def _follow_wall_clock(self, state: PartitionState, now_ms: int) -> None:
        """Move each live service's clock to ``now_ms`` (see the module docstring).

        A service with state but no clock yet (a freshness objective that became
        active, or a snapshot from before clocks were per service) starts at ``now_ms``
        unless its partition's newest event time is far behind it (history).
        """
        live = now_ms - self.allowed_lateness_ms
        clocks = state.clocks
        moved = False
        for service, newest in clocks.items():
            watermark = newest - self.allowed_lateness_ms
            if watermark < live <= watermark + LIVE_GAP_MS:
                clocks[service] = now_ms
                moved = True
        newest_any = state.max_time
        if newest_any is None or live <= newest_any - self.allowed_lateness_ms + LIVE_GAP_MS:
            for oid in state.shards:
                objective = self.objectives.get(oid)
                if objective is not None and objective.service not in clocks:
                    clocks[objective.service] = now_ms
                    moved = True
        if moved and (newest_any is None or newest_any < now_ms):
            state.max_time = now_ms

    def advance_to(self, partition: int, time_ms: int) -> list[Breach]:
        """Declare event time ``time_ms`` reached (the watermark moves there) and tick.

        For offline runs (``slawatch backtest --until``); a live evaluator never calls it.
        """
        state = self._partitions[partition]
        wanted = time_ms + self.allowed_lateness_ms
        if state.max_time is None or state.max_time < wanted:
            state.max_time = wanted
        services = {o.service for oid, o in self.objectives.items() if oid in state.shards}
        for service in services | set(state.clocks):
            if state.clocks.get(service, wanted - 1) < wanted:
                state.clocks[service] = wanted
        return self.tick(partition)

    def snapshot(self, partition: int) -> bytes:
        """The partition's state, without the dedup ids (see :meth:`dedup_delta`)."""
        return encode(self._partitions[partition], self.objectives)

    def dedup_delta(self, partition: int) -> DedupDelta:
        """The dedup slices the partition's checkpoint must store (call
        :meth:`DedupDelta.stored` once it has), and the bound below which stored slices
        have expired."""
        state = self._partitions[partition]
        fresh = state.seen.unsaved(state.max_time)
        cutoff = None if state.max_time is None else state.max_time - self.dedup_horizon_ms
        return DedupDelta(fresh, cutoff)

    def status(self, objective_id: str) -> list[PartitionGroupStatus]:
        """Every group of one objective in the owned partitions."""
        out: list[PartitionGroupStatus] = []
        for partition in self.partitions:
            shard = self._partitions[partition].shards.get(objective_id)
            if shard is not None:
                out.extend(PartitionGroupStatus(partition, s) for s in shard.status())
        return out

    def take_rollups(self, partition: int) -> list[Rollup]:
        """Per-minute good/valid counts of a partition since the last call (cleared).

        Taken when the partition is checkpointed and written in the same transaction,
        so each counted event lands in exactly one rollup (a replay after a crash
        counts again what the lost, unwritten rollups held).
        """
        out: list[Rollup] = []
        state = self._partitions.get(partition)
        if state is None:
            return out
        for oid, shard in state.shards.items():
            pending: dict[tuple[str, int], list[int]] | None = getattr(shard, "rollups", None)
            if not pending:
                continue
            groups = getattr(shard, "groups", {})
            # The objective that counted them: the shard's own (a reload replaces both).
            counted_by = getattr(shard, "compiled", None) or self.objectives.get(oid)
            fingerprint = "" if counted_by is None else rollup_fingerprint_of(counted_by)
            for (key, minute), (good, valid) in pending.items():
                group = groups[key].group if key in groups else {}
                out.append(Rollup(oid, key, minute, dict(group), good, valid, fingerprint))
            pending.clear()
        return out

    def take_overflow(self) -> dict[str, int]:
        """Events folded into overflow groups per objective since the last call."""
        out: dict[str, int] = {}
        for oid, objective in self.objectives.items():
            if objective.overflow_events:
                out[oid] = objective.overflow_events
                objective.overflow_events = 0
        return out

    def open_breaches(self) -> dict[str, int]:
        """Open breaches per objective, over the owned partitions."""
        counts = dict.fromkeys(self.objectives, 0)
        for state in self._partitions.values():
            for oid, shard in state.shards.items():
                counts[oid] += shard.open_breaches()
        return counts


Route = tuple[str, "frozenset[str] | None", bool, CompiledObjective]


def _routes(by_service: dict[str, list[CompiledObjective]]) -> dict[str, tuple[Route, ...]]:
    """Per service, its objectives as ``(id, types, check, objective)``: from each
    objective's ``selection``, :meth:`Engine.process` tests the event type inline and
    calls ``matches`` only where attribute matchers remain."""
    return {
        service: tuple(
            (o.objective_id, o.selection[0] or None, o.selection[1], o) for o in objectives
        )
        for service, objectives in by_service.items()
    }


def _same_measurement(old: CompiledObjective, new: CompiledObjective) -> bool:
    return bool(new.measure_fingerprint) and old.measure_fingerprint == new.measure_fingerprint


def _same_shape(old: CompiledObjective, new: CompiledObjective) -> bool:
    """Whether a ratio shard's snapshot fits the new objective (policy kind and
    burn-rate windows); other kinds are left to ``load_shard`` to judge."""
    if isinstance(old, CompiledRatio) and isinstance(new, CompiledRatio):
        return rebuild.same_policy(old, new) and old.burn_windows_ms == new.burn_windows_ms
    return True


def _reload_plan(old: CompiledObjective, new: CompiledObjective) -> str:
    """``"carried"``, ``"rebuilt"`` or ``"restarted"`` for a changed objective."""
    measured_alike = _same_measurement(old, new)
    if measured_alike and _same_shape(old, new):
        return "carried"
    if rebuild.rebuildable(old, new):
        return "rebuilt"
    return "carried" if measured_alike else "restarted"  # carrying may still fail


def _minutes_by_key(rows: Sequence[Rollup]) -> dict[str, list[rebuild.Minute]]:
    out: dict[str, list[rebuild.Minute]] = {}
    for row in rows:
        out.setdefault(row.group_key, []).append((row.minute, row.good, row.valid))
    return out


def _carry(state: PartitionState, oid: str, objective: CompiledObjective) -> bool:
    """Move one partition's shard under the new definition; drop it if it does not fit."""
    try:
        state.shards[oid] = objective.load_shard(state.shards[oid].dump())
    except (ValueError, KeyError, TypeError):
        del state.shards[oid]
        return False
    return True


def _rebuild(
    state: PartitionState,
    oid: str,
    old: CompiledObjective,
    new: CompiledObjective,
    minutes: dict[str, list[rebuild.Minute]],
) -> bool:
    """Replace one partition's shard by one rebuilt from rollups, for the same groups;
    drop it if that fails."""
    assert isinstance(new, CompiledRatio)
    groups = rebuild.histories(
        state.shards[oid].dump(), minutes, carry=rebuild.same_policy(old, new)
    )
    try:
        state.shards[oid] = rebuild.rebuild_shard(new, groups)
    except (ValueError, KeyError, TypeError, OverflowError):
        del state.shards[oid]
        return False
    return True
