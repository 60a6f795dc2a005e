"""The store contract for group administration (issue 16, item 4): profiles, roles and mutes
(last writer by time wins, replays change nothing), "my groups" paged and sorted, a group's
member page. Runs on every adapter (``conftest.py``) and on the Cassandra stand-in
(``tests/unit/test_cassandra_groups_store.py``)."""

from __future__ import annotations

import pytest

from chat_events.store.group_models import GroupProfile, GroupRole
from chat_events.store.group_pages import my_group_cursor
from chat_events.store.models import Group
from chat_events.store.port import MessageStore


def _profile(group_id: str, name: str, at_ms: int, **changes: object) -> GroupProfile:
    base = {"owner_id": "alice", "created_at_ms": 100, "updated_at_ms": at_ms}
    return GroupProfile(group_id=group_id, name=name, **{**base, **changes})  # type: ignore[arg-type]


async def test_a_group_made_before_profiles_has_one_from_its_row(store: MessageStore) -> None:
    await store.save_group(Group(group_id="g1", name="Old", owner_id="alice", created_at_ms=100), ["alice", "bob"])
    found = await store.group_profiles(["g1", "nope"])
    assert found == {
        "g1": GroupProfile(group_id="g1", name="Old", owner_id="alice", created_at_ms=100, updated_at_ms=100)
    }
    assert await store.group_profiles([]) == {}


async def test_profiles_follow_the_last_writer_by_time(store: MessageStore) -> None:
    await store.save_group_profiles([_profile("g1", "One", 100, avatar_url="http://a/1.png", description="d")])
    await store.save_group_profiles([_profile("g1", "Two", 300)])
    await store.save_group_profiles([_profile("g1", "Older", 200)])  # a replay of an older change: no-op
    await store.save_group_profiles([_profile("g1", "Two", 300)])  # the same again: no-op
    assert (await store.group_profiles(["g1"]))["g1"].name == "Two"
    await store.save_group_profiles([_profile("g1", "Three", 400, owner_id="bob", dissolved=True)])
    got = (await store.group_profiles(["g1"]))["g1"]
    assert (got.name, got.owner_id, got.dissolved, got.avatar_url) == ("Three", "bob", True, "")
    # several of one group in one call: the latest by time
    await store.save_group_profiles([_profile("g2", "B", 200), _profile("g2", "A", 100)])
    assert (await store.group_profiles(["g2"]))["g2"].name == "B"


async def test_roles_and_mutes_follow_the_last_writer_by_time(store: MessageStore) -> None:
    await store.set_group_roles(
        [
            GroupRole(group_id="g1", user_id="bob", role="admin", at_ms=100),
            GroupRole(group_id="g1", user_id="carol", muted=True, muted_until_ms=5000, at_ms=100),
        ]
    )
    await store.set_group_roles([GroupRole(group_id="g1", user_id="bob", role="member", at_ms=50)])  # older
    found = await store.group_roles([("g1", "bob"), ("g1", "carol"), ("g1", "dave"), ("g2", "bob")])
    assert set(found) == {("g1", "bob"), ("g1", "carol")}
    assert found["g1", "bob"].role == "admin"
    carol = found["g1", "carol"]
    assert (carol.role, carol.muted, carol.muted_until_ms) == ("member", True, 5000)
    assert carol.muted_at(4999) and not carol.muted_at(5000)
    await store.set_group_roles([GroupRole(group_id="g1", user_id="carol", at_ms=200)])  # unmuted
    assert not (await store.group_roles([("g1", "carol")]))["g1", "carol"].muted


async def _groups(store: MessageStore) -> None:
    """alice is in g-a "banana" (created 100, joined 400), g-b "Apple" (300, joined 300),
    g-c "cherry" (200, joined 500) and left g-d; g-e is dissolved."""
    for group_id, name, created in [("g-a", "banana", 100), ("g-b", "Apple", 300), ("g-c", "cherry", 200)]:
        await store.save_group(Group(group_id=group_id, name=name, owner_id="bob", created_at_ms=created), ["bob"])
    await store.set_group_member("g-a", "alice", active=True, at_ms=400)
    await store.set_group_member("g-b", "alice", active=True, at_ms=300)
    await store.set_group_member("g-c", "alice", active=True, at_ms=500)
    await store.save_group(Group(group_id="g-d", name="left", owner_id="alice", created_at_ms=50), ["alice"])
    await store.set_group_member("g-d", "alice", active=False, at_ms=600)
    await store.save_group(Group(group_id="g-e", name="gone", owner_id="alice", created_at_ms=60), ["alice"])
    await store.save_group_profiles([_profile("g-e", "gone", 700, created_at_ms=60, dissolved=True)])
    await store.set_group_roles([GroupRole(group_id="g-c", user_id="alice", role="admin", at_ms=500)])


SORTED = {"joined": ["g-c", "g-a", "g-b"], "created": ["g-b", "g-c", "g-a"], "name": ["g-b", "g-a", "g-c"]}


async def test_my_groups_are_sorted_and_paged(store: MessageStore) -> None:
    await _groups(store)
    for sort_by, expected in SORTED.items():
        first = await store.my_groups("alice", sort_by=sort_by, limit=2)
        assert [g.group_id for g in first.items] == expected[:2] and first.has_more, sort_by
        cursor = my_group_cursor(first.items[-1], sort_by)
        rest = await store.my_groups("alice", sort_by=sort_by, cursor=cursor, limit=2)
        assert [g.group_id for g in rest.items] == expected[2:] and not rest.has_more, sort_by
    whole = await store.my_groups("alice")
    assert {g.group_id: g.role for g in whole.items} == {"g-a": "member", "g-b": "member", "g-c": "admin"}
    assert {g.group_id: g.joined_at_ms for g in whole.items} == {"g-a": 400, "g-b": 300, "g-c": 500}
    assert (await store.my_groups("bob")).items[0].role == "owner"
    assert (await store.my_groups("nobody")).items == ()


async def test_my_groups_refuse_a_cursor_of_another_sort(store: MessageStore) -> None:
    await _groups(store)
    page = await store.my_groups("alice", sort_by="name", limit=1)
    with pytest.raises(ValueError):
        await store.my_groups("alice", sort_by="joined", cursor=my_group_cursor(page.items[0], "name"))
    with pytest.raises(ValueError):
        await store.my_groups("alice", cursor="not-a-cursor")


async def test_the_member_page_has_roles_join_times_and_mutes(store: MessageStore) -> None:
    await store.save_group(Group(group_id="g1", name="G", owner_id="alice", created_at_ms=100), ["alice", "bob"])
    for user, at in [("carol", 200), ("dave", 300), ("erin", 400)]:
        await store.set_group_member("g1", user, active=True, at_ms=at)
    await store.set_group_member("g1", "erin", active=False, at_ms=500)  # left: not listed
    await store.set_group_roles(
        [
            GroupRole(group_id="g1", user_id="bob", role="admin", at_ms=600),
            GroupRole(group_id="g1", user_id="dave", muted=True, at_ms=600),
        ]
    )
    first = await store.group_member_page("g1", limit=2)
    assert [(m.user_id, m.role, m.joined_at_ms) for m in first.items] == [
        ("alice", "owner", 100),
        ("bob", "admin", 100),
    ]
    assert first.has_more
    rest = await store.group_member_page("g1", after_user_id="bob", limit=2)
    assert [(m.user_id, m.role, m.joined_at_ms, m.muted) for m in rest.items] == [
        ("carol", "member", 200, False),
        ("dave", "member", 300, True),
    ]
    assert not rest.has_more
    assert (await store.group_member_page("nope")).items == ()


async def test_member_states_give_activity_and_time(store: MessageStore) -> None:
    await store.save_group(Group(group_id="g1", name="G", owner_id="alice", created_at_ms=100), ["alice"])
    await store.set_group_member("g1", "bob", active=True, at_ms=200)
    await store.set_group_member("g1", "bob", active=False, at_ms=300)
    found = await store.group_member_states([("g1", "alice"), ("g1", "bob"), ("g1", "carol"), ("g2", "alice")])
    assert found == {("g1", "alice"): (True, 100), ("g1", "bob"): (False, 300)}
    assert await store.group_member_states([]) == {}
