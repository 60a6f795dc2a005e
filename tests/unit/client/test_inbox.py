"""The pure ordering logic: dedupe, gap detection, release in order, skipping an unrecoverable hole."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_events.client.inbox import Inbox, Verdict, classify


def msg(seq: int) -> dict[str, Any]:
    return {"message_id": f"m{seq}"}


def seqs(released: list[Any]) -> list[int]:
    return [d.user_seq for d in released]


@pytest.mark.parametrize(
    ("last_seq", "user_seq", "buffered", "verdict"),
    [
        (0, 1, (), Verdict.DELIVER),
        (4, 5, (), Verdict.DELIVER),
        (4, 4, (), Verdict.DUPLICATE),
        (4, 1, (), Verdict.DUPLICATE),
        (4, 7, (), Verdict.GAP),
        (4, 7, (7,), Verdict.DUPLICATE),
        (4, 6, (7,), Verdict.GAP),
    ],
)
def test_classify(last_seq: int, user_seq: int, buffered: tuple[int, ...], verdict: Verdict) -> None:
    assert classify(last_seq, user_seq, buffered) is verdict


def test_in_order_arrivals_are_released_at_once() -> None:
    inbox = Inbox()
    verdict, released = inbox.offer(1, msg(1))
    assert verdict is Verdict.DELIVER and seqs(released) == [1]
    assert released[0].message == msg(1)
    assert inbox.last_seq == 1 and not inbox.needs_sync


def test_a_gap_buffers_until_filled_then_releases_in_order() -> None:
    inbox = Inbox(last_seq=3)
    assert inbox.offer(6, msg(6)) == (Verdict.GAP, [])
    assert inbox.offer(6, msg(6)) == (Verdict.DUPLICATE, [])
    assert inbox.needs_sync and inbox.gap == (4, 5) and inbox.buffered == 1
    verdict, released = inbox.offer(4, msg(4))
    assert verdict is Verdict.DELIVER and seqs(released) == [4]
    assert inbox.gap == (5, 5)
    verdict, released = inbox.offer(5, msg(5))
    assert seqs(released) == [5, 6]
    assert inbox.last_seq == 6 and inbox.gap is None and not inbox.needs_sync


def test_duplicates_of_released_seqs_are_dropped() -> None:
    inbox = Inbox()
    for seq in (1, 2, 3):
        inbox.offer(seq, msg(seq))
    assert inbox.offer(2, msg(2)) == (Verdict.DUPLICATE, [])
    assert inbox.last_seq == 3


def test_skip_to_releases_what_arrived_and_moves_past_the_hole() -> None:
    inbox = Inbox(last_seq=2)
    inbox.offer(5, msg(5))
    inbox.offer(9, msg(9))
    inbox.offer(10, msg(10))
    # the server says 3..8 are gone, resume after 8: 5 did arrive, so it is still released
    assert seqs(inbox.skip_to(8)) == [5, 9, 10]
    assert inbox.last_seq == 10 and not inbox.needs_sync


def test_skip_to_below_last_seq_follows_a_server_that_lost_data() -> None:
    inbox = Inbox(last_seq=10)
    inbox.offer(12, msg(12))
    # the server only ever assigned up to 4: it answers "11..10 gone, resume after 4"
    assert inbox.skip_to(4) == []
    assert inbox.last_seq == 4
    assert seqs(inbox.offer(5, msg(5))[1]) == [5]


def test_last_seq_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        Inbox(-1)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 5), st.integers(0, 40), st.data())
def test_any_interleaving_of_pushes_and_pages_yields_each_seq_once_in_order(
    start: int, count: int, data: st.DataObject
) -> None:
    """The server holds seqs start+1..start+count. Pushes come in any order, duplicated, stale or
    ahead of a gap; sync pages answer requests made at an older last_seq. Then the client syncs
    until nothing is missing: it must have released exactly start+1..start+count, in order."""
    top = start + count
    inbox = Inbox(start)
    released: list[int] = []
    steps = data.draw(st.integers(0, 60))
    for _ in range(steps):
        if data.draw(st.booleans()) and count:
            seq = data.draw(st.integers(max(1, start - 2), top))
            released += seqs(inbox.offer(seq, msg(seq))[1])
        else:
            asked = data.draw(st.integers(max(start, inbox.last_seq - 3), inbox.last_seq))
            limit = data.draw(st.integers(1, 10))
            for seq in range(asked + 1, min(top, asked + limit) + 1):
                released += seqs(inbox.offer(seq, msg(seq))[1])
        assert released == list(range(start + 1, inbox.last_seq + 1))
    while inbox.last_seq < top:  # sync until has_more is false
        asked = inbox.last_seq
        for seq in range(asked + 1, min(top, asked + 7) + 1):
            released += seqs(inbox.offer(seq, msg(seq))[1])
    assert released == list(range(start + 1, top + 1))
    assert not inbox.needs_sync
