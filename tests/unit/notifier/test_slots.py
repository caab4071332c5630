"""Delivery slots: which claimed candidates a worker takes, when it claims again, how
long it waits (tables)."""

from __future__ import annotations

import pytest

from services.notifier.slots import Candidate, Slots, choose, claim_again, wake_in_ms

H = "hang"
K = "ok"

# (name, candidates as receivers in due order, held before, free, per receiver, chosen ids)
CHOOSE: list[tuple[str, list[str], dict[str, int], int, int, list[int]]] = [
    ("nothing due", [], {}, 10, 4, []),
    ("all fit", [H, K, H, K], {}, 10, 4, [0, 1, 2, 3]),
    ("free slots cap the claim", [K, K, K], {}, 2, 4, [0, 1]),
    ("a receiver's rows beyond its bound are passed over",
     [H, H, H, H, H, H, K, K], {}, 10, 4, [0, 1, 2, 3, 6, 7]),
    ("rows already held count", [H, K, H, K], {H: 3}, 10, 4, [0, 1, 3]),
    ("a receiver at its bound gets none", [H, H, K], {H: 4}, 10, 4, [2]),
    ("due order is kept", [K, H, K, H], {H: 3}, 10, 4, [0, 1, 2]),
    ("the bound and free slots together", [H, H, H, K, K, K], {}, 4, 2, [0, 1, 3, 4]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "receivers", "held", "free", "per_receiver", "expected"),
    CHOOSE,
    ids=[c[0] for c in CHOOSE],
)
def test_choose(
    name: str,
    receivers: list[str],
    held: dict[str, int],
    free: int,
    per_receiver: int,
    expected: list[int],
) -> None:
    candidates: list[Candidate] = list(enumerate(receivers))
    assert choose(candidates, held, free, per_receiver) == expected


@pytest.mark.parametrize(
    ("free", "before", "after", "expected"),
    [
        (5, set(), set(), False),  # took everything due: nothing was passed over
        (5, set(), {H}, True),  # H filled up: rows behind H's may be due
        (0, set(), {H}, False),  # no slot left anyway
        (5, {H}, {H}, False),  # H was left out already
        (5, {H}, {H, K}, True),
    ],
)
def test_claim_again(free: int, before: set[str], after: set[str], expected: bool) -> None:
    assert claim_again(free, before, after) is expected


@pytest.mark.parametrize(
    ("now", "poll", "retry", "expected"),
    [
        (1_000, 500, None, 500),
        (1_000, 500, 1_200, 200),  # a retry of ours before the next poll
        (1_000, 500, 9_000, 500),
        (1_000, 500, 900, 0),  # already due
    ],
)
def test_wake_in_ms(now: int, poll: int, retry: int | None, expected: int) -> None:
    assert wake_in_ms(now, poll, retry) == expected


def test_slots_account_and_report_full_receivers() -> None:
    slots = Slots(capacity=5, per_receiver=2)
    for receiver in (H, H, K):
        slots.take(receiver)
    assert (slots.free(), slots.full(), slots.held(H)) == (2, frozenset({H}), 2)
    assert slots.choose([(1, H), (2, K), (3, K)]) == [2]
    slots.release(H)
    assert (slots.free(), slots.full(), slots.held(H)) == (3, frozenset(), 1)


@pytest.mark.parametrize(("capacity", "per_receiver"), [(4, 4), (4, 5), (4, 0)])
def test_a_receiver_can_never_hold_every_slot(capacity: int, per_receiver: int) -> None:
    with pytest.raises(ValueError, match="no receiver can hold every slot"):
        Slots(capacity, per_receiver)
