"""Blocks at the edge (issue 16, item 5): the pure decisions, the frames' parsing and the
edge's blocker cache."""

from __future__ import annotations

import pytest

from chat_events.api.block_cache import BlockerCache
from chat_events.api.block_frames import Block, Unblock
from chat_events.api.block_rules import (
    block_changes,
    block_target_problem,
    blocks_view,
    direct_send_blocked,
    hidden_by_block,
    hide_blocked,
    visible_views,
    without_blockers,
)
from chat_events.api.protocol import Code, ProtocolError, parse_frame


def view(seq: int, sender: str, sent_at_ms: int) -> dict[str, object]:
    return {"seq": seq, "sender_id": sender, "sent_at_ms": sent_at_ms, "content": f"m{seq}"}


def test_blocking_yourself_or_a_bad_id_is_a_problem() -> None:
    assert block_target_problem("alice", "bob") is None
    assert block_target_problem("alice", "alice") == "you cannot block yourself"
    for bad in ("", "-bob", "bob smith", "x" * 129, 7, None):
        assert block_target_problem("alice", bad) is not None


def test_only_a_change_of_state_is_published() -> None:
    assert block_changes({}, "bob", active=True)
    assert not block_changes({"bob": 5}, "bob", active=True)  # blocking again would move its time
    assert block_changes({"bob": 5}, "bob", active=False)
    assert not block_changes({}, "bob", active=False)


def test_only_direct_sends_to_a_blocker_are_refused() -> None:
    assert direct_send_blocked("user", "alice", {"alice"})
    assert not direct_send_blocked("user", "carol", {"alice"})
    assert not direct_send_blocked("group", "alice", {"alice"})  # a group id, whatever it is named


def test_blockers_leave_the_audience() -> None:
    assert without_blockers({"alice", "carol"}, {"alice", "dave"}) == {"carol"}


def test_a_message_is_hidden_from_the_block_on_not_before() -> None:
    blocks = {"bob": 1000}
    assert not hidden_by_block("bob", 999, blocks)
    assert hidden_by_block("bob", 1000, blocks)
    assert hidden_by_block("bob", 5000, blocks)
    assert not hidden_by_block("carol", 5000, blocks)


def test_visible_views_keep_order_and_the_others() -> None:
    views = [view(1, "bob", 10), view(2, "carol", 20), view(3, "bob", 30), view(4, "carol", 40)]
    assert [v["seq"] for v in visible_views(views, {"bob": 25})] == [1, 2, 4]
    assert visible_views(views, {}) is views


def test_a_hidden_page_keeps_its_bounds_and_names_where_to_go_on() -> None:
    body = {"messages": [view(9, "bob", 90), view(8, "bob", 80)], "has_more": True, "next_from_seq": None}
    out = hide_blocked(body, {"bob": 0})
    assert out == {"messages": [], "has_more": True, "next_from_seq": None, "page_end_seq": 8}
    assert hide_blocked({"messages": [], "has_more": False}, {"bob": 0})["page_end_seq"] is None
    assert hide_blocked(body, {})["page_end_seq"] == 8  # the same shape without blocks


def test_the_list_of_blocks_is_newest_first() -> None:
    assert blocks_view({"bob": 5, "carol": 9, "abe": 5}) == [
        {"user_id": "carol", "since_ms": 9},
        {"user_id": "abe", "since_ms": 5},
        {"user_id": "bob", "since_ms": 5},
    ]


def test_block_frames_parse() -> None:
    frame = parse_frame('{"type": "block", "request_id": 3, "data": {"user_id": "bob"}}', max_payload_bytes=100)
    request: object = frame.request  # the block frames are not in protocol.Request (a circular import)
    assert (frame.type, frame.request_id, request) == ("block", 3, Block("bob"))
    frame = parse_frame('{"type": "unblock", "data": {"user_id": "bob"}}', max_payload_bytes=100)
    unblock: object = frame.request
    assert unblock == Unblock("bob")


@pytest.mark.parametrize("data", ["{}", '{"user_id": 5}', '{"user_id": ""}', '{"user_id": "a b"}'])
def test_bad_block_frames_name_the_field(data: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(f'{{"type": "block", "request_id": 1, "data": {data}}}', max_payload_bytes=100)
    assert info.value.code == Code.INVALID_FIELD
    assert info.value.data == {"field": "user_id"}
    assert (info.value.frame_type, info.value.request_id) == ("block", 1)


class _Store:
    def __init__(self) -> None:
        self.blockers: dict[str, frozenset[str]] = {}
        self.reads = 0

    async def blockers_of(self, user_ids: list[str]) -> dict[str, frozenset[str]]:
        self.reads += 1
        return {u: self.blockers.get(u, frozenset()) for u in user_ids}


async def test_the_blocker_cache_trusts_a_read_for_its_time_and_forgets_on_demand() -> None:
    store, now = _Store(), [0.0]
    cache = BlockerCache(store, 1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cache.blockers("bob") == frozenset()  # never loaded
    store.blockers["bob"] = frozenset({"alice"})
    assert await cache.load("bob") == {"alice"}
    store.blockers["bob"] = frozenset()
    now[0] = 0.5
    assert await cache.load("bob") == {"alice"} and store.reads == 1  # trusted
    assert cache.blockers("bob") == {"alice"}
    cache.forget("bob")
    assert await cache.load("bob") == frozenset() and store.reads == 2
    store.blockers["bob"] = frozenset({"carol"})
    now[0] = 2.0
    assert await cache.load("bob") == {"carol"}  # expired: read again
