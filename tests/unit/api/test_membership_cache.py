"""The edge's member-list cache: trusted to admit for its TTL, never to refuse the acting user."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import pytest

from chat_events.api.membership import MembershipCache, cached_answer_serves
from chat_events.store.models import Group
from chat_events.store.port import MessageStore


class Groups:
    """What the cache reads of a store: groups and their members (counting the reads)."""

    def __init__(self) -> None:
        self.members: dict[str, set[str]] = {}
        self.reads = 0

    async def get_group(self, group_id: str) -> Group | None:
        self.reads += 1
        return (
            Group(group_id=group_id, name="g", owner_id="owner", created_at_ms=0) if group_id in self.members else None
        )

    async def group_members(self, group_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        return {g: frozenset(self.members[g]) for g in group_ids if g in self.members}


@pytest.mark.parametrize(
    ("members", "including", "serves"),
    [
        (frozenset({"a", "b"}), None, True),
        (None, None, True),
        (frozenset({"a", "b"}), "a", True),
        (frozenset({"a", "b"}), "c", False),  # would refuse c: read again
        (None, "a", False),  # "no such group" might be a group made on another edge
        (frozenset(), "a", False),
    ],
)
def test_a_cached_answer_serves_only_when_it_admits_the_acting_user(
    members: frozenset[str] | None, including: str | None, serves: bool
) -> None:
    assert cached_answer_serves(members, including) is serves


async def test_a_member_added_elsewhere_is_admitted_at_once_and_a_removed_one_for_the_ttl() -> None:
    now = [0.0]
    groups = Groups()
    groups.members["g"] = {"a"}
    cache = MembershipCache(cast(MessageStore, groups), ttl_s=1.0, clock=lambda: now[0])
    assert await cache.members("g", including="a") == frozenset({"a"})
    groups.members["g"] = {"b"}  # another edge added b and removed a
    assert await cache.members("g", including="a") == frozenset({"a"})  # admitting on a list within the TTL
    assert await cache.members("g", including="b") == frozenset({"b"})  # refusing b would need a fresh read
    assert await cache.members("g", including="a") == frozenset({"b"})  # ... which the cache now holds
    reads = groups.reads
    assert await cache.members("g", including="a") == frozenset({"b"})  # still refusing a: read each time
    assert groups.reads == reads + 1
    assert await cache.members("g") == frozenset({"b"}) and groups.reads == reads + 1  # no user: the cached list
    now[0] = 1.0
    assert await cache.members("g") == frozenset({"b"}) and groups.reads == reads + 2  # expired


async def test_a_group_made_on_another_edge_is_found_by_its_members_at_once() -> None:
    groups = Groups()
    cache = MembershipCache(cast(MessageStore, groups), ttl_s=60.0, clock=lambda: 0.0)
    assert await cache.members("g", including="a") is None
    groups.members["g"] = {"a", "b"}
    assert await cache.members("g") is None  # no acting user: the cached answer
    assert await cache.members("g", including="b") == frozenset({"a", "b"})
